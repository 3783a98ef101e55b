import Foundation
import MeshCACore
import MeshCAHarness
import Testing

/// Certificates that must not be accepted, each reported with its specific cause: time, trust, trust
/// domain. Expired and not-yet-valid certificates come from the core's injected clock.
@Suite("Certificate failures")
struct CertificateFailureTests {
    @Test("An expired server certificate is refused by the client, with its notAfter")
    func expiredServer() throws {
        let mesh = try TestMesh()
        defer { mesh.remove() }
        let web = try mesh.workload("web", issuedAt: Date().addingTimeInterval(-2 * 86_400), ttl: .seconds(3600))
        let api = try mesh.workload("api")
        let report = LoopbackHandshake(server: .credentials(directory: web), client: .credentials(directory: api)).run()
        let failure = try #require(report.failure)
        #expect(failure.code == .certificateExpired)
        #expect(failure.detectedBy == .client)
        let notAfter = try #require(report.server.presentedChain.first?.notAfter)
        #expect(
            failure.cause.contains(
                "The server's leaf spiffe://cluster.local/ns/default/sa/web expired at \(notAfter.formatted(.iso8601))")
        )
        #expect(failure.cause.contains("the client's clock says"))
        #expect(failure.fix.hasPrefix("Renew it"))
        #expect(failure.rawReason.contains("certificate has expired"))
    }

    @Test("An expired client certificate is refused by the server")
    func expiredClient() throws {
        let mesh = try TestMesh()
        defer { mesh.remove() }
        let web = try mesh.workload("web")
        let api = try mesh.workload("api", issuedAt: Date().addingTimeInterval(-2 * 86_400), ttl: .seconds(3600))
        let report = LoopbackHandshake(server: .credentials(directory: web), client: .credentials(directory: api)).run()
        let failure = try #require(report.failure)
        #expect(failure.code == .certificateExpired)
        #expect(failure.detectedBy == .server)
        #expect(failure.cause.contains("The client's leaf spiffe://cluster.local/ns/default/sa/api expired at"))
        // What the client saw: the alert the server sent.
        #expect(failure.rawReason.contains("alert certificate expired"))
    }

    @Test("A certificate that is not valid yet is explained as clock skew, with its notBefore")
    func notYetValid() throws {
        let mesh = try TestMesh()
        defer { mesh.remove() }
        let web = try mesh.workload("web", issuedAt: Date().addingTimeInterval(86_400))
        let api = try mesh.workload("api")
        let report = LoopbackHandshake(server: .credentials(directory: web), client: .credentials(directory: api)).run()
        let failure = try #require(report.failure)
        #expect(failure.code == .certificateNotYetValid)
        let notBefore = try #require(report.server.presentedChain.first?.notBefore)
        #expect(
            failure.cause.contains("is not valid until \(notBefore.formatted(.iso8601)) (not valid for another 23h"))
        #expect(failure.cause.contains("clock skew"))
        #expect(failure.fix.contains("NTP"))
        #expect(failure.rawReason.contains("certificate is not yet valid"))
    }

    @Test("A server from a different CA does not verify against the client's root-cert.pem")
    func foreignRoot() throws {
        let mesh = try TestMesh()
        let other = try TestMesh(trustDomain: "other.org")
        defer {
            mesh.remove()
            other.remove()
        }
        let web = try other.workload("web")
        let api = try mesh.workload("api")
        let report = LoopbackHandshake(server: .credentials(directory: web), client: .credentials(directory: api)).run()
        let failure = try #require(report.failure)
        #expect(failure.code == .untrustedChain)
        #expect(failure.detectedBy == .client)
        #expect(failure.cause.contains("it was issued by O=other.org"))
        #expect(failure.cause.contains("the client trusts only O=cluster.local"))
        #expect(failure.cause.contains("different CAs"))
        #expect(failure.rawReason.contains("self-signed certificate in certificate chain"))
    }

    @Test("A root rotation that has not reached the client is named as such, and holding both roots fixes it")
    func rootRotationNotReached() throws {
        let old = try TestMesh()
        let new = try TestMesh()  // same trust domain, new key: the rotated root
        defer {
            old.remove()
            new.remove()
        }
        let web = try new.workload("web", trusting: [old.root, new.root])
        let api = try old.workload("api")
        let report = LoopbackHandshake(server: .credentials(directory: web), client: .credentials(directory: api)).run()
        let failure = try #require(report.failure)
        #expect(failure.code == .untrustedChain)
        #expect(failure.cause.contains("Same name, different key"))
        #expect(failure.cause.contains("root rotation that has not reached the client"))
        #expect(failure.fix.contains("must hold the old and the new root"))

        let rotated = try old.workload("api", name: "api-rotated", trusting: [old.root, new.root])
        let fixed = LoopbackHandshake(server: .credentials(directory: web), client: .credentials(directory: rotated))
            .run()
        #expect(fixed.outcome == .succeeded, "\(fixed.renderText())")
    }

    @Test("A client from a different CA is refused by the server's root-cert.pem")
    func foreignClient() throws {
        let mesh = try TestMesh()
        let other = try TestMesh()
        defer {
            mesh.remove()
            other.remove()
        }
        let web = try mesh.workload("web")
        let api = try other.workload("api", trusting: [mesh.root])
        let report = LoopbackHandshake(server: .credentials(directory: web), client: .credentials(directory: api)).run()
        let failure = try #require(report.failure)
        #expect(failure.code == .untrustedChain)
        #expect(failure.detectedBy == .server)
        #expect(
            failure.cause.hasPrefix("The client's certificate chain does not verify against the server's root-cert.pem")
        )
        #expect(failure.rawReason.contains("alert unknown ca"))
    }

    @Test("A server in another trust domain is refused even when its root is trusted")
    func wrongTrustDomain() throws {
        let mesh = try TestMesh()
        let other = try TestMesh(trustDomain: "other.org")
        defer {
            mesh.remove()
            other.remove()
        }
        let web = try other.workload("web", trusting: [mesh.root, other.root])
        let api = try mesh.workload("api", trusting: [mesh.root, other.root])
        let report = LoopbackHandshake(server: .credentials(directory: web), client: .credentials(directory: api)).run()
        let failure = try #require(report.failure)
        #expect(failure.code == .wrongTrustDomain)
        #expect(failure.detectedBy == .client)
        #expect(
            failure.cause
                == "The server is spiffe://other.org/ns/default/sa/web, in trust domain other.org, but the client accepts only trust domain cluster.local (from its own SPIFFE ID spiffe://cluster.local/ns/default/sa/api)."
        )
        #expect(report.client.peerVerification == "SPIFFE check failed")
    }
}
