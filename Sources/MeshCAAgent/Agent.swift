#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import GRPCCore
import Logging
import MeshCACore
import MeshCAIO
import MeshCATransport
import ServiceLifecycle
import SwiftASN1
import X509

/// `meshca agent`'s renewal loop: obtains the workload's certificate, keeps the files and the Workload
/// API current, and renews before expiry.
///
/// - At start it reuses valid files already in `--out` (no new issuance); otherwise it bootstraps with
///   the join token or JWT.
/// - It renews at the schedule's point (half-life ± jitter by default) over mTLS with its current
///   certificate, so a single-use token is enough. A new key is made for every certificate.
/// - With several CA addresses (replicas) it sends each request to the one that answered last, and on no answer
///   (``CAAddresses/firstAnswer(preferring:onFailover:_:)``) to the next at once; a refusal is an answer.
/// - On failure (a refusal, or no answer from any address) it keeps the current files, retries with capped
///   exponential backoff (always before the certificate expires), and reports the error in its status. A certificate that expired while the
///   CA was away is replaced through the bootstrap credential when that still works, and so is one the CA
///   refuses (revoked) when the credential is read from a file (`--token-file`, `--jwt-file`).
public struct Agent: Service {
    let configuration: AgentConfiguration
    let broadcast: CredentialsBroadcast
    let status: AgentStatusBox
    let logger: Logger
    /// Runs after every certificate published (reused at start or newly obtained): the CRL fetch.
    let onNewCertificate: (@Sendable () async -> Void)?
    /// What time it is and how to wait for the next renewal or retry.
    let time: ServiceTime
    /// A number in [0, 1] for each renewal's jitter and each retry's backoff.
    let random: @Sendable () -> Double

    /// The loop for `configuration`, publishing to `broadcast` and reporting to `status`, on `time`;
    /// `onNewCertificate` runs after each certificate is published. `random` spreads renewals and retries.
    public init(
        configuration: AgentConfiguration, broadcast: CredentialsBroadcast, status: AgentStatusBox, logger: Logger,
        time: ServiceTime = .system, random: @escaping @Sendable () -> Double = { Double.random(in: 0...1) },
        onNewCertificate: (@Sendable () async -> Void)? = nil
    ) {
        self.configuration = configuration
        self.broadcast = broadcast
        self.status = status
        self.logger = logger
        self.time = time
        self.random = random
        self.onNewCertificate = onNewCertificate
    }

    /// A certificate the agent holds, with what it needs to renew it.
    struct Held {
        var credentials: WorkloadCredentials
        var chainPEM: String
        var receivedAt: Date
    }

    public func run() async throws {
        let directory = CredentialDirectory(
            path: configuration.outDirectory, keyMode: configuration.keyMode, owner: configuration.fileOwner,
            combinedName: configuration.combinedPEM)
        var held = reuse(from: directory, at: time.now())
        if let held {
            broadcast.publish(held.credentials)
            record(held, obtainedBy: "reused")
            logger.info("reusing valid files", metadata: ["dir": "\(directory.path)", "serial": "\(held.credentials.leaf.serialHex)"])
            await onNewCertificate?()
        }
        var failures = 0
        // The CA endpoint that answered last: the first one asked next time.
        var endpoint: CAEndpoint?
        let first = held.map(renewalTime) ?? time.now()
        status.update { $0.nextRenewal = first }
        await time.repeatedly(from: first) { now in
            let next: Date
            do {
                let (obtained, method, answered) = try await obtain(renewing: held, at: now, preferring: endpoint)
                if let endpoint, endpoint != answered {
                    logger.notice("the CA answered at another address; renewals go there now", metadata: ["ca": "\(answered)", "previous": "\(endpoint)"])
                }
                endpoint = answered
                status.update { $0.caAddress = answered.description }
                try directory.write(
                    chainPEM: obtained.chainPEM, keyPEM: obtained.credentials.privateKeyPEM,
                    bundlePEM: obtained.credentials.bundle.map(\.pem).joined(), at: now)
                broadcast.publish(obtained.credentials)
                held = obtained
                failures = 0
                record(obtained, obtainedBy: method)
                next = renewalTime(obtained)
                logger.info(
                    "certificate written",
                    metadata: [
                        "serial": "\(obtained.credentials.leaf.serialHex)", "not_after": "\(obtained.credentials.leaf.notValidAfter.formatted(.iso8601))",
                        "via": "\(method)", "ca": "\(answered)",
                    ]
                )
                await runHook()
                await onNewCertificate?()
            } catch {
                let explanation = AgentFailure.explain(error, held: held?.credentials.leaf, bootstrap: configuration.bootstrap, at: now)
                let delay = configuration.schedule.backoff(attempt: failures, random: random(), now: now, deadline: held?.credentials.leaf.notValidAfter)
                failures += 1
                next = now.addingTimeInterval(delay.seconds)
                status.update {
                    $0.state = explanation.expired ? "expired" : "renewing-failed"
                    $0.lastError = explanation.message
                    $0.lastErrorAt = now
                    $0.consecutiveFailures = failures
                    $0.failures[AgentFailure.reason(error, held: held?.credentials.leaf, at: now), default: 0] += 1
                }
                logger.error("could not obtain a certificate; retrying", metadata: ["error": "\(explanation.message)", "retry_in": "\(delay)"])
            }
            status.update { $0.nextRenewal = next }
            return next
        }
    }

