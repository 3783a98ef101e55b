import ArgumentParser
import Foundation
import GRPCCore
import MeshCACore
import MeshCADaemon
import MeshCAIO
import MeshCATransport
import SwiftASN1
import X509

extension Issue {
    /// The join token from `--token-file` (surrounding whitespace removed) or `--token`, and the flag it came from.
    func joinTokenText() throws -> (text: String, flag: String) {
        guard let tokenFile else { return (token ?? "", "--token") }
        guard let data = FileManager.default.contents(atPath: tokenFile) else {
            throw ValidationError("--token-file: cannot read \(tokenFile); check that the file exists and is readable by this user.")
        }
        return (String(decoding: data, as: UTF8.self).trimmed, "--token-file \(tokenFile)")
    }

    /// `meshca issue --server`: the same three files, from a running CA daemon (the first of `servers` that answers).
    func issueRemotely(servers: CAAddresses, token source: (text: String, flag: String), keyType: KeyType, ttl: Duration) async throws {
        let token: JoinToken
        do {
            token = try JoinToken(parsing: source.text)
        } catch let error as IssuanceError {
            throw ValidationError("\(source.flag): \(error.message)")
        }
        let trust: CAClient.Trust
        if let rootCert {
            guard let data = FileManager.default.contents(atPath: rootCert), let roots = try? Certificate.parseAll(pem: String(decoding: data, as: UTF8.self)), !roots.isEmpty else {
                throw ValidationError("--root-cert: \(rootCert) is not a readable PEM file of root certificates.")
            }
            trust = .roots(roots)
        } else {
            trust = .pinnedRoot(sha256: token.rootFingerprint)
        }
        let identity: SPIFFEID
        do {
            identity = try SPIFFEID(trustDomain: TrustDomain(trustDomain), namespace: namespace, serviceAccount: serviceAccount)
        } catch let error as IssuanceError {
            throw ValidationError(error.message)
        }
        let key = try keyType.generate()
        let csr = try WorkloadCSR.pem(WorkloadCSR.make(for: identity, key: key))
        let chain: [String]
        let server: CAEndpoint
        do {
            (chain, server) = try await servers.firstAnswer(onFailover: { failed, next in
                printError("meshca: no answer from the CA at \(failed); asking \(next)")
            }) { endpoint in
                do {
                    return try await CAClient(endpoint: endpoint, trust: trust)
                        .createCertificate(csrPEM: csr, ttl: ttl, headers: ["authorization": "Bearer \(token.encoded)"])
                } catch let error as RPCError where error.code != .unavailable && error.code != .deadlineExceeded {
                    // An answer: said with the address that gave it, and not asked of the next.
                    throw RemoteIssueError(refusal: error, from: endpoint)
                }
            }
        } catch let error as CAUnreachableError {
            throw RemoteIssueError(error, trust: rootCert == nil ? "the token's pinned root (or --root-cert)" : "--root-cert \(rootCert ?? "")")
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
        try report(IssuedCredentials(leaf: credentials.leaf, keyType: keyType, directory: outDirectory))
    }
}

/// A refusal from a remote CA, or no answer from any of its addresses, shown with what to do.
struct RemoteIssueError: Error, CustomStringConvertible {
    let description: String

    /// The CA's answer: a gRPC status other than `UNAVAILABLE` or `DEADLINE_EXCEEDED`.
    init(refusal error: RPCError, from endpoint: CAEndpoint) {
        description = "The CA at \(endpoint) answered \(error.code): \(error.message)"
    }

    /// No address answered; `trust` names the roots the CA's certificate was checked against.
    init(_ error: CAUnreachableError, trust: String) {
        // One address: one sentence. Several: one line each, then the advice on a line of its own.
        description = "\(error)\(error.attempts.count == 1 ? ". " : "\n")\(error.advice(trust: trust))"
    }
}
