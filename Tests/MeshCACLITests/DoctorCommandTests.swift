import Foundation
import MeshCATestSupport
import Testing

@Suite("meshca doctor", .timeLimit(.minutes(2)))
struct DoctorCommandTests {
    private func findings(_ report: [String: Any]) -> [String: [String: Any]] {
        var byCheck: [String: [String: Any]] = [:]
        for finding in report["findings"] as? [[String: Any]] ?? [] {
            if let check = finding["check"] as? String, byCheck[check] == nil { byCheck[check] = finding }
        }
        return byCheck
    }

    @Test("A healthy CA exits 0; --json has the documented keys")
    func healthy() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        expectSuccess(try await ws.meshca("init"))
        expectSuccess(try await ws.meshca("issue", "--sa", "web", "--out", "a"))
        let text = try await ws.meshca("doctor")
        #expect(text.status == 0, "\(text.stdout)\(text.stderr)")
        #expect(text.stdout.contains("ok    root: root O=cluster.local"), "\(text.stdout)")
        #expect(text.stdout.contains("status: ok (exit 0)"))

        let result = try await ws.meshca("doctor", "--json")
        #expect(result.status == 0)
        let report = try #require(try ws.json(result).first)
        #expect(
            Set(report.keys) == [
                "status", "exit_code", "checked_at", "state_dir", "window_seconds", "findings", "identities",
                "identities_total",
            ])
        #expect(report["status"] as? String == "ok")
        #expect(report["exit_code"] as? Int == 0)
        #expect(report["window_seconds"] as? Int == 30 * 86_400)
        #expect(report["identities_total"] as? Int == 0)
        let byCheck = findings(report)
        #expect(
            Set(byCheck.keys) == ["state", "root", "serving-certificate", "database", "ledger-chain", "identities"])
        let root = try #require(byCheck["root"])
        #expect(Set(root.keys) == ["check", "status", "message", "certificate"])
        let certificate = try #require(root["certificate"] as? [String: Any])
        #expect(Set(certificate.keys) == ["role", "source", "fingerprint", "subject", "not_before", "not_after"])
        #expect(byCheck["database"]?["certificate"] is NSNull)
    }

    @Test("A root that expires inside the window exits 1 (and 0 with a shorter --fail-within)")
    func withinWindow() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        expectSuccess(try await ws.meshca("init", "--root-ttl", "2d"))
        let result = try await ws.meshca("doctor")
        #expect(result.status == 1, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("WARN  root: The root O=cluster.local"), "\(result.stdout)")
        #expect(result.stdout.contains("meshca root prepare"))
        #expect(result.stdout.contains("status: warning (exit 1)"))

        let json = try #require(try await ws.json(try await ws.meshca("doctor", "--json")).first)
        #expect(json["status"] as? String == "warning")
        #expect(json["exit_code"] as? Int == 1)
        #expect(findings(json)["root"]?["status"] as? String == "warning")

        let short = try await ws.meshca("doctor", "--fail-within", "1d")
        #expect(short.status == 0, "\(short.stdout)")
    }

    @Test("A tampered ledger exits 2 and names the edited certificate")
    func tampered() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        expectSuccess(try await ws.meshca("issue", "--sa", "web", "--out", "a"))
        let edit = try await Command.run(
            "sqlite3", [ws.state + "/ledger.db", "UPDATE issuances SET not_after = not_after + 86400"])
        #expect(edit.status == 0, "\(edit.stderr)")
        let result = try await ws.meshca("doctor")
        #expect(result.status == 2, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("FAIL  ledger-chain: The ledger was changed outside meshca"), "\(result.stdout)")
        let json = try #require(try await ws.json(try await ws.meshca("doctor", "--json")).first)
        #expect(json["status"] as? String == "failure")
        #expect(json["exit_code"] as? Int == 2)
        #expect(findings(json)["ledger-chain"]?["status"] as? String == "failure")
    }

    @Test("No CA exits 2 saying to run meshca init; a bad --fail-within is a usage error (64)")
    func brokenAndUsage() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        let empty = try await ws.meshca("doctor")
        #expect(empty.status == 2, "\(empty.stdout)\(empty.stderr)")
        #expect(empty.stdout.contains("FAIL  state:"), "\(empty.stdout)")
        #expect(empty.stdout.contains("meshca init"))
        #expect(!FileManager.default.fileExists(atPath: ws.state + "/ledger.db"))

        let usage = try await ws.meshca("doctor", "--fail-within", "soon")
        #expect(usage.status == 64)
        #expect(usage.stderr.contains("--fail-within"), "\(usage.stderr)")
    }
}
