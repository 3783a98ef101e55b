import Foundation
import MeshCAErrors
import MeshCATestSupport

/// The `sqlite3` command-line shell (Debian package sqlite3), for the databases the benchmark creates or
/// reads directly: cfssl's certificate database, and the bulk fill of a ledger.
enum SQLiteShell {
    /// Runs `sql` against `database` and returns what the shell printed.
    static func run(database: String, _ sql: String) throws -> String {
        guard let binary = CFSSLServe.which("sqlite3") else {
            throw BenchError(.missingTool, "The sqlite3 shell is not installed; install it (apt-get install -y sqlite3), or skip the phases that need it (--skip-cfssl, --ledger-rows 0).")
        }
        let result = try Command.runBlocking(binary, ["-batch", "-bail", database], stdin: sql)
        guard result.status == 0 else { throw BenchError(.toolFailed, "sqlite3 \(database) failed: \(result.stderr.suffix(500))") }
        return result.stdout
    }
}
