import ArgumentParser
import MeshCAAgent
import MeshCADaemon

/// `meshca`: an embedded certificate authority for service meshes.
@main
struct MeshCACommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meshca",
        abstract: "An embedded certificate authority for service meshes: SPIFFE workload certificates with an audit ledger.",
        discussion: """
            Start with `meshca issue --sa NAME`: it creates a CA on first use and writes cert-chain.pem, key.pem and \
            root-cert.pem into the current directory. State lives in --state-dir, else $MESHCA_STATE_DIR, else \
            ${XDG_DATA_HOME:-~/.local/share}/meshca.
            """,
        subcommands: [
            Init.self, Issue.self, Serve.self, Token.self, Revoke.self, CRLCommand.self, AgentCommand.self, Intermediate.self, Root.self,
            Audit.self, Inspect.self, Handshake.self, DoctorCommand.self, BackupCommand.self, RestoreCommand.self, LedgerCommand.self, Version.self,
        ]
    )

    /// `meshca --version`: the lines of `meshca version`. A flag of the root command rather than ArgumentParser's
    /// `version:` setting, which is computed on every run: the text names the system OpenSSL's version, and opening
    /// that library is left to the commands that use it.
    @Flag(name: .customLong("version"), help: "Show the version, the commit, the ledger schema, OpenSSL and SQLite.")
    var showVersion = false

    /// `meshca` alone shows the help, as ArgumentParser does for a command that only groups subcommands.
    func run() async throws {
        guard showVersion else { throw CleanExit.helpRequest(self) }
        print(VersionInfo.local.text, terminator: "")
    }

    static func main() async {
        await CommandLineMain.run(Self.self)
    }
}
