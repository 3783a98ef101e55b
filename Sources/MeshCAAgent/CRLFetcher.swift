#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import MeshCACore
import MeshCAIO
import ServiceLifecycle
import X509

/// Fetches the CA's CRL for `meshca agent --crl-url`: at start, every ``interval``, and after every new
/// certificate. A CRL that parses and is signed by the CA of the current credentials (the issuer of the leaf,
/// found among its intermediates and bundle) is written to `crl.pem` in the output directory (0644, atomically)
/// and handed to the Workload API. The URL is plain HTTP, so the signature check is what makes it trustworthy;
/// anything else is logged and the previous CRL kept.
public final class CRLFetcher: Service, Sendable {
    /// Where the CRL comes from, e.g. `http://127.0.0.1:15014/crl` (DER; `/crl.pem` works too).
    public let url: URL
    /// The agent's output directory; the CRL goes to `crl.pem` there.
    public let directory: String
    /// How often the CRL is fetched again.
    public let interval: Duration
    private let broadcast: CredentialsBroadcast
    private let logger: Logger

    /// A fetcher publishing to `broadcast`.
    public init(url: URL, directory: String, interval: Duration, broadcast: CredentialsBroadcast, logger: Logger) {
        self.url = url
        self.directory = directory
        self.interval = interval
        self.broadcast = broadcast
        self.logger = logger
    }

    /// The file the CRL is written to.
    public var path: String { directory + "/crl.pem" }

    /// Fetches once; returns whether a new CRL was published. Skips (false) before the agent has credentials.
    @discardableResult
    public func fetch() async -> Bool {
        guard let credentials = broadcast.current else { return false }
        do {
            let (status, bytes) = try await HTTPFetch.get(url, timeout: .seconds(10))
            guard status == 200 else {
                throw AgentFailure(
                    "HTTP \(status) from \(url); check --crl-url (meshca serve serves /crl on its monitoring port).")
            }
            let authorities = Array(credentials.chain.dropFirst() + credentials.bundle)
            let crls = try Self.accepted(from: bytes, signedByOneOf: authorities, url: url)
            let ders = crls.map(\.derBytes)
            guard broadcast.crls != ders else { return false }
            try AtomicFile.write(crls.map(\.pem).joined(), to: path, mode: 0o644)
            broadcast.publish(crls: ders)
            logger.info(
                "CRL updated",
                metadata: [
                    "path": "\(path)", "number": "\(crls[0].number)",
                    "entries": "\(crls.map(\.entries.count).reduce(0, +))", "crls": "\(crls.count)",
                ])
            return true
        } catch {
            logger.warning(
                "could not fetch the CRL; keeping the previous one", metadata: ["url": "\(url)", "error": "\(error)"])
            return false
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
            throw AgentFailure(
                "The CRL from \(url) (issuer \(all.map { "\($0.issuer)" }.joined(separator: ", "))) is not signed by "
                    + "this workload's CA; it was discarded. Point --crl-url at the monitoring port of the CA that issues "
                    + "this agent's certificates.")
        }
        return ours
    }

    /// Fetches every ``interval`` until graceful shutdown or cancellation.
    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            await fetch()
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
            } catch {
                return
            }
        }
    }
}
