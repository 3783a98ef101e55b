import ArgumentParser
import Foundation
import MeshCADaemon

/// `--state-dir`, shared by every command that uses the CA's state.
struct StateOptions: ParsableArguments {
    @Option(
        name: .customLong("state-dir"),
        help: ArgumentHelp(
            "The CA's state directory (default: $MESHCA_STATE_DIR, else ${XDG_DATA_HOME:-~/.local/share}/meshca).",
            valueName: "dir"
        )
    )
    var stateDir: String?

    var directory: StateDirectory { StateDirectory.resolve(explicit: stateDir) }
}

/// `--ledger` and `--ledger-password-file`, on every command that reads or writes the ledger.
struct LedgerOptions: ParsableArguments {
    @Option(
        name: .customLong("ledger"),
        help: ArgumentHelp(
            "The PostgreSQL database the ledger is in, as `meshca serve --ledger` names it: postgres://USER@HOST:PORT/DATABASE?sslmode=verify-full (default: $MESHCA_LEDGER, else ledger.db in the state directory).",
            valueName: "url"))
    var url: String?

    @Option(
        name: .customLong("ledger-password-file"),
        help: ArgumentHelp(
            "The file holding the PostgreSQL ledger's password (default: $MESHCA_LEDGER_PASSWORD_FILE, else PGPASSWORD, else ~/.pgpass).",
            valueName: "file"))
    var passwordFile: String?

    /// A `--ledger` (or `MESHCA_LEDGER`) that is no PostgreSQL URL is a usage error.
    func validate() throws {
        _ = try usage { try CommandInput.ledger(url: url, passwordFile: passwordFile) }
    }

    /// Where the ledger is.
    func location() throws -> LedgerLocation {
        try LedgerLocation.resolve(explicit: url, passwordFile: passwordFile)
    }
}

/// Reads a duration flag such as `24h`, turning a parse error into a usage error (exit 64).
func parseDuration(_ text: String, flag: String) throws -> Duration {
    try usage("\(flag): ") { try CommandInput.duration(text) }
}

/// `body`'s value; a flag value it cannot use (`CAError` `invalid-argument`) is a usage error (exit 64): its message
/// after `prefix`.
func usage<T>(_ prefix: String = "", _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as CAError where error.code == .invalidArgument {
        throw ValidationError(prefix + error.message)
    }
}

/// `--quiet`, on the commands that show progress while they work through a whole ledger.
struct ProgressOptions: ParsableArguments {
    @Flag(help: "Show no progress on stderr (shown only when stderr is a terminal).")
    var quiet = false
}

/// Refuses a `--out` (or similar) path that exists and is not a directory, before anything is created.
func requireDirectory(_ path: String, flag: String) throws {
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: CommandInput.absolutePath(path), isDirectory: &isDirectory), !isDirectory.boolValue {
        throw ValidationError("\(flag) \(path) is a file, not a directory. Choose another \(flag).")
    }
}

/// Prints a line to standard error.
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

extension Date {
    /// RFC 3339 in UTC, whole seconds.
    var rfc3339: String { formatted(.iso8601) }
}

/// The help of `--key` on the commands that make a CA key (init, intermediate create, root prepare).
let hsmKeyHelp = ArgumentHelp(
    "Keep the key in a hardware security module: a PKCS#11 URI such as 'pkcs11:token=meshca;object=ca?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/meshca/hsm-pin' (the PIN from a file or env:NAME, never the URI). A key the token holds under that label/id is used; otherwise one is generated inside the token, not extractable.",
    valueName: "pkcs11-uri")
