import Foundation
import MeshCATestSupport
import Testing

@Suite("meshca serve creates a CA only when asked (--init-if-missing)", .timeLimit(.minutes(3)))
struct ServeInitTests {
    @Test("Without a CA, serve exits 1 naming the directory, meshca init, --init-if-missing and meshca restore; it creates nothing")
    func refusesWithoutCA() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        // A directory that does not exist, then one that exists but is empty (a freshly mounted volume).
        for exists in [false, true] {
            if exists { try FileManager.default.createDirectory(atPath: ws.state, withIntermediateDirectories: true) }
            let serve = try await Command.meshca(
                ["serve", "--state-dir", ws.state, "--listen", "127.0.0.1:0", "--monitoring", "127.0.0.1:0"], directory: ws.dir.path)
            #expect(serve.status == 1, "\(serve.stderr)")
            #expect(serve.stdout.isEmpty, "it must not say it is listening: \(serve.stdout)")
            #expect(serve.stderr.contains("There is no CA in the state directory \(ws.state)"), "\(serve.stderr)")
            #expect(serve.stderr.contains("`meshca init --state-dir \(ws.state)`"))
            #expect(serve.stderr.contains("--init-if-missing"))
            #expect(serve.stderr.contains("`meshca restore BACKUP --state-dir \(ws.state)`"))
            #expect(!FileManager.default.fileExists(atPath: ws.state + "/ca-cert.pem"))
            #expect(!FileManager.default.fileExists(atPath: ws.state + "/ca-key.pem"))
            #expect(!FileManager.default.fileExists(atPath: ws.state + "/ledger.db"))
        }
        // MESHCA_INIT_IF_MISSING=false is the same as not asking.
        let off = try await Command.meshca(
            ["serve", "--state-dir", ws.state, "--listen", "127.0.0.1:0", "--monitoring", "127.0.0.1:0"],
            environment: ["MESHCA_INIT_IF_MISSING": "false"], directory: ws.dir.path)
        #expect(off.status == 1 && off.stderr.contains("There is no CA"), "\(off.stderr)")
    }

    @Test(
        "--init-if-missing, MESHCA_INIT_IF_MISSING=true and init-if-missing: true in the config file create the CA and log its root's SHA-256 at warning level",
        arguments: ["flag", "environment", "file"])
    func createsWhenAsked(source: String) async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        try ws.dir.write("serve.yaml", "init-if-missing: true\n")
        var arguments = ["serve", "--state-dir", ws.state, "--listen", "127.0.0.1:0", "--monitoring", "127.0.0.1:0"]
        var environment: [String: String] = [:]
        switch source {
        case "flag": arguments.append("--init-if-missing")
        case "environment": environment["MESHCA_INIT_IF_MISSING"] = "true"
        default: arguments += ["--config", ws.dir.file("serve.yaml")]
        }
        await ProcessSlots.daemons.acquire()
        defer { ProcessSlots.daemons.release() }
        let serve = try BackgroundProcess(Command.meshcaBinary, arguments, environment: environment, directory: ws.dir.path)
        defer { serve.terminate() }
        _ = try await serve.waitForLine(containing: "listening on")
        #expect(try await serve.stop() == 0)

        let fingerprint = try await Self.sha256(of: ws.state + "/ca-cert.pem", in: ws)
        let created = serve.errorOutput.split(separator: "\n").filter { $0.contains("created a new CA") }
        #expect(created.count == 1, "\(serve.errorOutput)")
        #expect(created.first?.contains(" warning ") == true, "\(serve.errorOutput)")
        #expect(created.first?.contains("root_sha256=\(fingerprint)") == true, "\(serve.errorOutput)")
        #expect(created.first?.contains("state_dir=\(ws.state)") == true)

        // The next start, without asking, loads that CA and creates nothing.
        let again = try BackgroundProcess(
            Command.meshcaBinary, ["serve", "--state-dir", ws.state, "--listen", "127.0.0.1:0", "--monitoring", "127.0.0.1:0"],
            directory: ws.dir.path)
        defer { again.terminate() }
        _ = try await again.waitForLine(containing: "listening on")
        #expect(try await again.stop() == 0)
        #expect(!again.errorOutput.contains("created a new CA"), "\(again.errorOutput)")
        #expect(try await Self.sha256(of: ws.state + "/ca-cert.pem", in: ws) == fingerprint)
    }

    @Test("A bad init-if-missing value is a usage error naming the key, its source and what is accepted")
    func badValue() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        let serve = try await Command.meshca(
            ["serve", "--state-dir", ws.state], environment: ["MESHCA_INIT_IF_MISSING": "maybe"], directory: ws.dir.path)
        #expect(serve.status == 64, "\(serve.stderr)")
        #expect(serve.stderr.contains("init-if-missing (environment MESHCA_INIT_IF_MISSING) = \"maybe\": it is not true or false"), "\(serve.stderr)")
        #expect(!FileManager.default.fileExists(atPath: ws.state))
    }

    /// Lowercase hex SHA-256 of the DER of the certificate at `path`, as `openssl x509 -fingerprint` gives it.
    static func sha256(of path: String, in ws: Workspace) async throws -> String {
        let result = try await ws.openssl("x509", "-in", path, "-noout", "-fingerprint", "-sha256")
        expectSuccess(result)
        let value = try #require(result.stdout.split(separator: "=").last)
        return value.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: ":", with: "").lowercased()
    }
}
