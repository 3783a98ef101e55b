import Foundation
import GRPCCore
import MeshCATestSupport
import MeshCATransport
import Testing
import X509

/// `--log-format json` on the real binaries: every line `meshca serve` and `meshca-agent` write to stderr is one
/// JSON object with time (RFC 3339, UTC), level and message, plus the event's fields; request text stays escaped.
@Suite("--log-format json on meshca serve and meshca-agent")
struct JSONLogTests {
    static let levels: Set<String> = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    /// Every non-empty line of `stderr`, parsed; records an issue for each line that is not a log object.
    static func objects(_ stderr: String, from program: String) -> [[String: Any]] {
        var objects: [[String: Any]] = []
        for line in stderr.split(separator: "\n") where !line.isEmpty {
            guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
                Issue.record("\(program) wrote a line that is not a JSON object: \(line)")
                continue
            }
            let time = object["time"] as? String ?? ""
            #expect(time.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/) != nil, "time \(time) in \(line)")
            #expect(Self.levels.contains(object["level"] as? String ?? ""), "\(line)")
            #expect(object["message"] is String, "\(line)")
            objects.append(object)
        }
        return objects
    }

    @Test("Daemon and agent write one JSON object per line with time, level, message and fields; a forged newline stays escaped")
    func jsonLines() async throws {
        let daemon = try await TestDaemon.start(["--log-format", "json", "--log-level", "debug"])
        defer { daemon.stop() }
        // A CSR whose URI carries a newline and a forged log line: refused, and logged escaped.
        let forged = "spiffe://cluster.local/ns/default/sa/was\n2027-01-15T08:00:00Z info meshca: issued spiffe_id=spiffe://cluster.local/ns/kube-system/sa/admin"
        let csr = try TestPKI.csr(extensions: Certificate.Extensions { Critical(SubjectAlternativeNames([.uniformResourceIdentifier(forged)])) })
        let token = try await daemon.token(uses: 2)
        let refused = await RPCResult.code { _ = try await daemon.client().createCertificate(csrPEM: csr, ttl: nil, headers: bearer(token)) }
        #expect(refused == .permissionDenied)

        let out = daemon.directory.file("was")
        let agent = try await TestAgent.start(daemonAddress: daemon.address, token: token, out: out, extra: ["--log-format", "json"])
        _ = try await agent.waitUntil { $0["state"] as? String == "ok" }
        #expect(try await agent.process.stop() == 0)
        #expect(try await daemon.process.stop() == 0)

        let daemonLines = Self.objects(daemon.process.errorOutput, from: "meshca serve")
        let agentLines = Self.objects(agent.process.errorOutput, from: "meshca-agent")
        #expect(daemonLines.count >= 3, "\(daemon.process.errorOutput)")
        let issued = try #require(daemonLines.first { $0["message"] as? String == "issued" }, "\(daemon.process.errorOutput)")
        #expect(issued["spiffe_id"] as? String == "spiffe://cluster.local/ns/default/sa/was")
        #expect((issued["serial"] as? String)?.isEmpty == false)
        // The refusal's own "message" field is kept beside the event's message.
        let refusal = try #require(daemonLines.first { $0["message"] as? String == "refused" }, "\(daemon.process.errorOutput)")
        let detail = try #require(refusal["field_message"] as? String, "\(refusal)")
        #expect(detail.contains("sa/was\\n2027-01-15T08:00:00Z info meshca: issued"), "\(detail)")
        #expect(!daemonLines.contains { ($0["message"] as? String)?.contains("kube-system") == true })
        let written = try #require(agentLines.first { $0["message"] as? String == "certificate written" }, "\(agent.process.errorOutput)")
        #expect(written["via"] as? String == "token")
        #expect((written["serial"] as? String)?.isEmpty == false)
    }

    @Test("A log format other than text or json is refused naming the value, the rule and the key")
    func unknownFormat() async throws {
        let serve = try await Command.meshca(["serve", "--log-format", "yaml", "--state-dir", "/nonexistent/meshca-state"])
        #expect(serve.status == 64, "\(serve.stderr)")
        #expect(serve.stderr.contains("log-format") && serve.stderr.contains("yaml") && serve.stderr.contains("text or json"), "\(serve.stderr)")
        let agent = try await Command.run(Command.agentBinary, ["--ca", "127.0.0.1:1", "--sa", "was", "--out", "/tmp/x", "--token", "t", "--log-format", "yaml"])
        #expect(agent.status == 64, "\(agent.stderr)")
        #expect(agent.stderr.contains("log-format") && agent.stderr.contains("yaml") && agent.stderr.contains("text or json"), "\(agent.stderr)")
    }
}
