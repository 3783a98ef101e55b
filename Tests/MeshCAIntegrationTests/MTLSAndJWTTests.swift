import Crypto
import Foundation
import GRPCCore
import MeshCACore
import MeshCATestSupport
import MeshCATransport
import SwiftASN1
import Testing
import X509

@Suite("meshca serve with client certificates and service-account JWTs")
struct MTLSAndJWTTests {
    @Test("A workload renews over mTLS with its current certificate, without a token")
    func mtlsRenewal() async throws {
        let daemon = try await TestDaemon.start()
        defer { daemon.stop() }
        let token = try await daemon.token()
        let (key, csr) = try workloadCSR()
        let first = try await daemon.client().createCertificate(csrPEM: csr, ttl: nil, headers: bearer(token))
        let identity = CAClient.ClientIdentity(chainPEM: first.joined(), keyPEM: try key.serializeAsPEM().pemString)

        let renewed = try await daemon.client(identity: identity).createCertificate(csrPEM: workloadCSR().pem, ttl: nil)
        #expect(try CredentialBundle(istioChain: renewed).leaf.uriSANs == ["spiffe://cluster.local/ns/default/sa/was"])
        let mtls = try await daemon.ledger().filter { ($0["auth_method"] as? String) == "mtls" }
        #expect(mtls.count == 1)
        #expect(mtls.first?["requester"] as? String == "mtls:\(try CredentialBundle(istioChain: first).leaf.serialHex)")

        // The client certificate is the identity: asking for another one over mTLS is refused.
        let other = await RPCResult.code {
            _ = try await daemon.client(identity: identity).createCertificate(csrPEM: try workloadCSR(sa: "admin").pem, ttl: nil)
        }
        #expect(other == .permissionDenied)
    }

    @Test("A client certificate from another CA is refused in the TLS handshake")
    func foreignClientCertificate() async throws {
        let daemon = try await TestDaemon.start()
        defer { daemon.stop() }
        let foreign = try TemporaryDirectory("foreign")
        defer { foreign.remove() }
        #expect(try await Command.meshca(["issue", "--sa", "was", "--state-dir", foreign.file("state"), "--out", foreign.path]).status == 0)
        let identity = CAClient.ClientIdentity(chainPEM: try foreign.read("cert-chain.pem"), keyPEM: try foreign.read("key.pem"))
        let code = await RPCResult.code {
            _ = try await daemon.client(identity: identity).createCertificate(csrPEM: try workloadCSR().pem, ttl: nil)
        }
        #expect(code == .unavailable)
        await #expect(try daemon.ledger().filter { ($0["auth_method"] as? String) == "mtls" }.isEmpty)
    }

    @Test("A Kubernetes service-account JWT is verified offline: identity from the kubernetes.io claim; bad audience and expiry refused")
    func serviceAccountJWT() async throws {
        let directory = try TemporaryDirectory("jwt")
        let signingKey = P256.Signing.PrivateKey()
        try directory.write("jwks.pem", signingKey.publicKey.pemRepresentation)
        let issuer = "https://kubernetes.default.svc.cluster.local"
        let daemon = try await TestDaemon.start(["--jwt-keys", directory.file("jwks.pem"), "--jwt-issuer", issuer], directory: directory)
        defer { daemon.stop() }
        let now = Int(Date().timeIntervalSince1970)
        func jwt(aud: [String] = ["istio-ca"], exp: Int = now + 3600, iss: String = issuer) throws -> String {
            try JWTText.es256(
                [
                    "iss": iss, "aud": aud, "exp": exp, "iat": now, "nbf": now - 10,
                    "sub": "system:serviceaccount:payments:api",
                    "kubernetes.io": ["namespace": "payments", "serviceaccount": ["name": "api", "uid": "1"], "pod": ["name": "api-0", "uid": "2"]],
                ],
                key: signingKey
            )
        }
        let client = try daemon.client()
        let chain = try await client.createCertificate(csrPEM: workloadCSR(sa: "api", ns: "payments").pem, ttl: nil, headers: bearer(jwt()))
        #expect(try CredentialBundle(istioChain: chain).leaf.uriSANs == ["spiffe://cluster.local/ns/payments/sa/api"])
        await #expect(try daemon.ledger().contains { ($0["requester"] as? String) == "jwt:system:serviceaccount:payments:api" })

        let csr = try workloadCSR(sa: "api", ns: "payments").pem
        let audience = await RPCResult.failure { _ = try await client.createCertificate(csrPEM: csr, ttl: nil, headers: bearer(try jwt(aud: ["other"]))) }
        #expect(audience?.code == .unauthenticated)
        #expect(audience?.message.contains("istio-ca") == true)
        let expired = await RPCResult.failure { _ = try await client.createCertificate(csrPEM: csr, ttl: nil, headers: bearer(try jwt(exp: now - 600))) }
        #expect(expired?.code == .unauthenticated)
        #expect(expired?.message.contains("expired") == true)
        let wrongIssuer = await RPCResult.code { _ = try await client.createCertificate(csrPEM: csr, ttl: nil, headers: bearer(try jwt(iss: "https://evil"))) }
        #expect(wrongIssuer == .unauthenticated)
        let forged = try JWTText.es256(["aud": ["istio-ca"], "exp": now + 60, "iss": issuer, "sub": "system:serviceaccount:payments:api"], key: P256.Signing.PrivateKey())
        let forgedCode = await RPCResult.code { _ = try await client.createCertificate(csrPEM: csr, ttl: nil, headers: bearer(forged)) }
        #expect(forgedCode == .unauthenticated)
    }
}
