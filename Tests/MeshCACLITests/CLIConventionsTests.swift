import Foundation
import MeshCATestSupport
import Testing

/// The command-line conventions of issue 17: version, --json everywhere, usage of the failing subcommand, the
/// agent's help and settings, no leftovers after a failure, network errors in words.
@Suite("CLI conventions")
struct CLIConventionsTests {
    /// The package's root directory (for Migrations/ and git).
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// Issue 16 (start-up): loading libssl and libcrypto cost every command about 3.5 million instructions before
    /// `main`; only the handshake harness and the version report use them, so they are opened on first use.
    @Test("Only the commands that use the system OpenSSL load it: --help, init and audit list do not, version does")
    func openSSLOnFirstUse() async throws {
        try await TemporaryDirectory.with("openssl") { state in
            for arguments in [["--help"], ["init", "--state-dir", state.path], ["audit", "list", "--state-dir", state.path]] {
                let result = try await Command.meshca(arguments, environment: ["LD_DEBUG": "files"])
                expectSuccess(result)
                // LD_DEBUG=files names every library the dynamic loader opens (the control: libsqlite3, linked).
                #expect(result.stderr.contains("file=libsqlite3"), "LD_DEBUG had no effect: \(result.stderr.prefix(300))")
                #expect(!result.stderr.contains("libssl"), "meshca \(arguments.joined(separator: " ")) loaded libssl")
            }
        }
        let version = try await Command.meshca(["version"], environment: ["LD_DEBUG": "files"])
        expectSuccess(version)
        #expect(version.stderr.contains("file=libssl.so"), "meshca version reports OpenSSL's version, so it opens libssl")
    }

    @Test("meshca version and --version print the version, commit, ledger schema, OpenSSL and SQLite; --json too")
    func version() async throws {
        let text = try await Command.meshca(["version"])
        expectSuccess(text)
        let flag = try await Command.meshca(["--version"])
        expectSuccess(flag)
        #expect(flag.stdout == text.stdout)

        let json = try await Command.meshca(["version", "--json"])
        expectSuccess(json)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let migrations = try FileManager.default.contentsOfDirectory(atPath: Self.packageRoot + "/Migrations").filter { $0.hasSuffix(".sql") }
        #expect(object["ledger_schema"] as? Int == migrations.count)
        #expect((object["sqlite"] as? String)?.split(separator: ".").count == 3)
        let openssl = try await Command.run("openssl", ["version"]).stdout
        let library = try #require(object["openssl"] as? String)
        #expect(openssl.hasPrefix(String(library.split(separator: " ").prefix(2).joined(separator: " "))), "\(library) vs \(openssl)")
        let commit = try #require(object["commit"] as? String)
        if commit != "unknown" {
            // A commit of this repository, recorded at build time (not a fixed string).
            let hash = String(commit.prefix { $0 != "-" })
            #expect(hash.count == 12 && hash.allSatisfy(\.isHexDigit), "\(commit)")
            let known = try await Command.run("git", ["-C", Self.packageRoot, "cat-file", "-e", hash + "^{commit}"])
            #expect(known.status == 0, "\(commit) is not a commit of this repository")
        }
        #expect(text.stdout.contains("meshca \(object["version"] as? String ?? "?")\ncommit          \(commit)\nledger schema   \(migrations.count) "))
        #expect(text.stdout.contains("sqlite          \(object["sqlite"] as? String ?? "?")"))

        let agent = try await Command.run(Command.agentBinary, ["--version"])
        expectSuccess(agent)
        #expect(agent.stdout.contains("meshca-agent \(object["version"] as? String ?? "?")"))
        #expect(agent.stdout.contains(commit))
    }

    @Test("version --server asks a running meshca serve; issue --server to its plain-HTTP port says so in words")
    func versionFromDaemon() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        await ProcessSlots.daemons.acquire()
        defer { ProcessSlots.daemons.release() }
        let serve = try BackgroundProcess(
            Command.meshcaBinary, ["serve", "--state-dir", ws.state, "--init-if-missing", "--listen", "127.0.0.1:0", "--monitoring", "127.0.0.1:0"])
        defer { serve.terminate() }
        let line = try await serve.waitForLine(containing: "listening on")
        let monitoring = try #require(line.split(separator: "http://").last.map { String($0.trimmingCharacters(in: .whitespacesAndNewlines)) })

