import Foundation
import MeshCATestSupport
import Testing

/// `meshca audit verify`, `doctor` and `backup` show progress on stderr only when it is a terminal (run here under
/// `script`, which gives the command a pseudo-terminal), and never with --quiet or into a pipe.
@Suite("Progress of long commands on a terminal", .timeLimit(.minutes(2)))
struct ProgressCommandTests {
    /// Runs `meshca ARGS` under `script` (stdin, stdout and stderr on one pseudo-terminal); what the terminal got.
    static func onTerminal(_ ws: Workspace, _ arguments: [String]) async throws -> Command.Result {
        let command = ([Command.meshcaBinary] + arguments).map { "'\($0)'" }.joined(separator: " ")
        return try await Command.run(
            "script", ["-qec", command, "/dev/null"], environment: ["MESHCA_STATE_DIR": ws.state], directory: ws.dir.path)
    }

    @Test("audit verify, doctor and backup: a progress line on a terminal, none with --quiet, none into a pipe")
    func progress() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        expectSuccess(try await ws.meshca("issue", "--sa", "was", "--out", "a"))
        let cases: [(arguments: [String], shows: String)] = [
            (["audit", "verify"], "verifying the ledger: 0 of 1 events (0%)"),
            (["doctor"], "verifying the ledger: 0 of 1 events (0%)"),
            (["backup", ws.dir.file("copy")], "verifying the copy's ledger: 0 of 1 events (0%)"),
        ]
        for (arguments, shows) in cases {
            let shown = try await Self.onTerminal(ws, arguments)
            #expect(shown.status == 0, "\(arguments): \(shown.stdout)")
            #expect(shown.stdout.contains("\r\u{1b}[K" + shows), "\(arguments): \(shown.stdout.debugDescription)")
            let quiet = try await Self.onTerminal(ws, arguments.map { $0 == ws.dir.file("copy") ? ws.dir.file("copy2") : $0 } + ["--quiet"])
            #expect(quiet.status == 0, "\(arguments): \(quiet.stdout)")
            #expect(!quiet.stdout.contains("verifying"), "\(arguments) --quiet: \(quiet.stdout.debugDescription)")
            let piped = try await Command.meshca(
                arguments.map { $0 == ws.dir.file("copy") ? ws.dir.file("copy3") : $0 }, environment: ["MESHCA_STATE_DIR": ws.state],
                directory: ws.dir.path)
            #expect(piped.status == 0, "\(arguments): \(piped.stderr)")
            #expect(!piped.stderr.contains("verifying") && !piped.stderr.contains("\u{1b}"), "\(arguments): \(piped.stderr.debugDescription)")
        }
    }
}
