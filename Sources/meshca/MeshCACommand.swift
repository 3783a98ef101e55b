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
        version: String(VersionInfo.local.text.dropLast()),
        subcommands: [
            Init.self, Issue.self, Serve.self, Token.self, Revoke.self, CRLCommand.self, AgentCommand.self, Intermediate.self, Root.self,
            Audit.self, Inspect.self, Handshake.self, DoctorCommand.self, BackupCommand.self, RestoreCommand.self, LedgerCommand.self, Version.self,
        ]
    )

    static func main() async {
        await CommandLineMain.run(Self.self)
    }
}
