import Foundation
import GRPCCore
import MeshCACore
import MeshCAIO
import MeshCATransport
import SwiftASN1
import X509

/// `meshca issue --server`: a fresh key and CSR here, the certificate from a running CA daemon (the first of its
/// addresses that answers) with a join token, then Istio's three files.
public struct RemoteIssue: Sendable {
    /// The CA's addresses (`host:port`), asked in turn until one answers.
    public let servers: [String]
    /// The join token's text, and the flag it came from (`--token`, `--token-file PATH`) for messages.
    public let token: String
    public let tokenSource: String
    /// A PEM file of roots to trust the CA against instead of the token's pinned root.
    public var rootCertFile: String?
    public let trustDomain: String
    public let namespace: String
    public let serviceAccount: String
    public let keyType: KeyType
    public let ttl: Duration
    /// Where the three files go (absolute, or relative to the working directory).
    public let out: String

    public init(
        servers: [String], token: String, tokenSource: String, trustDomain: String, namespace: String, serviceAccount: String,
        keyType: KeyType, ttl: Duration, out: String
    ) {
        self.servers = servers
        self.token = token
        self.tokenSource = tokenSource
        self.trustDomain = trustDomain
        self.namespace = namespace
        self.serviceAccount = serviceAccount
        self.keyType = keyType
        self.ttl = ttl
        self.out = out
    }

    /// Checks `--server` values; the message follows `--server `.
    public static func checkServers(_ servers: [String]) throws(CAError) {
        do { _ = try CAAddresses(servers) } catch { throw CommandInput.invalidArgument(error.description) }
    }

    /// The join token in the file at `path` without surrounding whitespace; nil when it cannot be read.
    public static func token(fromFile path: String) -> String? {
        FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self).trimmed }
    }

    /// Issues. `notice` hears each address that gave no answer before the next is asked. A token, `rootCertFile`
    /// or identity that cannot be used throws ``CAError`` `invalid-argument`; a refusal `remote-refusal`, no answer `ca-unreachable`.
    public func run(notice: (String) -> Void) async throws -> IssuedCredentials {
        let servers = try CAAddresses(servers)
        let token: JoinToken
        do {
            token = try JoinToken(parsing: self.token)
        } catch let error as IssuanceError {
            throw CommandInput.invalidArgument("\(tokenSource): \(error.message)")
        }
        let trust: CAClient.Trust
        if let rootCertFile {
            guard let data = FileManager.default.contents(atPath: rootCertFile),
                let roots = try? Certificate.parseAll(pem: String(decoding: data, as: UTF8.self)), !roots.isEmpty
            else {
                throw CommandInput.invalidArgument("--root-cert: \(rootCertFile) is not a readable PEM file of root certificates.")
            }
            trust = .roots(roots)
        } else {
            trust = .pinnedRoot(sha256: token.rootFingerprint)
        }
        let identity: SPIFFEID
        do {
            identity = try SPIFFEID(trustDomain: TrustDomain(trustDomain), namespace: namespace, serviceAccount: serviceAccount)
        } catch let error as IssuanceError {
            throw CommandInput.invalidArgument(error.message)
        }
        let key = try keyType.generate()
        let csr = try WorkloadCSR.pem(WorkloadCSR.make(for: identity, key: key))
        let chain: [String]
        let server: CAEndpoint
        do {
            (chain, server) = try await servers.firstAnswer(onFailover: { failed, next in
                notice("no answer from the CA at \(failed); asking \(next)")
            }) { endpoint in
                do {
                    return try await CAClient(endpoint: endpoint, trust: trust)
                        .createCertificate(csrPEM: csr, ttl: ttl, headers: ["authorization": "Bearer \(token.encoded)"])
                } catch let error as RPCError where error.code != .unavailable && error.code != .deadlineExceeded {
                    // An answer: said with the address that gave it, and not asked of the next.
                    throw CAError(.remoteRefusal, "The CA at \(endpoint) answered \(error.code): \(error.message)")
                }
            }
        } catch let error as CAUnreachableError {
            let trust = rootCertFile == nil ? "the token's pinned root (or --root-cert)" : "--root-cert \(rootCertFile ?? "")"
            // One address: one sentence. Several: one line each, then the advice on a line of its own.
            throw CAError(.caUnreachable, "\(error)\(error.attempts.count == 1 ? ". " : "\n")\(error.advice(trust: trust))")
        }
        let credentials = try CredentialBundle.accepted(
            istioChain: chain, from: server.description, for: identity, key: key.publicKey, pinnedRootSHA256: trust.pinnedRootSHA256)
        let outDirectory = FilePaths.absolute(out)
        try CredentialFiles.write(
            to: outDirectory,
            certChainPEM: credentials.certChainPEM,
            keyPEM: try key.serializeAsPEM().pemString + "\n",
            bundlePEM: credentials.bundlePEM
        )
        return IssuedCredentials(leaf: credentials.leaf, keyType: keyType, directory: outDirectory)
    }
}
