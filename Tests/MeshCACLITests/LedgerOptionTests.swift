import Foundation
import MeshCATestSupport
import Testing

@Suite("--ledger on the commands that use the ledger")
struct LedgerOptionTests {
    @Test(
        "A --ledger that is no PostgreSQL URL is a usage error naming the value and the form, on every ledger command",
        arguments: [
            ["audit", "list"], ["audit", "verify"], ["token", "list"], ["doctor"], ["root", "status"], ["crl"],
            ["issue", "--sa", "was"], ["ledger", "migrate", "--to"],
        ])
    func refusesOtherValues(command: [String]) async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        let arguments = command.last == "--to" ? command + [ws.state + "/ledger.db"] : command + ["--ledger", ws.state + "/ledger.db"]
        let result = try await Command.meshca(arguments, environment: ["MESHCA_STATE_DIR": ws.state])
        #expect(result.status == 64, "\(result.stderr)")
        #expect(result.stderr.contains("\(ws.state)/ledger.db is not a PostgreSQL URL"), "\(result.stderr)")
        #expect(result.stderr.contains("postgres://USER@HOST:PORT/DATABASE"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: ws.state), "nothing was created")
    }

    @Test("MESHCA_LEDGER is read like --ledger, and backup refuses a PostgreSQL ledger, saying how to back it up")
    func backupRefusesPostgres() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        expectSuccess(try await ws.meshca("init"))
        let url = "postgres://meshca@127.0.0.1:1/meshca?sslmode=disable"
        let result = try await Command.meshca(
            ["backup", ws.dir.file("copy")], environment: ["MESHCA_STATE_DIR": ws.state, "MESHCA_LEDGER": url])
        #expect(result.status == 1)
        #expect(result.stderr.contains("This CA's ledger is in PostgreSQL (\(url)), which meshca backup does not copy"), "\(result.stderr)")
        #expect(result.stderr.contains("pg_dump"))
        #expect(!FileManager.default.fileExists(atPath: ws.dir.file("copy")))
    }
}
