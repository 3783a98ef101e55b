import ArgumentParser
import MeshCAAgent

/// `meshca-agent`: `meshca agent` alone, in a small executable for sidecars. It links no CA, ledger, SQLite,
/// JWT, YAML or OpenSSL harness code, so a pod pays for less memory; flags and behaviour are the same.
@main
struct MeshCAAgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meshca-agent",
        abstract: AgentCommandLine.abstract,
        version: "0.1.0",
        subcommands: AgentCommandLine.subcommands,
        defaultSubcommand: AgentRun.self
    )
}
