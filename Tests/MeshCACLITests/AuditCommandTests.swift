import Foundation
import MeshCATestSupport
import Testing

@Suite("meshca audit and meshca inspect")
struct AuditCommandTests {
    @Test("Filters by identity, expiry and status; show decodes one certificate; --pem round-trips through OpenSSL")
    func auditing() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        expectSuccess(try await ws.meshca("issue", "--sa", "was", "--out", "a"))
        expectSuccess(try await ws.meshca("issue", "--sa", "api", "--ns", "payments", "--ttl", "1h", "--out", "b"))
        expectSuccess(try await ws.meshca("issue", "--sa", "was", "--ns", "payments", "--ttl", "7d", "--out", "c"))

        let all = try ws.json(try await ws.meshca("audit", "list", "--json"))
        #expect(all.count == 3)
        let payments = try ws.json(try await ws.meshca("audit", "list", "--ns", "payments", "--json"))
        #expect(payments.compactMap { $0["service_account"] as? String } == ["api", "was"])
        let was = try ws.json(try await ws.meshca("audit", "list", "--sa", "was", "--json"))
        #expect(was.count == 2)
        let soon = try ws.json(try await ws.meshca("audit", "list", "--expiring-within", "2h", "--json"))
        #expect(soon.compactMap { $0["spiffe_id"] as? String } == ["spiffe://cluster.local/ns/payments/sa/api"])
        #expect(try await ws.json(try await ws.meshca("audit", "list", "--status", "expired", "--json")).isEmpty)
        #expect(try await ws.json(try await ws.meshca("audit", "list", "--status", "valid", "--json")).count == 3)
        #expect(try await ws.json(try await ws.meshca("audit", "list", "--since", "1h", "--json")).count == 3)

        let table = try await ws.meshca("audit", "list")
        expectSuccess(table)
        #expect(table.stdout.hasPrefix("SERIAL"))
        #expect(table.stdout.contains("spiffe://cluster.local/ns/payments/sa/api"))

        let serial = try #require(soon.first?["serial"] as? String)
        let show = try await ws.meshca("audit", "show", String(serial.prefix(10)), "--pem")
        expectSuccess(show)
        #expect(show.stdout.contains("spiffe://cluster.local/ns/payments/sa/api"))
        #expect(show.stdout.contains("left)"))
        try ws.dir.write("shown.pem", String(show.stdout[show.stdout.range(of: "-----BEGIN")!.lowerBound...]))
        let fingerprint = try await ws.openssl("x509", "-in", "shown.pem", "-noout", "-fingerprint", "-sha256").stdout
            .split(separator: "=").last.map { $0.replacingOccurrences(of: ":", with: "").lowercased().trimmingCharacters(in: .whitespacesAndNewlines) }
        #expect(show.stdout.contains(try #require(fingerprint)))

        let unknown = try await ws.meshca("audit", "show", "abcdef0123")
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("No certificate with serial"))
    }

    @Test("inspect passes good credentials and fails a key that belongs to another certificate")
    func inspect() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        expectSuccess(try await ws.meshca("issue", "--sa", "was", "--out", "a"))
        expectSuccess(try await ws.meshca("issue", "--sa", "was", "--out", "b"))
        let good = try await ws.meshca("inspect", "a")
        expectSuccess(good)
        #expect(good.stdout.contains("identity spiffe://cluster.local/ns/default/sa/was"))
        #expect(good.stdout.contains("chain verifies to root-cert.pem"))
        try FileManager.default.removeItem(atPath: ws.dir.file("a/key.pem"))
        try FileManager.default.copyItem(atPath: ws.dir.file("b/key.pem"), toPath: ws.dir.file("a/key.pem"))
        let bad = try await ws.meshca("inspect", "a")
        #expect(bad.status == 1)
        #expect(bad.stdout.contains("FAIL  key.pem does not match"))
    }
}
