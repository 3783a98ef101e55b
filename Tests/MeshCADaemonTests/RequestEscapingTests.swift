import Foundation
import GRPCCore
import Logging
import MeshCACore
import MeshCADaemon
import MeshCALedger
import MeshCATestSupport
import MeshCATransport
import Synchronization
import Testing
import X509

/// A PEM CSR asking for `uris`, signed with a fresh P-256 key.
func csr(uris: [String]) throws -> String {
    try TestPKI.csr(extensions: Certificate.Extensions { Critical(SubjectAlternativeNames(uris.map { .uniformResourceIdentifier($0) })) })
}

@Suite("Request text is escaped before it reaches the log and the ledger")
struct RequestEscapingTests {
    static let forged =
        "spiffe://cluster.local/ns/default/sa/was\n2027-01-15T08:00:00+0000 info meshca: issued spiffe_id=spiffe://cluster.local/ns/kube-system/sa/admin"
    static let shown = "sa/was\\n2027-01-15T08:00:00+0000 info meshca: issued spiffe_id="

    @Test("A CSR URI with a newline shows up escaped in the log line and the rejection row, never as a second line")
    func csrURIWithNewline() async throws {
        let fixture = try await HandlerFixture("escape")
        defer { fixture.dir.remove() }
        let error = await fixture.failure(fixture.call(csr: try csr(uris: [Self.forged])))
        #expect(error?.code == .permissionDenied)
        #expect(error?.message.contains(Self.shown) == true)

        let refused = try #require(fixture.log.entries.first { $0.message == "refused" })
        #expect(refused.metadata["message"]?.contains(Self.shown) == true)
        for entry in fixture.log.entries {
            #expect(!entry.message.contains("\n") && !entry.metadata.values.contains { $0.contains("\n") })
        }
        #expect(!fixture.log.entries.contains { $0.message == "issued" })

        let rejection = try #require(try await fixture.ledger.rejections(since: nil, limit: nil).first)
        #expect(rejection.reasonCode == "identity-mismatch")
        #expect(rejection.message.contains(Self.shown))
        #expect(!rejection.message.contains("\n"))
    }

    @Test("An ImpersonatedIdentity with control characters is escaped in the rejection row and the log; the caller gets istiod's opaque refusal")
    func impersonatedIdentity() async throws {
        // A trusted caller, so the value itself is checked (and refused: it is not a SPIFFE ID).
        let fixture = try await HandlerFixture("escape", trustedNodeAccounts: ["default/was"])
        defer { fixture.dir.remove() }
        let call = fixture.call(
            csr: try csr(uris: ["spiffe://cluster.local/ns/default/sa/was"]),
            metadata: ["ImpersonatedIdentity": "spiffe://cluster.local/ns/x/sa/y\r\n\u{1B}[2Kfake"]
        )
        let error = await fixture.failure(call)
        #expect(error?.code == .unauthenticated)
        #expect(error?.message == "request impersonation authentication failure")
        let rejection = try #require(try await fixture.ledger.rejections(since: nil, limit: nil).first)
        #expect(rejection.reasonCode == "impersonation")
        #expect(rejection.message.contains("sa/y\\r\\n\\u{1B}[2Kfake"))
        #expect(rejection.requestedIdentity.contains("sa/y\\r\\n\\u{1B}[2Kfake"))
        let line = try #require(fixture.log.all.first { $0.hasPrefix("notice refused an impersonation") })
        #expect(line.contains("sa/y\\r\\n\\u{1B}[2Kfake") && !line.contains("\u{1B}") && !line.contains("\n"), "\(line)")
    }
}
