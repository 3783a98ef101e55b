import Foundation
import MeshCATestSupport
import Testing

@Suite("meshca audit verify", .timeLimit(.minutes(2)))
struct AuditVerifyTests {
    /// A workspace whose ledger holds events #1 and #2 (issuances), #3 (a join token) and #4 (the root it pins).
    private func ledger() async throws -> Workspace {
        let ws = try Workspace()
        expectSuccess(try await ws.meshca("issue", "--sa", "was", "--out", "a"))
        expectSuccess(try await ws.meshca("issue", "--sa", "api", "--out", "b"))
        expectSuccess(try await ws.meshca("token", "create", "--sa", "was"))
        return ws
    }

    /// Runs `sql` on the workspace's ledger with the sqlite3 shell, as someone editing the file by hand would.
    private func sqlite(_ ws: Workspace, _ sql: String) async throws -> String {
        let result = try await Command.run("sqlite3", [ws.state + "/ledger.db", sql])
        #expect(result.status == 0, "sqlite3: \(result.stderr)")
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test(
        "An untouched ledger verifies with exit 0; --checkpoint creates the ledger key and a signature OpenSSL accepts")
    func clean() async throws {
        let ws = try await ledger()
        defer { ws.remove() }
        let plain = try await ws.meshca("audit", "verify")
        expectSuccess(plain)
        #expect(plain.stdout.contains("ledger intact: 4 events"), "\(plain.stdout)")
        #expect(!FileManager.default.fileExists(atPath: ws.state + "/ledger-key.pem"), "verify alone creates no key")

        let signed = try await ws.meshca("audit", "verify", "--checkpoint")
        expectSuccess(signed)
        #expect(signed.stdout.contains("checkpoint #1 covers events 1-4"), "\(signed.stdout)")
        #expect(try ws.dir.mode("state/ledger-key.pem") == 0o600)

        let report = try #require(try await ws.json(try await ws.meshca("audit", "verify", "--json")).first)
        #expect(report["intact"] as? Bool == true)
        #expect(report["events"] as? Int == 4)
        #expect(report["checkpoints"] as? Int == 1)
        #expect(report["first_problem"] is NSNull)
        let checkpoint = try #require(report["last_checkpoint"] as? [String: Any])
        try ws.dir.write("checkpoint.txt", try #require(checkpoint["signed_message"] as? String))
        let base64 = try #require(checkpoint["signature"] as? String)
        let signature = try #require(Data(base64Encoded: base64))
        try signature.write(to: URL(fileURLWithPath: ws.dir.file("checkpoint.sig")))
        let openssl = try await ws.openssl(
            "pkeyutl", "-verify", "-pubin", "-inkey", "state/ledger-key.pub.pem", "-rawin", "-in", "checkpoint.txt",
            "-sigfile", "checkpoint.sig")
        #expect(openssl.status == 0, "\(openssl.stdout)\(openssl.stderr)")
        #expect(openssl.stdout.contains("Signature Verified Successfully"))
    }

    /// A hand edit of the ledger file and what `audit verify --json` must report first.
    struct Edit: Sendable, CustomTestStringConvertible {
        let name: String
        let sql: String
        let kind: String
        let sequence: Int?
        var testDescription: String { name }
    }

    static let serialOfEvent2 = "(SELECT subject FROM ledger_events WHERE seq = 2)"
    static let edits = [
        Edit(
            name: "issuance field altered",
            sql: "UPDATE issuances SET not_after = not_after + 86400 WHERE serial = \(serialOfEvent2)",
            kind: "altered", sequence: 2),
        Edit(
            name: "issuance row deleted", sql: "DELETE FROM issuances WHERE serial = \(serialOfEvent2)",
            kind: "deleted", sequence: 2),
        Edit(
            name: "forged issuance inserted",
            sql:
                "INSERT INTO issuances SELECT 'badbad', spiffe_id, trust_domain, namespace, service_account, sans, "
                + "not_before, not_after, issued_at, requested_ttl_seconds, granted_ttl_seconds, key_type, "
                + "public_key_sha256, csr_sha256, "
                + "certificate_der, issuer_fingerprint, requester, auth_method, revoked_at, revocation_reason, peer "
                + "FROM issuances LIMIT 1",
            kind: "inserted", sequence: nil),
        Edit(
            name: "two events swapped",
            sql: "UPDATE ledger_events SET seq = -1 WHERE seq = 1; UPDATE ledger_events SET seq = 1 WHERE seq = 2; "
                + "UPDATE ledger_events SET seq = 2 WHERE seq = -1",
            kind: "reordered", sequence: 1),
        Edit(
            name: "token scope widened", sql: "UPDATE join_tokens SET service_account = 'admin'", kind: "altered",
            sequence: 3),
    ]

    @Test("Editing the ledger with sqlite3 makes verify exit 1 and name the first bad event", arguments: edits)
    func tampered(_ edit: Edit) async throws {
        let ws = try await ledger()
        defer { ws.remove() }
        let serial = try await sqlite(ws, "SELECT subject FROM ledger_events WHERE seq = 2")
        _ = try await sqlite(ws, edit.sql)

        let text = try await ws.meshca("audit", "verify")
        #expect(text.status == 1)
        #expect(text.stdout.hasPrefix("FAIL"), "\(text.stdout)")
        let json = try await ws.meshca("audit", "verify", "--json")
        #expect(json.status == 1)
        let report = try #require(try ws.json(json).first)
        #expect(report["intact"] as? Bool == false)
        let first = try #require(report["first_problem"] as? [String: Any])
        #expect(first["kind"] as? String == edit.kind)
        #expect(first["sequence"] as? Int == edit.sequence)
        if edit.sequence == 2 {
            #expect(first["subject"] as? String == serial)
            #expect(text.stdout.contains("Event #2 (issuance \(serial))"), "\(text.stdout)")
        }
        if edit.kind == "inserted" { #expect(text.stdout.contains("Issuance badbad was inserted")) }
    }

    @Test("A forged checkpoint signature, or a public key that is not the ledger key, fails with exit 1")
    func checkpoints() async throws {
        let ws = try await ledger()
        defer { ws.remove() }
        expectSuccess(try await ws.meshca("audit", "verify", "--checkpoint"))
        expectSuccess(try await ws.meshca("audit", "verify", "--public-key", "state/ledger-key.pub.pem"))

        #expect(try await ws.openssl("genpkey", "-algorithm", "ed25519", "-out", "other.pem").status == 0)
        #expect(try await ws.openssl("pkey", "-in", "other.pem", "-pubout", "-out", "other.pub.pem").status == 0)
        let otherKey = try await ws.meshca("audit", "verify", "--public-key", "other.pub.pem")
        #expect(otherKey.status == 1)
        #expect(otherKey.stdout.contains("not by the ledger key"), "\(otherKey.stdout)")

        _ = try await sqlite(ws, "UPDATE ledger_checkpoints SET signature = randomblob(64)")
        let forged = try await ws.meshca("audit", "verify", "--checkpoint")
        #expect(forged.status == 1)
        #expect(forged.stdout.contains("does not verify with the ledger key"), "\(forged.stdout)")
        #expect(forged.stdout.contains("No checkpoint was written"))
        await #expect(try sqlite(ws, "SELECT count(*) FROM ledger_checkpoints") == "1")
    }
}
