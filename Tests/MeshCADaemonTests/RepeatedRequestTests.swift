import Foundation
import GRPCCore
import Logging
import MeshCACore
import MeshCADaemon
import MeshCAIO
import MeshCALedger
import MeshCATestSupport
import MeshCATransport
import SwiftASN1
import Testing
import X509

/// A request repeated after its answer was lost (issue 12, defect 11): the same credential and the same CSR
/// key within the retry window get the certificate already issued, recorded as a repeat, not a second issuance.
@Suite("Repeated requests get the certificate already issued")
struct RepeatedRequestTests {
    /// The request path over a real SQLite ledger (what it records is the point) with a single-use join token.
    func makeFixture(retryWindow: Duration = RepeatedRequests.defaultWindow) async throws -> HandlerFixture {
        try await HandlerFixture("repeat", durable: true, tokenUses: 1, retryWindow: retryWindow)
    }

    @Test("A single-use token: the repeated request gets the same certificate, one issuance, one repeat row")
    func spentTokenRepeat() async throws {
        let fixture = try await makeFixture()
        defer { fixture.dir.remove() }
        let csr = try fixture.csr()
        let first = try await fixture.create(csr)
        let again = try await fixture.create(csr)
        #expect(again.serialHex == first.serialHex)
        #expect(again == first)
        #expect(try await fixture.ledger.issuances(matching: IssuanceQuery()).count == 1)
        let rows = try await fixture.ledger.rejections(since: nil, limit: nil)
        #expect(rows.map(\.reasonCode) == ["repeated-request"])
        #expect(rows.first?.requester == "token:\(fixture.token.id)")
        #expect(rows.first?.message.contains(first.serialHex) == true)
    }

    @Test("The spent token with a different CSR key is still refused")
    func spentTokenOtherKey() async throws {
        let fixture = try await makeFixture()
        defer { fixture.dir.remove() }
        _ = try await fixture.create(try fixture.csr())
        let error = await #expect(throws: RPCError.self) { _ = try await fixture.create(try fixture.csr()) }
        #expect(error?.code == .unauthenticated)
        #expect(error?.message.contains("has been used 1 of 1 times") == true)
        #expect(try await fixture.ledger.issuances(matching: IssuanceQuery()).count == 1)
    }

    @Test("With retry-window off the repeat is refused, as before")
    func windowOff() async throws {
        let fixture = try await makeFixture(retryWindow: .zero)
        defer { fixture.dir.remove() }
        let csr = try fixture.csr()
        _ = try await fixture.create(csr)
        let error = await #expect(throws: RPCError.self) { _ = try await fixture.create(csr) }
        #expect(error?.message.contains("has been used 1 of 1 times") == true)
    }

    @Test("Past the window, or once the certificate is revoked, the repeat is a new request")
    func windowAndRevocation() async throws {
        let fixture = try await makeFixture()
        defer { fixture.dir.remove() }
        let csr = try fixture.csr()
        let now = Date()
        let token = TokenUse(id: fixture.token.id, secretSHA256: fixture.token.secretSHA256, at: now)
        let requester = Requester(name: "token:\(fixture.token.id)", authMethod: "token")
        let request = IssuanceRequest(csrPEM: csr, identity: fixture.identity)
        let first = try await fixture.service.issue(request, requester: requester, consuming: token, at: now)
        let inside = try await fixture.service.issue(request, requester: requester, consuming: token, at: now.addingTimeInterval(299))
        #expect(inside.certificate == first.certificate)

        // Six minutes later the spent token is refused by the ledger: nothing is handed out.
        await #expect(throws: AuthenticationFailure.self) {
            _ = try await fixture.service.issue(request, requester: requester, consuming: token, at: now.addingTimeInterval(360))
        }
        _ = try await fixture.ledger.revoke(serial: first.certificate.serialHex, reason: "keyCompromise", at: now.addingTimeInterval(10))
        await #expect(throws: AuthenticationFailure.self) {
            _ = try await fixture.service.issue(request, requester: requester, consuming: token, at: now.addingTimeInterval(20))
        }
        #expect(try await fixture.ledger.issuances(matching: IssuanceQuery()).count == 1)
    }

    @Test("Without a token (JWT, mTLS) the same requester and key get the same certificate; another requester gets its own")
    func sameRequesterOnly() async throws {
        let fixture = try await makeFixture()
        defer { fixture.dir.remove() }
        let request = IssuanceRequest(csrPEM: try fixture.csr(), identity: fixture.identity)
        let jwt = Requester(name: "jwt:system:serviceaccount:default:was", authMethod: "jwt")
        let now = Date()
        let first = try await fixture.service.issue(request, requester: jwt, at: now)
        #expect(try await fixture.service.issue(request, requester: jwt, at: now.addingTimeInterval(5)).certificate == first.certificate)
        let other = try await fixture.service.issue(request, requester: Requester(name: "mtls:0a", authMethod: "mtls"), at: now.addingTimeInterval(5))
        #expect(other.certificate.serialHex != first.certificate.serialHex)
        #expect(try await fixture.ledger.issuances(matching: IssuanceQuery()).count == 2)
    }

    @Test("A repeat must still prove possession: a CSR with the same key but a broken signature gets nothing")
    func repeatChecksCSR() async throws {
        let fixture = try await makeFixture()
        defer { fixture.dir.remove() }
        let csr = try fixture.csr()
        let now = Date()
        let jwt = Requester(name: "jwt:system:serviceaccount:default:was", authMethod: "jwt")
        _ = try await fixture.service.issue(IssuanceRequest(csrPEM: csr, identity: fixture.identity), requester: jwt, at: now)
        // Flip one bit of the signature (the last bytes of the DER): same public key, signature no longer verifies.
        var der = try PEMDocument(pemString: csr).derBytes
        der[der.count - 1] ^= 0x01
        let broken = "-----BEGIN CERTIFICATE REQUEST-----\n" + Data(der).base64EncodedString(options: .lineLength64Characters)
            + "\n-----END CERTIFICATE REQUEST-----\n"
        await #expect(throws: IssuanceError.self) {
            _ = try await fixture.service.issue(IssuanceRequest(csrPEM: broken, identity: fixture.identity), requester: jwt, at: now)
        }
    }
}
