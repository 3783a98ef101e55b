import Foundation
import MeshCATestSupport
import Testing

/// `meshca-agent` is the sidecar build of `meshca agent`: the same flags, without the CA's libraries.
@Suite("The meshca-agent executable")
struct AgentExecutableTests {
    @Test("It takes the same flags as `meshca agent` and refuses bad ones the same way")
    func sameCommandLine() throws {
        let slim = try Command.run(Command.agentBinary, ["run", "--help"])
        let full = try Command.meshca(["agent", "run", "--help"])
        #expect(slim.status == 0 && full.status == 0)
        func options(_ help: String) -> Substring? {
            help.range(of: "OPTIONS:").map { help[$0.upperBound...] }
        }
        #expect(options(full.stdout)?.contains("--workload-api-socket") == true)
        #expect(options(slim.stdout) == options(full.stdout))

        let refused = try Command.run(Command.agentBinary, ["--ca", "127.0.0.1:1", "--sa", "was", "--out", "/tmp/x"])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("Give exactly one of --token, --token-file or --jwt-file"))
    }

    @Test("It links neither SQLite nor the system OpenSSL: the CA, ledger and handshake harness stay out of the sidecar")
    func slimLinkage() throws {
        let libraries = try Command.run("ldd", [Command.agentBinary])
        #expect(libraries.status == 0)
        #expect(!libraries.stdout.contains("libsqlite3"))
        #expect(!libraries.stdout.contains("libssl"))
        #expect(!libraries.stdout.contains("libcrypto"))
        // The full CLI does link them, so the check above can fail.
        let full = try Command.run("ldd", [Command.meshcaBinary]).stdout
        #expect(full.contains("libsqlite3") && full.contains("libssl"))
    }
}
