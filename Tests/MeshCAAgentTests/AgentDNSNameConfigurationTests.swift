import Foundation
import MeshCAAgent
import MeshCATestSupport
import Testing

@Suite("meshca agent dns-name: from --dns-name, MESHCA_AGENT_DNS_NAME or the YAML file")
struct AgentDNSNameConfigurationTests {
    let required = ["ca": "127.0.0.1:15012", "sa": "web", "out": "/tmp/web", "token-file": "/tmp/web.token"]

    @Test("Names are lowercased and kept once, in order; the file may give a YAML list; flags win over the environment")
    func sources() async throws {
        let flags = try AgentConfiguration.load(
            flags: required.merging(["dns-name": "Web.example.internal,api.example.internal,web.example.internal"]) { $1 },
            environment: ["MESHCA_AGENT_DNS_NAME": "ignored.example.internal"], configFile: nil)
        #expect(flags.configuration.dnsNames == ["web.example.internal", "api.example.internal"])
        let environment = try AgentConfiguration.load(flags: required, environment: ["MESHCA_AGENT_DNS_NAME": "a.example.internal, b.example.internal"], configFile: nil)
        #expect(environment.configuration.dnsNames == ["a.example.internal", "b.example.internal"])
        try await TemporaryDirectory.with("agent-dns") { dir in
            try dir.write("agent.yaml", "dns-name:\n  - istiod.istio-system.svc\n")
            let file = try AgentConfiguration.load(flags: required, environment: [:], configFile: dir.file("agent.yaml"))
            #expect(file.configuration.dnsNames == ["istiod.istio-system.svc"])
        }
        #expect(try AgentConfiguration.load(flags: required, environment: [:], configFile: nil).configuration.dnsNames.isEmpty)
    }

    @Test("A name that is not a DNS name is a problem naming it, the key and the rule")
    func badName() {
        do {
            _ = try AgentConfiguration.load(flags: required.merging(["dns-name": "web.example.internal,10.0.0.1"]) { $1 }, environment: [:], configFile: nil)
            Issue.record("loaded")
        } catch let error as ConfigurationError {
            #expect(error.problems.count == 1)
            #expect(error.problems.first?.hasPrefix("dns-name (flag --dns-name) = \"web.example.internal,10.0.0.1\": \"10.0.0.1\": it looks like an IP address") == true, "\(error.problems)")
        } catch {
            Issue.record("\(error)")
        }
    }
}
