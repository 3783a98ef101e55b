import Foundation
import MeshCATestSupport
import Testing

/// The commands with their ledger in PostgreSQL (a fresh database per test on the test kit's shared server).
@Suite(
    "meshca commands on a PostgreSQL ledger",
    .enabled(if: PostgreSQLServer.isAvailable, "\(PostgreSQLServer.unavailableReason)"))
struct PostgresLedgerCLITests {
    /// A new database's URL.
    func database() async throws -> String {
        let server = try await PostgreSQLServer.shared
        return server.url(database: try await server.createDatabase())
    }

    /// `meshca` on `ws`'s state directory with the ledger at `url` (MESHCA_LEDGER).
    func meshca(_ ws: Workspace, _ url: String, _ arguments: String...) async throws -> Command.Result {
        try await Command.meshca(arguments, environment: ["MESHCA_STATE_DIR": ws.state, "MESHCA_LEDGER": url], directory: ws.dir.path)
    }

    @Test("ledger migrate copies an SQLite ledger whole: same rows, same chain head; the copy takes new writes and checkpoints")
    func migrate() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        expectSuccess(try await ws.meshca("init"))
        for sa in ["a", "b", "c"] { expectSuccess(try await ws.meshca("issue", "--sa", sa, "--out", ws.dir.file(sa))) }
        expectSuccess(try await ws.meshca("token", "create", "--sa", "was"))
        let listed = try ws.json(try await ws.meshca("audit", "list", "--json"))
        let serials = listed.compactMap { $0["serial"] as? String }
        #expect(serials.count == 3)
        expectSuccess(try await ws.meshca("revoke", serials[0], "--reason", "keyCompromise"))
        expectSuccess(try await ws.meshca("audit", "verify", "--checkpoint"))
        let before = try ws.json(try await ws.meshca("audit", "verify", "--json"))[0]

        let url = try await database()
        let migrated = try await ws.meshca("ledger", "migrate", "--to", url, "--json")
        expectSuccess(migrated)
        let copied = try ws.json(migrated)[0]
        #expect(copied["head"] as? String == before["head"] as? String, "\(copied) \(before)")
        #expect((copied["tables"] as? [String: Any])?["issuances"] as? Int == 3, "\(copied)")

        let after = try ws.json(try await meshca(ws, url, "audit", "verify", "--json"))[0]
        #expect(after["intact"] as? Bool == true, "\(after)")
        #expect(after["head"] as? String == before["head"] as? String)
        let copiedRows = try ws.json(try await meshca(ws, url, "audit", "list", "--json"))
        #expect(Set(copiedRows.compactMap { $0["serial"] as? String }) == Set(serials))
        #expect(copiedRows.contains { $0["serial"] as? String == serials[0] && $0["revocation_reason"] as? String == "keyCompromise" })

        // New writes after the copy: an issuance, and a checkpoint (whose id continues after the copied one's).
        expectSuccess(try await meshca(ws, url, "issue", "--sa", "d", "--out", ws.dir.file("d")))
        expectSuccess(try await meshca(ws, url, "audit", "verify", "--checkpoint"))
        let final = try ws.json(try await meshca(ws, url, "audit", "verify", "--json"))[0]
        #expect(final["intact"] as? Bool == true, "\(final)")

        let again = try await ws.meshca("ledger", "migrate", "--to", url)
        #expect(again.status != 0)
        #expect(again.stderr.contains("already holds a ledger"), "\(again.stderr)")
    }

    @Test("init with a PostgreSQL ledger makes no ledger.db; token, issue, revoke, crl, audit and doctor use the database")
    func commandsUseTheDatabase() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        let url = try await database()
        expectSuccess(try await meshca(ws, url, "init"))
        #expect(!FileManager.default.fileExists(atPath: ws.state + "/ledger.db"))
        expectSuccess(try await meshca(ws, url, "token", "create", "--sa", "was"))
        expectSuccess(try await meshca(ws, url, "issue", "--sa", "was", "--out", ws.dir.file("was")))
        let rows = try ws.json(try await meshca(ws, url, "audit", "list", "--json"))
        let serial = try #require(rows.first?["serial"] as? String)
        expectSuccess(try await meshca(ws, url, "revoke", serial))
        let crl = try await meshca(ws, url, "crl", "--out", ws.dir.file("crl.pem"))
        expectSuccess(crl)
        let text = try await ws.openssl("crl", "-in", ws.dir.file("crl.pem"), "-noout", "-text")
        #expect(text.stdout.contains("Serial Number: \(serial.uppercased())"), "\(text.stdout)")
        let tokens = try await meshca(ws, url, "token", "list")
        expectSuccess(tokens)
        #expect(tokens.stdout.contains("was"))
        let doctor = try await meshca(ws, url, "doctor")
        expectSuccess(doctor)
        #expect(doctor.stdout.contains(url), "doctor names the ledger: \(doctor.stdout)")
        #expect(!FileManager.default.fileExists(atPath: ws.state + "/ledger.db"), "no command made an SQLite ledger")
    }
}
