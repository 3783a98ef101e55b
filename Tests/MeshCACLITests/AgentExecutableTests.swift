import Foundation
import MeshCATestSupport
import Testing

/// `meshca-agent` is the sidecar build of `meshca agent`: the same flags, without the CA's libraries.
@Suite("The meshca-agent executable")
struct AgentExecutableTests {
    @Test("It takes the same flags as `meshca agent` and refuses bad ones the same way")
    func sameCommandLine() async throws {
        let slim = try await Command.run(Command.agentBinary, ["run", "--help"])
        let full = try await Command.meshca(["agent", "run", "--help"])
        #expect(slim.status == 0 && full.status == 0)
        // Every option but --version, which ArgumentParser lists under each subcommand of a root with a version
        // setting: meshca-agent's; meshca's --version is a flag of its root command alone (the version names OpenSSL,
        // which meshca opens only when a command needs it).
        func options(_ help: String) async -> String? {
            help.range(of: "OPTIONS:").map { help[$0.upperBound...].split(separator: "\n").filter { !$0.hasPrefix("  --version ") }.joined(separator: "\n") }
        }
        await #expect(options(full.stdout)?.contains("--workload-api-socket") == true)
        await #expect(options(slim.stdout) == options(full.stdout))

        let refused = try await Command.run(Command.agentBinary, ["--ca", "127.0.0.1:1", "--sa", "was", "--out", "/tmp/x"])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("Give exactly one of --token, --token-file or --jwt-file"))
    }

    @Test("It links neither SQLite nor the system OpenSSL: the CA, ledger and handshake harness stay out of the sidecar")
    func slimLinkage() async throws {
        let libraries = try await Command.run("ldd", [Command.agentBinary])
        #expect(libraries.status == 0)
        #expect(!libraries.stdout.contains("libsqlite3"))
        #expect(!libraries.stdout.contains("libssl"))
        #expect(!libraries.stdout.contains("libcrypto"))
        // The full CLI does link SQLite, so the check above can fail. (It opens OpenSSL only when a command needs it,
        // see CLIConventionsTests.openSSLOnFirstUse.)
        let full = try await Command.run("ldd", [Command.meshcaBinary]).stdout
        #expect(full.contains("libsqlite3"))
    }

    @Test("A status port already taken stops the agent at start, naming --status-addr and what to do")
    func statusPortTaken() async throws {
        let directory = try TemporaryDirectory()
        // Syntactically a join token; no CA is needed, the agent fails before it has one.
        let token = "mct1." + String(repeating: "a", count: 12) + "." + String(repeating: "b", count: 43) + "." + String(repeating: "c", count: 64)
        let arguments = ["--ca", "127.0.0.1:1", "--sa", "was", "--token", token, "--log-level", "error"]
        let first = try BackgroundProcess(Command.agentBinary, arguments + ["--out", directory.file("first"), "--status-addr", "127.0.0.1:0"])
        defer { first.terminate { directory.remove() } }
        let line = try await first.waitForLine(containing: "status on http://")
        let address = String(line.split(separator: "/").last ?? "")

        // Several times: the release agent once stayed up (about one start in five) when its first call to the CA
        // was cancelled by the failed bind; now it asks the CA only once the port is bound.
        for _ in 0..<5 {
            let second = try await Command.run(Command.agentBinary, arguments + ["--out", directory.file("second"), "--status-addr", address])
            #expect(second.status == 1)
            #expect(second.stderr.contains("--status-addr: cannot listen on \(address)"), "\(second.stderr)")
            #expect(second.stderr.contains("or --status-addr off"))
            #expect(!second.stderr.contains("could not obtain a certificate"), "no call to the CA before the port is bound")
        }
    }
}
