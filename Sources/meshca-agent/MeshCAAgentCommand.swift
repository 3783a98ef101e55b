import ArgumentParser
import MeshCAAgent

/// `meshca-agent`: `meshca agent` alone, in a small executable for sidecars. It links no CA, ledger, SQLite,
/// JWT or OpenSSL harness code, so a pod pays for less memory; flags and behaviour are the same.
@main
struct MeshCAAgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meshca-agent",
        abstract: AgentCommandLine.abstract,
        discussion: AgentCommandLine.discussion,
        version: AgentCommandLine.version,
        subcommands: AgentCommandLine.subcommands
    )

    @OptionGroup var options: AgentOptions

    func run() async throws {
        try await options.runAgent()
    }

    static func main() async {
        await CommandLineMain.run(Self.self)
    }
}
