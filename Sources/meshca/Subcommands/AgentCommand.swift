import ArgumentParser
import MeshCAAgent

/// `meshca agent`: runs beside a workload and keeps its certificate files current (also built alone as
/// `meshca-agent`).
struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: AgentCommandLine.abstract,
        subcommands: AgentCommandLine.subcommands,
        defaultSubcommand: AgentRun.self
    )
}
