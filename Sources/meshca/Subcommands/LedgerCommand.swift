import ArgumentParser
import Foundation
import MeshCADaemon

/// `meshca ledger`: moving the ledger between engines.
struct LedgerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ledger",
        abstract: "Move the ledger between engines (SQLite in the state directory, PostgreSQL).",
        subcommands: [LedgerMigrate.self]
    )
}

/// `meshca ledger migrate --to URL`
struct LedgerMigrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Copy the state directory's SQLite ledger into an empty PostgreSQL database and verify the copy.",
        discussion: """
            Copies every row (issuances, refusals, join tokens, the hash chain and its signed checkpoints) \
            unchanged, then verifies the copy as `meshca audit verify` does; it must end on the original's chain \
            head. Stop `meshca serve` first. A database that already holds a ledger is refused. The SQLite ledger is \
            left as it was.
            """
    )

    @OptionGroup var state: StateOptions

    @Option(
        name: .customLong("to"),
        help: ArgumentHelp(
            "The empty PostgreSQL database: postgres://USER@HOST:PORT/DATABASE?sslmode=verify-full (no password here).",
            valueName: "url"))
    var url: String

    @Option(
        name: .customLong("ledger-password-file"),
        help: ArgumentHelp("The file holding the database password (default: $MESHCA_LEDGER_PASSWORD_FILE, else PGPASSWORD, else ~/.pgpass).", valueName: "file"))
    var passwordFile: String?

    @Flag(help: "Print JSON (one object: target, tables, events, head; see docs/reference/json.md).")
    var json = false

    @OptionGroup var progress: ProgressOptions

    func validate() throws {
        guard (try? LedgerLocation.parse(url)) != nil else {
            throw ValidationError(
                "--to \(url) is not a PostgreSQL URL. Give the empty database as postgres://USER@HOST:PORT/DATABASE"
                    + "?sslmode=verify-full (the password in --ledger-password-file, PGPASSWORD or ~/.pgpass).")
        }
    }

    func run() async throws {
        let target = try LedgerLocation.resolve(explicit: url, passwordFile: passwordFile)
        let copied = try await LedgerCopy(directory: state.directory, target: target).run(quiet: progress.quiet)
        if json {
            let object: [String: Any] = [
                "target": copied.target, "events": copied.report.eventCount, "head": copied.report.headHash,
                "tables": Dictionary(uniqueKeysWithValues: copied.rows.map { ($0.table, $0.count) }) as [String: Int64],
            ]
            return print(try JSONOutput.render(object: object))
        }
        print("copied the ledger of \(state.directory.path) into \(copied.target):")
        for (table, count) in copied.rows { print("  \(table.padding(toLength: 20, withPad: " ", startingAt: 0)) \(count) rows") }
        print("verified: \(copied.report.eventCount) events, \(copied.report.checkpoints.count) checkpoint(s), head \(copied.report.headHash.prefix(16))…")
        print("Now start meshca serve with the ledger in PostgreSQL (and pass the same to every meshca command):")
        print("  --ledger '\(copied.target)'" + (passwordFile.map { " --ledger-password-file \($0)" } ?? ""))
        print("  (or MESHCA_LEDGER / `ledger:` in the settings file). The SQLite ledger.db is unchanged; keep it as a backup.")
    }
}
