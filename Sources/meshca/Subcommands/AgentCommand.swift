import ArgumentParser
import MeshCAAgent

/// `meshca agent`: runs beside a workload and keeps its certificate files current (also built alone as
/// `meshca-agent`). Its flags are the agent's, so `meshca agent --help` lists them.
struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: AgentCommandLine.abstract,
        discussion: AgentCommandLine.discussion,
        subcommands: AgentCommandLine.subcommands
    )

    @OptionGroup var options: AgentOptions

    func run() async throws {
        try await options.runAgent()
    }
}
