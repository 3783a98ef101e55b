#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import MeshCACore
import MeshCAIO
import ServiceLifecycle
import Synchronization
import X509

/// Fetches the CA's CRL for `meshca agent --crl-url`: at start, every ``interval``, and after every new
/// certificate. A CRL that parses and is signed by the CA of the current credentials (the issuer of the leaf,
/// found among its intermediates and bundle) is written to `crl.pem` in the output directory (0644, atomically)
/// and handed to the Workload API. The URL is plain HTTP, so the signature check is what makes it trustworthy;
/// anything else is logged and the previous CRL kept.
///
/// A signed CRL can still be an old one replayed (which would make a revoked serial disappear again), or one
/// whose `nextUpdate` has passed. So a CRL whose number is lower than that of the CRL held from the same issuer
/// (the last one accepted, or `crl.pem` as found at start) is refused, and so is an expired one; the previous
/// CRL stays, and the refusal is reported in the agent's status (`crl_last_refusal`). A body larger than
/// ``maximumBodyBytes`` is refused before it is parsed.
public final class CRLFetcher: Service, Sendable {
    /// The largest CRL body read: 4 MiB, some 80,000 revoked serials in DER (about 50 bytes each; PEM is a third larger).
    public static let maximumBodyBytes = 4 * 1024 * 1024

    /// Where the CRL comes from, e.g. `http://127.0.0.1:15014/crl` (DER; `/crl.pem` works too).
    public let url: URL
    /// The agent's output directory; the CRL goes to `crl.pem` there.
    public let directory: String
    /// How often the CRL is fetched again.
    public let interval: Duration
    private let broadcast: CredentialsBroadcast
    private let status: AgentStatusBox?
    private let logger: Logger
    private let time: ServiceTime
    /// The CRLs in `crl.pem`: the last accepted, or what the file held at start.
    private let held: Mutex<[CertificateRevocationList]>

    /// A fetcher publishing to `broadcast` and reporting the CRL it holds, and its refusals, to `status`.
    public init(
        url: URL, directory: String, interval: Duration, broadcast: CredentialsBroadcast, status: AgentStatusBox? = nil,
        time: ServiceTime = .system, logger: Logger
    ) {
        self.time = time
        self.url = url
        self.directory = directory
        self.interval = interval
        self.broadcast = broadcast
        self.status = status
        self.logger = logger
        let previous = FileManager.default.contents(atPath: directory + "/crl.pem")
            .flatMap { try? CertificateRevocationList.all(in: [UInt8]($0)) } ?? []
        held = Mutex(previous)
        report(previous)
    }

    /// The file the CRL is written to.
    public var path: String { directory + "/crl.pem" }

    /// Fetches once; returns whether a new CRL was published. Skips (false) before the agent has credentials.
    @discardableResult
    public func fetch(at now: Date) async -> Bool {
        guard let credentials = broadcast.current else { return false }
        do {
            let (code, bytes) = try await HTTPFetch.get(
                url, timeout: .seconds(10), maximumBodyBytes: Self.maximumBodyBytes, what: "a CRL")
            guard code == 200 else {
                throw AgentError(
                    .crlUnavailable,
                    "HTTP \(code) from \(url); check --crl-url (meshca serve serves /crl on its monitoring port).")
            }
            let authorities = Array(credentials.chain.dropFirst() + credentials.bundle)
            let crls = try Self.accepted(from: bytes, signedByOneOf: authorities, url: url)
            let ders = crls.map(\.derBytes)
            // Checked and replaced under one lock: the periodic fetch and the one after a renewal may overlap.
            let changed = try held.withLock { current in
                try Self.checkCurrent(crls, against: current, at: now, url: url)
                let changed = broadcast.crls != ders
                if changed {
                    try AtomicFile.write(crls.map(\.pem).joined(), to: path, mode: 0o644)
                    broadcast.publish(crls: ders)
                }
                current = crls
                return changed
            }
            report(crls)
            guard changed else { return false }
            logger.info(
                "CRL updated",
                metadata: [
                    "path": "\(path)", "number": "\(crls[0].number)",
                    "entries": "\(crls.map(\.entries.count).reduce(0, +))", "crls": "\(crls.count)",
                ])
            return true
        } catch {
            // The body came over plain HTTP: a refused CRL's issuer name may hold anything.
            let reason = "\(error)".escapedForLog
            logger.warning(
                "could not fetch the CRL; keeping the previous one", metadata: ["url": "\(url)", "error": "\(reason)"])
            status?.update {
                $0.crlLastRefusal = reason
                $0.crlLastRefusalAt = now
            }
            return false
        }
    }

    /// Shows the CRL of the workload's own CA among `crls` (the one that signed the leaf, else the first) in the
    /// status.
    private func report(_ crls: [CertificateRevocationList]) {
        let issuer = broadcast.current?.leaf.issuer
        let shown = crls.first { $0.issuer == issuer } ?? crls.first
        status?.update {
            $0.crlNumber = shown?.number
            $0.crlNextUpdate = shown?.nextUpdate
            $0.crlThisUpdate = shown?.thisUpdate
        }
    }

    /// Refuses a fetched set of CRLs holding one whose `nextUpdate` is not after `now`, or one whose number is
    /// lower than that of the held CRL of the same issuer (an older CRL replayed).
    package static func checkCurrent(
        _ crls: [CertificateRevocationList], against held: [CertificateRevocationList], at now: Date, url: URL
    ) throws {
        for crl in crls {
            guard crl.nextUpdate > now else {
                throw AgentError(
                    .crlExpired,
                    "The CRL from \(url) (issuer \(crl.issuer), number \(crl.number)) expired at "
                        + "\(crl.nextUpdate.formatted(.iso8601)) (its nextUpdate); it was refused and the previous CRL kept. "
                        + "Check that meshca serve is running (it re-signs the CRL every 12 hours) and that this host's clock "
                        + "is right.")
            }
            if let previous = held.first(where: { $0.issuer == crl.issuer }), crl.number < previous.number {
                throw AgentError(
                    .crlRolledBack,
                    "The CRL from \(url) (issuer \(crl.issuer)) has number \(crl.number), lower than the \(previous.number) "
                        + "this agent holds: an older CRL, served again. It was refused and CRL \(previous.number) kept. "
                        + "Check what answers at --crl-url: it should be the CA's monitoring port, which never goes back.")
            }
        }
    }

    /// The CRLs in a fetched body (one DER CRL, or every `X509 CRL` block of a PEM text, as `/crl.pem` serves
    /// both roots' during a root rotation) that are signed by one of `authorities`; CRLs of other CAs are left
    /// out. Throws when the body holds no CRL, or none from these authorities.
    package static func accepted(
        from bytes: [UInt8], signedByOneOf authorities: [Certificate], url: URL
    ) throws -> [CertificateRevocationList] {
        let all = try CertificateRevocationList.all(in: bytes)
        let ours = all.filter { crl in authorities.contains { crl.isSigned(by: $0) } }
        guard !ours.isEmpty else {
            throw AgentError(
                .crlForeign,
                "The CRL from \(url) (issuer \(all.map { "\($0.issuer)" }.joined(separator: ", "))) is not signed by "
                    + "this workload's CA; it was discarded. Point --crl-url at the monitoring port of the CA that issues "
                    + "this agent's certificates.")
        }
        return ours
    }

    /// Fetches at once and then every ``interval`` until graceful shutdown or cancellation.
    public func run() async throws {
        await time.every(interval, immediately: true) { now in await fetch(at: now) }
    }
}
