import ArgumentParser
import CSQLite
import Foundation
import MeshCAHarness
import MeshCACore
import MeshCAIO
import MeshCAMigrations

/// `meshca version [--server HOST:PORT] [--json]` (also `meshca --version`).
struct Version: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version",
        abstract: "Print the version, the commit it was built from, the ledger schema and the OpenSSL and SQLite versions.",
        discussion: """
            With --server, also asks a running `meshca serve` through its monitoring endpoint (the meshca_build_info \
            line of /metrics) which version and commit it runs. The commit is recorded at build time \
            ($MESHCA_BUILD_COMMIT, else the git checkout's, with -dirty for uncommitted changes); "unknown" when \
            the binary was built outside a git checkout.
            """
    )

    @Option(
        help: ArgumentHelp(
            "Also ask the meshca serve whose monitoring endpoint is here (serve's --monitoring, default 127.0.0.1:15014).",
            valueName: "host:port"))
    var server: String?

    @Flag(help: "Print JSON (version, commit, ledger_schema, openssl, sqlite, and server when asked).")
    var json = false

    func validate() throws {
        if let server, (try? HostPort.parse(server)) == nil {
            throw ValidationError("--server \(server) is not HOST:PORT, e.g. 127.0.0.1:15014 (serve's --monitoring address).")
        }
    }

    func run() async throws {
        let local = VersionInfo.local
        var remote: (version: String, commit: String)?
        if let server { remote = try await VersionInfo.ask(monitoring: server) }
        if json {
            var object = local.json
            if let remote, let server { object["server"] = ["address": server, "version": remote.version, "commit": remote.commit] }
            print(try JSONOutput.render(object: object))
            return
        }
        print(local.text, terminator: "")
        if let remote, let server {
            print("server          \(server): meshca \(remote.version), commit \(remote.commit)")
        }
    }
}

/// What this binary is: its version, commit, ledger schema and the C libraries it runs on.
struct VersionInfo {
    let version: String
    let commit: String
    let ledgerSchema: Int
    let openSSL: String
    let sqlite: String

    static var local: VersionInfo {
        VersionInfo(
            version: BuildInfo.version, commit: BuildInfo.commit, ledgerSchema: LedgerMigrations.latestVersion,
            openSSL: OpenSSLLibrary.version, sqlite: String(cString: sqlite3_libversion()))
    }

    /// The lines of `meshca version`, also printed by `meshca --version`.
    var text: String {
        """
        meshca \(version)
        commit          \(commit)
        ledger schema   \(ledgerSchema) (the newest ledger migration this binary carries)
        openssl         \(openSSL) (system library, for meshca handshake)
        sqlite          \(sqlite)

        """
    }

    var json: [String: Any] {
        ["version": version, "commit": commit, "ledger_schema": ledgerSchema, "openssl": openSSL, "sqlite": sqlite]
    }

    /// The version and commit a running daemon reports in `meshca_build_info` on its monitoring endpoint.
    static func ask(monitoring address: String) async throws -> (version: String, commit: String) {
        guard let url = URL(string: "http://\(address)/metrics") else {
            throw ValidationError("--server \(address) is not HOST:PORT, e.g. 127.0.0.1:15014.")
        }
        let answer: (status: Int, body: [UInt8])
        do {
            answer = try await HTTPFetch.get(url, maximumBodyBytes: 8 * 1024 * 1024, what: "a metrics page")
        } catch {
            throw VersionError(
                "Cannot ask the daemon at \(address): \(error). Give --server the monitoring address of `meshca serve` "
                    + "(its --monitoring, default 127.0.0.1:15014), not the gRPC one.")
        }
        let page = String(decoding: answer.body, as: UTF8.self)
        guard answer.status == 200, let line = page.split(separator: "\n").first(where: { $0.hasPrefix("meshca_build_info{") }) else {
            throw VersionError(
                "The server at \(address) answered HTTP \(answer.status) without a meshca_build_info line on /metrics: it is not "
                    + "the monitoring endpoint of a meshca serve, or one too old to report its build.")
        }
        func label(_ name: String) -> String {
            guard let start = line.range(of: name + "=\"") else { return "unknown" }
            let rest = line[start.upperBound...]
            return String(rest[..<(rest.firstIndex(of: "\"") ?? rest.endIndex)]).escapedForLog
        }
        return (label("version"), label("commit"))
    }
}

/// A failure of `meshca version --server`, printed as `Error: <description>` with exit status 1.
struct VersionError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