    private func renewalTime(_ held: Held) -> Date {
        configuration.schedule.renewalTime(receivedAt: held.receivedAt, notAfter: held.credentials.leaf.notValidAfter, random: random() * 2 - 1)
    }

    private func record(_ held: Held, obtainedBy method: String) {
        let leaf = held.credentials.leaf
        status.update {
            $0.state = "ok"
            $0.serial = leaf.serialHex
            $0.notBefore = leaf.notValidBefore
            $0.notAfter = leaf.notValidAfter
            $0.lastError = nil
            $0.consecutiveFailures = 0
            $0.obtainedBy = method
            if method != "reused" { $0.renewals += 1 }
        }
    }

    /// Valid files already on disk for this identity: key matching the leaf, not expired, a bundle.
    func reuse(from directory: CredentialDirectory, at now: Date) -> Held? {
        // A combined file asked for since the files were written is missing: write a new version with it.
        if let combined = configuration.combinedPEM, !FileManager.default.fileExists(atPath: directory.currentFiles + "/" + combined) {
            return nil
        }
        guard let files = directory.read(),
            let chain = try? Certificate.parseAll(pem: files.chainPEM), let leaf = chain.first,
            let roots = try? Certificate.parseAll(pem: files.bundlePEM), !roots.isEmpty,
            let key = try? Certificate.PrivateKey(pemEncoded: files.keyPEM), key.publicKey == leaf.publicKey,
            leaf.uriSANs == [configuration.identity.uri], leaf.dnsSANs == configuration.dnsNames, now < leaf.notValidAfter,
            let credentials = try? Self.credentials(identity: configuration.identity, chain: chain.filter { !roots.contains($0) }, key: key, bundle: roots)
        else { return nil }
        // The lifetime left is what matters for the schedule; the original receipt time is unknown.
        return Held(credentials: credentials, chainPEM: files.chainPEM, receivedAt: min(now, leaf.notValidBefore.addingTimeInterval(120)))
    }

    /// One issuance: over mTLS while the current certificate is valid, else with the bootstrap credential; the CA
    /// addresses tried from `preferred` on. Returns the certificate, how it was obtained and the endpoint that answered.
    func obtain(renewing held: Held?, at now: Date, preferring preferred: CAEndpoint?) async throws -> (Held, String, CAEndpoint) {
        let addresses = try CAAddresses(configuration.caAddresses)
        let key = try configuration.keyType.generate()
        let csr = try WorkloadCSR.pem(WorkloadCSR.make(for: configuration.identity, dnsNames: configuration.dnsNames, key: key))
        let trust = try self.trust(held: held)
        let chain: [String]
        let method: String
        let answered: CAEndpoint
        if let held, now < held.credentials.leaf.notValidAfter {
            let identity = CAClient.ClientIdentity(chainPEM: held.chainPEM, keyPEM: held.credentials.privateKeyPEM)
            do {
                (chain, answered) = try await addresses.firstAnswer(preferring: preferred, onFailover: logFailover) { endpoint in
                    try await CAClient(endpoint: endpoint, trust: trust, identity: identity).createCertificate(csrPEM: csr, ttl: configuration.ttl)
                }
                method = "mtls"
            } catch let refusal as RPCError where refusal.code == .unauthenticated && configuration.bootstrap.isFile {
                // The CA no longer accepts this certificate (revoked, or its root retired). A credential read from a
                // file may be new (a fresh token put there, the kubelet's current JWT): bootstrap again at once
                // rather than retrying a certificate that will never renew.
                logger.warning("the CA refused the current certificate; bootstrapping again", metadata: ["reason": "\(refusal.message)"])
                do {
                    (chain, method, answered) = try await bootstrap(csr: csr, trust: trust, addresses: addresses, preferring: preferred)
                } catch let error as RPCError {
                    throw AgentError(
                        .bootstrapRefused,
                        "The CA refused the current certificate (\(refusal.message)) and then the bootstrap credential "
                            + "(\(error.code): \(error.message)). Put a new join token in the token file, or check the service-account token.")
                }
            }
        } else {
            (chain, method, answered) = try await bootstrap(csr: csr, trust: trust, addresses: addresses, preferring: preferred)
        }
        let bundle = try CredentialBundle.accepted(
            istioChain: chain, from: answered.description, for: configuration.identity, dnsNames: configuration.dnsNames,
            key: key.publicKey, pinnedRootSHA256: trust.pinnedRootSHA256)
        let credentials = try Self.credentials(identity: configuration.identity, chain: [bundle.leaf] + bundle.intermediates, key: key, bundle: bundle.roots)
        return (Held(credentials: credentials, chainPEM: bundle.certChainPEM, receivedAt: now), method, answered)
    }