        let local = try ws.json(try await ws.meshca("version", "--json"))[0]
        let asked = try await ws.meshca("version", "--server", monitoring, "--json")
        expectSuccess(asked)
        let server = try #require(try ws.json(asked)[0]["server"] as? [String: Any])
        #expect(server["version"] as? String == local["version"] as? String)
        #expect(server["commit"] as? String == local["commit"] as? String)
        let text = try await ws.meshca("version", "--server", monitoring)
        #expect(text.stdout.contains("server          \(monitoring): meshca \(local["version"] as? String ?? "?")"))

        let token = try await ws.meshca("token", "create", "--sa", "web").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let wrongPort = try await ws.meshca("issue", "--sa", "web", "--server", monitoring, "--token", token, "--out", "web")
        #expect(wrongPort.status == 1)
        #expect(wrongPort.stderr.contains("accepted the connection but no TLS session with a CA came of it"), "\(wrongPort.stderr)")
        #expect(wrongPort.stderr.contains("the gRPC port is --listen"))
        #expect(!FileManager.default.fileExists(atPath: ws.dir.file("web/key.pem")))
    }

    @Test("Network errors are said in words: agent status and issue --server to a closed port")
    func networkErrorsInWords() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        let status = try await ws.meshca("agent", "status", "--status-addr", "127.0.0.1:1")
        #expect(status.status == 1)
        #expect(status.stderr.contains("No agent answers at 127.0.0.1:1"))
        #expect(status.stderr.contains("connection refused: nothing listens on that port"), "\(status.stderr)")
        #expect(!status.stderr.contains("SingleConnectionFailure"))

        expectSuccess(try await ws.meshca("init"))
        let token = try await ws.meshca("token", "create", "--sa", "web").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let closed = try await ws.meshca("issue", "--sa", "web", "--server", "127.0.0.1:1", "--token", token)
        #expect(closed.status == 1)
        #expect(closed.stderr.contains("Cannot reach a CA at 127.0.0.1:1: connection refused: nothing listens on that port"), "\(closed.stderr)")
        #expect(!closed.stderr.contains("SingleConnectionFailure") && !closed.stderr.contains("answered unavailable"))
    }

    /// The top-level keys of a pretty-printed JSON object, in the order printed.
    func topLevelKeys(_ text: String) -> [String] {
        text.split(separator: "\n").filter { $0.hasPrefix("  \"") && !$0.hasPrefix("   ") }
            .compactMap { $0.dropFirst(3).split(separator: "\"").first.map(String.init) }
    }

    @Test("--json on issue, init, token create/revoke, revoke, crl, inspect and intermediate create; keys sorted")
    func jsonEverywhere() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        let initialized = try await ws.meshca("init", "--json")
        expectSuccess(initialized)
        let ca = try ws.json(initialized)[0]
        #expect(ca["trust_domain"] as? String == "cluster.local")
        #expect(((ca["ca"] as? [String: Any])?["sha256"] as? String)?.count == 64)
        #expect(topLevelKeys(initialized.stdout) == topLevelKeys(initialized.stdout).sorted())

        let issued = try await ws.meshca("issue", "--sa", "web", "--out", "web", "--json")
        expectSuccess(issued)
        let certificate = try ws.json(issued)[0]
        #expect(certificate["spiffe_id"] as? String == "spiffe://cluster.local/ns/default/sa/web")
        #expect((certificate["files"] as? [String: Any])?["key"] as? String == ws.dir.file("web") + "/key.pem")
        #expect(topLevelKeys(issued.stdout) == topLevelKeys(issued.stdout).sorted())
        let serial = try #require(certificate["serial"] as? String)

        let inspected = try await ws.meshca("inspect", "web", "--json")
        expectSuccess(inspected)
        #expect(try ws.json(inspected)[0]["ok"] as? Bool == true)
        #expect(try ws.json(inspected)[0]["spiffe_id"] as? String == "spiffe://cluster.local/ns/default/sa/web")
        let missing = try await ws.meshca("inspect", "nowhere", "--json")
        #expect(missing.status == 1)
        #expect(try ws.json(missing)[0]["ok"] as? Bool == false)

        let token = try await ws.meshca("token", "create", "--sa", "web", "--json")
        expectSuccess(token)
        let tokenObject = try ws.json(token)[0]
        #expect((tokenObject["token"] as? String)?.hasPrefix("mct1.") == true)
        let id = try #require(tokenObject["id"] as? String)
        let tokenRevoked = try await ws.meshca("token", "revoke", id, "--json")
        expectSuccess(tokenRevoked)
        #expect(try ws.json(tokenRevoked)[0]["revoked"] as? String == id)

        let revoked = try await ws.meshca("revoke", serial, "--reason", "keyCompromise", "--json")
        expectSuccess(revoked)
        let revocation = try ws.json(revoked)[0]
        #expect(revocation["serial"] as? String == serial)
        #expect(((revocation["crls"] as? [[String: Any]])?.first?["entries"] as? Int) == 1)

        let crl = try await ws.meshca("crl", "--json")
        expectSuccess(crl)
        let crls = try #require(try JSONSerialization.jsonObject(with: Data(crl.stdout.utf8)) as? [[String: Any]])
        #expect((crls.first?["pem"] as? String)?.hasPrefix("-----BEGIN X509 CRL-----") == true)
        #expect(crl.stderr.isEmpty, "--json prints only JSON: \(crl.stderr)")

        let intermediate = try await ws.meshca("intermediate", "create", "--out", "inter", "--json")
        expectSuccess(intermediate)
        #expect(try ws.json(intermediate)[0]["directory"] as? String == ws.dir.file("inter"))
        #expect(topLevelKeys(intermediate.stdout) == topLevelKeys(intermediate.stdout).sorted())
    }

    @Test("A usage error found while a command runs prints that command's usage, not the top level's")
    func usageOfTheFailingSubcommand() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        let initBad = try await ws.meshca("init", "--trust-domain", "Bad_Domain")
        #expect(initBad.status == 64)
        #expect(initBad.stderr.contains("Usage: meshca init "), "\(initBad.stderr)")
        #expect(initBad.stderr.contains("See 'meshca init --help'"))
        #expect(!initBad.stderr.contains("<subcommand>"))

        let agent = try await ws.meshca("agent")
        #expect(agent.status == 64)
        #expect(agent.stderr.contains("Usage: meshca agent "), "\(agent.stderr)")
        let slim = try await Command.run(Command.agentBinary, [])
        #expect(slim.status == 64)
        #expect(slim.stderr.contains("Usage: meshca-agent "), "\(slim.stderr)")
    }

    @Test("meshca agent --help and meshca-agent --help list the agent's flags")
    func agentHelp() async throws {
        for result in [try await Command.meshca(["agent", "--help"]), try await Command.run(Command.agentBinary, ["--help"])] {
            expectSuccess(result)
            for flag in ["--ca <host:port>", "--sa <name>", "--out <dir>", "--token-file <file>", "--workload-api-socket", "--config <file>", "MESHCA_AGENT_"] {
                #expect(result.stdout.contains(flag), "\(flag) missing from:\n\(result.stdout)")
            }
            #expect(result.stdout.contains("status"), "the subcommands are listed too")
        }
    }

    @Test("The agent reads MESHCA_AGENT_* and a --config YAML file; flags win over the environment, which wins over the file")
    func agentSettingsSources() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        // Syntactically a join token; the agent runs without reaching a CA.
        let token = "mct1." + String(repeating: "a", count: 12) + "." + String(repeating: "b", count: 43) + "." + String(repeating: "c", count: 64)
        try ws.dir.write(
            "agent.yaml",
            """
            ca: 127.0.0.1:1
            sa: from-file
            ns: from-file
            trust-domain: file.example
            out: \(ws.dir.file("out"))
            token: \(token)
            status-addr: 127.0.0.1:0
            log-level: error

            """)
        let agent = try BackgroundProcess(
            Command.agentBinary, ["--config", ws.dir.file("agent.yaml"), "--ns", "from-flag"],
            environment: ["MESHCA_AGENT_SA": "from-env", "MESHCA_AGENT_NS": "from-env"])
        defer { agent.terminate() }
        let line = try await agent.waitForLine(containing: "status on http://")
        #expect(line.contains("spiffe://file.example/ns/from-flag/sa/from-env"), "\(line)")

        // Every problem at once, each naming where the bad value came from.
        try ws.dir.write("bad.yaml", "ttl: 1x\nkey-type: dsa\nunknown-key: 1\n")
        let bad = try await Command.run(
            Command.agentBinary, ["--config", ws.dir.file("bad.yaml"), "--ca", "nohost", "--sa", "web", "--out", "out", "--token", token],
            environment: ["MESHCA_AGENT_FILE_MODE": "999"])
        #expect(bad.status == 64)
        #expect(bad.stderr.contains("The configuration has 5 problems:"), "\(bad.stderr)")
        #expect(bad.stderr.contains("unknown key \"unknown-key\""))
        #expect(bad.stderr.contains("ttl (config file \(ws.dir.file("bad.yaml"))) = \"1x\""))
        #expect(bad.stderr.contains("key-type (config file"))
        #expect(bad.stderr.contains("file-mode (environment MESHCA_AGENT_FILE_MODE) = \"999\""))
        #expect(bad.stderr.contains("ca (flag --ca) = \"nohost\""))
        #expect(bad.stderr.contains("Example: MESHCA_AGENT_FILE_MODE=0600"))
    }

    @Test("A command that fails leaves nothing behind: no CA is created for a request refused by its arguments")
    func failureLeavesNothing() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        let tooLong = try await ws.meshca("issue", "--sa", "web", "--ttl", "100d")
        #expect(tooLong.status == 1)
        #expect(tooLong.stderr.contains("100d") && tooLong.stderr.contains("90d"))
        #expect(!FileManager.default.fileExists(atPath: ws.state), "no CA created for a refused request")

        try ws.dir.write("occupied", "x")
        let outIsFile = try await ws.meshca("intermediate", "create", "--out", "occupied")
        #expect(outIsFile.status == 64)
        #expect(outIsFile.stderr.contains("--out occupied is a file, not a directory"))
        let issueOut = try await ws.meshca("issue", "--sa", "web", "--out", "occupied")
        #expect(issueOut.status == 64)
        #expect(!FileManager.default.fileExists(atPath: ws.state))
    }

    @Test("scripts/install-completions.sh installs bash, zsh and fish completion and man pages generated from the commands under PREFIX")
    func completionsAndManPages() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        let prefix = ws.dir.file("prefix")
        let bin = URL(fileURLWithPath: Command.meshcaBinary).deletingLastPathComponent().path
        let result = try await Command.run(
            Self.packageRoot + "/scripts/install-completions.sh", [bin],
            environment: ProcessInfo.processInfo.environment.merging(["PREFIX": prefix]) { _, new in new })
        expectSuccess(result)
        for tool in ["meshca", "meshca-agent"] {
            let bash = try String(contentsOfFile: prefix + "/share/bash-completion/completions/\(tool)", encoding: .utf8)
            let zsh = try String(contentsOfFile: prefix + "/share/zsh/site-functions/_\(tool)", encoding: .utf8)
            let fish = try String(contentsOfFile: prefix + "/share/fish/vendor_completions.d/\(tool).fish", encoding: .utf8)
            for script in [bash, zsh, fish] { #expect(script.contains("workload-api-socket"), "\(tool)") }
            // bash accepts the script and registers the completion.
            let registered = try await Command.run("bash", ["-c", "source '\(prefix)/share/bash-completion/completions/\(tool)' && complete -p \(tool)"])
            #expect(registered.status == 0 && registered.stdout.contains(tool), "\(registered.stderr)")
        }
        let bash = try String(contentsOfFile: prefix + "/share/bash-completion/completions/meshca", encoding: .utf8)
        for subcommand in ["issue", "serve", "agent", "version", "intermediate"] { #expect(bash.contains(subcommand)) }

        let man = prefix + "/share/man/man1/"
        let issue = try String(contentsOfFile: man + "meshca.issue.1", encoding: .utf8)
        #expect(issue.contains("Fl -sa") && issue.contains("Fl -json"), "\(issue)")
        let agent = try String(contentsOfFile: man + "meshca-agent.1", encoding: .utf8)
        #expect(agent.contains("Fl -workload-api-socket") && agent.contains("MESHCA_AGENT_"))
        #expect(FileManager.default.fileExists(atPath: man + "meshca.1") && FileManager.default.fileExists(atPath: man + "meshca.version.1"))
    }
}
