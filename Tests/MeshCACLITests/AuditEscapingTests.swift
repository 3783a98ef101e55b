import Foundation
import MeshCATestSupport
import Testing

@Suite("meshca audit escapes what requests sent before printing it")
struct AuditEscapingTests {
    @Test("A rejection whose message holds a newline and a terminal escape prints as one escaped row")
    func rejectionsTable() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        expectSuccess(try await ws.meshca("issue", "--sa", "was", "--out", "a"))
        // A row as an older meshca recorded it, with the CSR's text unescaped: char(10) is a newline,
        // char(27) ESC (the start of a terminal control sequence), char(8238) U+202E RIGHT-TO-LEFT OVERRIDE.
        let insert = """
            INSERT INTO rejections (occurred_at, requester, auth_method, requested_identity, reason_code, message, peer)
            VALUES (strftime('%s','now'), 'token:0123456789ab', 'token', 'spiffe://cluster.local/ns/default/sa/was',
                    'identity-mismatch',
                    'The CSR asks for spiffe://x' || char(10) || '2027-01-15T08:00:00Z issued admin' || char(27) || '[2K' || char(8238) || 'gpj.exe',
                    'ipv4:127.0.0.1:40000');
            """
        let sql = try await Command.run("sqlite3", [ws.dir.file("state/ledger.db"), insert])
        #expect(sql.status == 0, "\(sql.stderr)")

        let table = try await ws.meshca("audit", "rejections")
        expectSuccess(table)
        let lines = table.stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.count == 2, "\(table.stdout)")
        #expect(table.stdout.contains("spiffe://x\\n2027-01-15T08:00:00Z issued admin\\u{1B}[2K\\u{202E}gpj.exe"))
        #expect(!table.stdout.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x202E })
    }
}
