import ArgumentParser
import Foundation
import MeshCADaemon
import MeshCAHarness

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
        if let server, !CommandInput.isHostPort(server) {
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

extension VersionInfo {
    /// This binary.
    static var local: VersionInfo { local(openSSL: OpenSSLLibrary.version) }

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

    /// The version and commit the daemon whose monitoring endpoint is `address` runs.
    static func ask(monitoring address: String) async throws -> (version: String, commit: String) {
        guard let url = URL(string: "http://\(address)/metrics") else {
            throw ValidationError("--server \(address) is not HOST:PORT, e.g. 127.0.0.1:15014.")
        }
        return try await ask(monitoring: address, url: url)
    }
}