    /// One `CreateCertificate` authenticated with the bootstrap credential, the CA addresses tried from `preferred`
    /// on; the chain, the method (`token`, `jwt`) and the endpoint that answered.
    private func bootstrap(
        csr: String, trust: CAClient.Trust, addresses: CAAddresses, preferring preferred: CAEndpoint?
    ) async throws -> ([String], String, CAEndpoint) {
        let (credential, kind) = try bootstrapCredential()
        let (chain, answered) = try await addresses.firstAnswer(preferring: preferred, onFailover: logFailover) { endpoint in
            try await CAClient(endpoint: endpoint, trust: trust)
                .createCertificate(csrPEM: csr, ttl: configuration.ttl, headers: ["authorization": "Bearer \(credential)"])
        }
        return (chain, kind, answered)
    }

    /// Logs a CA endpoint that gave no answer, and the one asked next.
    private func logFailover(_ failed: CAAttempt, next: CAEndpoint) {
        logger.warning(
            "no answer from the CA at this address; asking the next", metadata: ["ca": "\(failed.endpoint)", "error": "\(failed.failure)", "next": "\(next)"])
    }

    /// How to verify the CA: `--root-cert` (re-read each time, so a rotated bundle is picked up), else
    /// the bundle of the current certificate, else the root pinned by the join token.
    private func trust(held: Held?) throws -> CAClient.Trust {
        if let file = configuration.rootCertFile {
            guard let data = FileManager.default.contents(atPath: file), let roots = try? Certificate.parseAll(pem: String(decoding: data, as: UTF8.self)), !roots.isEmpty else {
                throw AgentError(.unusableSetting, "Cannot read root certificates from \(file) (--root-cert).")
            }
            return .roots(roots)
        }
        if let held { return .roots(held.credentials.bundle) }
        let (credential, kind) = try bootstrapCredential()
        guard kind == "token", let token = try? JoinToken(parsing: credential) else {
            throw AgentError(.unusableSetting, "Without --root-cert the agent can only verify the CA through a join token's pinned root; give --root-cert.")
        }
        return .pinnedRoot(sha256: token.rootFingerprint)
    }

    /// The bootstrap credential and its kind (`token` or `jwt`), read fresh from its file when it has one.
    private func bootstrapCredential() throws -> (String, String) {
        func read(_ path: String, _ flag: String) throws -> String {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw AgentError(.unusableSetting, "Cannot read \(path) (\(flag)); check that the file exists and is readable by this user.")
            }
            return String(decoding: data, as: UTF8.self).trimmed
        }
        switch configuration.bootstrap {
        case .token(let token): return (token, "token")
        case .tokenFile(let path): return (try read(path, "--token-file"), "token")
        case .jwtFile(let path): return (try read(path, "--jwt-file"), "jwt")
        }
    }

    static func credentials(identity: SPIFFEID, chain: [Certificate], key: Certificate.PrivateKey, bundle: [Certificate]) throws -> WorkloadCredentials {
        WorkloadCredentials(
            spiffeID: identity, chain: chain, privateKeyPKCS8: try key.pkcs8DER(),
            privateKeyPEM: try key.serializeAsPEM().pemString + "\n", bundle: bundle
        )
    }

    /// Runs `--on-rotate` through `/bin/sh -c` and logs its exit status.
    private func runHook() async {
        guard let command = configuration.onRotate else { return }
        var environment = ProcessInfo.processInfo.environment
        environment["MESHCA_CERT_DIR"] = configuration.outDirectory
        environment["MESHCA_SPIFFE_ID"] = configuration.identity.uri
        let status = await ShellHook.run(command, environment: environment)
        if status == 0 {
            logger.info("--on-rotate finished", metadata: ["command": "\(command)", "exit": "0"])
        } else {
            logger.warning("--on-rotate failed", metadata: ["command": "\(command)", "exit": "\(status)"])
        }
    }
}
