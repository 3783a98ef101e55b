import Foundation
import MeshCAAgent
import MeshCATestSupport
import Testing

@Suite("meshca agent ca: several addresses from --ca repeated, MESHCA_AGENT_CA or a YAML list")
struct AgentCAAddressConfigurationTests {
    let required = ["sa": "web", "out": "/tmp/web", "token-file": "/tmp/web.token"]

    @Test("--ca repeated, a comma-separated variable and a YAML list each give the addresses in order, each once")
    func sources() async throws {
        // `--ca` repeated reaches the settings as one comma-separated flag value (see `repeatedFlag`).
        let flags = try AgentConfiguration.load(
            flags: required.merging(["ca": "ca-1.example:15012,10.0.0.2:15012,ca-1.example:15012"]) { $1 },
            environment: ["MESHCA_AGENT_CA": "ignored.example:15012"], configFile: nil
        ).configuration
        #expect(flags.caAddresses == ["ca-1.example:15012", "10.0.0.2:15012"])

        let environment = try AgentConfiguration.load(
            flags: required, environment: ["MESHCA_AGENT_CA": "10.0.0.1:15012, [fd00::2]:15012"], configFile: nil)
        #expect(environment.configuration.caAddresses == ["10.0.0.1:15012", "[fd00::2]:15012"])

        try await TemporaryDirectory.with("agent-ca") { dir in
            try dir.write("agent.yaml", "ca:\n  - ca-1.example:15012\n  - ca-2.example:15012\n")
            let file = try AgentConfiguration.load(
                flags: required, environment: [:], configFile: dir.file("agent.yaml"))
            #expect(file.configuration.caAddresses == ["ca-1.example:15012", "ca-2.example:15012"])
            try dir.write("one.yaml", "ca: ca-1.example:15012\n")
            let one = try AgentConfiguration.load(flags: required, environment: [:], configFile: dir.file("one.yaml"))
            #expect(one.configuration.caAddresses == ["ca-1.example:15012"])
        }
    }

    @Test("An address that is not HOST:PORT is a problem naming it, where it came from and an example")
    func badAddress() {
        do {
            _ = try AgentConfiguration.load(
                flags: required.merging(["ca": "10.0.0.1:15012,ca-2.example"]) { $1 }, environment: [:], configFile: nil
            )
            Issue.record("loaded")
        } catch let error as ConfigurationError {
            #expect(error.problems.count == 1)
            let problem = error.problems.first ?? ""
            #expect(
                problem.hasPrefix(
                    "ca (flag --ca) = \"10.0.0.1:15012,ca-2.example\": \"ca-2.example\": it has no \":PORT\""),
                "\(problem)")
            #expect(problem.contains("Example: --ca meshca.example:15012"), "\(problem)")
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test("`meshca agent --ca A --ca B` takes both: a bad second address is named with the first beside it")
    func repeatedFlag() async throws {
        let run = try await Command.meshca([
            "agent", "--ca", "127.0.0.1:15012", "--ca", "ca-2.example", "--sa", "web", "--out", "/tmp/web",
            "--token-file", "/tmp/web.token",
            "--status-addr", "off",
        ])
        #expect(run.status == 64)
        #expect(
            run.stderr.contains(
                "ca (flag --ca) = \"127.0.0.1:15012,ca-2.example\": \"ca-2.example\": it has no \":PORT\""),
            "\(run.stderr)")
    }
}
