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

    /// `meshca issue --server`: the same three files, from a running CA daemon.
    func issueRemotely(server: String, token source: (text: String, flag: String), keyType: KeyType, ttl: Duration) async throws {
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
        let client = try CAClient(address: server, trust: trust)
        let chain: [String]
        do {
            chain = try await client.createCertificate(csrPEM: csr, ttl: ttl, headers: ["authorization": "Bearer \(token.encoded)"])
        } catch let error as RPCError {
            throw RemoteIssueError(server: server, error: error)
        }
        let credentials = try CredentialBundle.accepted(
            istioChain: chain, from: server, for: identity, key: key.publicKey, pinnedRootSHA256: trust.pinnedRootSHA256)
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

/// A refusal or failure from a remote CA, shown with its gRPC status and what to do.
struct RemoteIssueError: Error, CustomStringConvertible {
    let description: String

    init(server: String, error: RPCError) {
        guard error.code == .unavailable else {
            description = "The CA at \(server) answered \(error.code): \(error.message)"
            return
        }
        // No answer at all: say what happened to the connection, in words.
        var cause = error.cause
        while let rpc = cause as? RPCError { cause = rpc.cause }
        if let words = cause.flatMap(ConnectionFailure.words(for:)) {
            description =
                "Cannot reach a CA at \(server): \(words). Is `meshca serve` running there? Its gRPC port is serve's --listen "
                + "(default 127.0.0.1:15012)."
        } else if error.message.contains("accepted the TCP connection") {
            let detail = cause.map { " (\(String(describing: $0).escapedForLog))" } ?? ""
            description =
                "\(server) accepted the connection but no TLS session with a CA came of it\(detail). Either it is not meshca "
                + "serve's gRPC/TLS port (the monitoring port, default 15014, speaks plain HTTP; the gRPC port is --listen, "
                + "default 15012), or its certificate does not verify against the token's pinned root (or --root-cert)."
        } else {
            let detail = cause.map { " (\(String(describing: $0).escapedForLog))" } ?? ""
            description =
                "Cannot reach a CA at \(server): \(error.message.trimmingCharacters(in: CharacterSet(charactersIn: ".")))\(detail). Is `meshca serve` running there? Its gRPC port is "
                + "serve's --listen (default 127.0.0.1:15012)."
        }
    }
}
