import ArgumentParser
import Foundation
import MeshCACore
import MeshCADaemon
import MeshCAIO
import MeshCALedger
import MeshCAPKCS11

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
        do {
            _ = try location()
        } catch let error as DaemonError {
            throw ValidationError(error.message)
        }
    }

    /// Where the ledger is.
    func location() throws -> LedgerLocation {
        try LedgerLocation.resolve(explicit: url, passwordFile: passwordFile)
    }

    /// Opens the ledger of an existing CA (never creates a CA or an SQLite ledger), runs `body` on it and closes it.
    func with<T>(
        _ state: StateOptions, quiet: Bool = false, _ body: (any LedgerStore) async throws -> T
    ) async throws -> T {
        let directory = state.directory
        let location = try location()
        guard directory.hasCA || location.exists(in: directory) else {
            _ = try CAState.load(from: directory)  // throws the "no CA here, run meshca init" message
            throw DaemonError(.noCA, "There is no ledger in \(directory.path).")
        }
        // The first open after an upgrade to the hash chain chains every existing row: show how far it is.
        let progress = ProgressReporter("chaining the ledger's existing rows (once, after the upgrade)", unit: "events", quiet: quiet)
        var options = LedgerLocation.Options()
        options.backfillProgress = { done, total in
            progress.update(done: done, total: total)
            if done == total { progress.finish() }
        }
        return try await location.withLedger(in: directory, options: options, body)
    }
}

/// Reads a duration flag such as `24h`, turning a parse error into a usage error (exit 64).
func parseDuration(_ text: String, flag: String) throws -> Duration {
    do {
        return try HumanDuration.parse(text)
    } catch let error as IssuanceError {
        throw ValidationError("\(flag): \(error.message)")
    }
}

/// Refuses a `--out` (or similar) path that exists and is not a directory, before anything is created.
func requireDirectory(_ path: String, flag: String) throws {
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: FilePaths.absolute(path), isDirectory: &isDirectory), !isDirectory.boolValue {
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

/// Reads `--key`: a PKCS#11 URI (usage error, exit 64, when it is not one meshca can use).
func parseKeyURI(_ text: String?) throws -> PKCS11URI? {
    guard let text else { return nil }
    do {
        return try PKCS11URI(parsing: text)
    } catch {
        throw ValidationError("--key: \(error.message)")
    }
}
