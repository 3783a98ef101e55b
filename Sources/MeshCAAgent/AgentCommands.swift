import ArgumentParser
import Logging
import MeshCACore
import MeshCAIO
import MeshCASettings

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

import MeshCAPlatform

/// The agent's command line, shared by `meshca agent` and the small `meshca-agent` executable.
public enum AgentCommandLine {
    /// What the agent does, for both commands' help.
    public static let abstract = "Keep a workload's cert-chain.pem, key.pem and root-cert.pem fresh, and serve the SPIFFE Workload API."
    /// How the agent works and where its settings come from, for both commands' help.
    public static let discussion = """
        Without a subcommand (or with `run`), runs the agent. The key never leaves this machine; every certificate \
        gets a new key. The first certificate needs a join token (--token/--token-file) or a service-account JWT \
        (--jwt-file); renewals use the current certificate over mTLS. Readers that must never mix a key with another \
        chain should resolve DIR/..data once and read the three files from that directory.

        Every setting can also come from the environment (MESHCA_AGENT_<KEY>, e.g. MESHCA_AGENT_CA, \
        MESHCA_AGENT_TOKEN_FILE) or a YAML file (--config or MESHCA_AGENT_CONFIG; keys as the flag names, e.g. \
        ttl: 24h); flags win over the environment, which wins over the file. Every problem is reported at once.
        """
    /// `run` and `status`; without one, the agent runs.
    public static let subcommands: [any ParsableCommand.Type] = [AgentRun.self, AgentStatusCommand.self]
    /// What `meshca-agent --version` prints.
    public static var version: String { "meshca-agent \(BuildInfo.version)\ncommit \(BuildInfo.commit)" }
}

/// The agent's settings as flags, shared by `meshca agent`, `meshca agent run` and `meshca-agent` (and read by
/// `status` for --status-addr). Every flag is optional here: a value may come from the environment or --config
/// instead, and ``AgentConfiguration/load(flags:environment:configFile:)`` reports what is missing.
public struct AgentOptions: ParsableArguments {
    public init() {}

    @Option(help: ArgumentHelp("A YAML file with settings (keys as the flag names, e.g. ttl: 24h; also MESHCA_AGENT_CONFIG).", valueName: "file"))
    var config: String?
    @Option(help: ArgumentHelp("The CA daemon's address (required); repeat it for replicas: the next is tried when one gives no answer. A host name stands for each address it resolves to.", valueName: "host:port")) var ca: [String] = []
    @Option(name: .customLong("sa"), help: ArgumentHelp("Service account of the workload (required).", valueName: "name")) var serviceAccount: String?
    @Option(name: .customLong("ns"), help: ArgumentHelp("Namespace of the workload (default default).", valueName: "name")) var namespace: String?
    @Option(help: ArgumentHelp("Trust domain of the identity (default cluster.local).", valueName: "name")) var trustDomain: String?
    @Option(help: ArgumentHelp("Directory for the three files (required).", valueName: "dir")) var out: String?
    @Option(help: ArgumentHelp("Join token for the first certificate (also pins the CA root).", valueName: "token")) var token: String?
    @Option(help: ArgumentHelp("File holding the join token.", valueName: "file")) var tokenFile: String?
    @Option(help: ArgumentHelp("File holding a Kubernetes service-account JWT (re-read at each use).", valueName: "file")) var jwtFile: String?
    @Option(help: ArgumentHelp("Roots to verify the CA with (default: the token's pinned root).", valueName: "file")) var rootCert: String?
    @Option(help: ArgumentHelp("Requested lifetime (default 24h).", valueName: "duration")) var ttl: String?
    @Option(help: ArgumentHelp("A DNS name for the certificate besides the SPIFFE ID; repeatable. The CA grants it only by its --allow-dns-sans policy.", valueName: "name")) var dnsName: [String] = []
    @Option(help: ArgumentHelp("Also write the chain and the key together into this file in --out (mode as key.pem), swapped with the others: for HAProxy and curl.", valueName: "name")) var combinedPEM: String?
    @Option(help: ArgumentHelp("Workload key type (default ec-p256).", valueName: "type")) var keyType: String?
    @Option(help: ArgumentHelp("Fraction of the lifetime left when renewing (default 0.5).", valueName: "ratio")) var graceRatio: String?
    @Option(help: ArgumentHelp("Random spread of the renewal time, a fraction (default 0.1).", valueName: "fraction")) var jitter: String?
    @Option(help: ArgumentHelp("Unix socket for the SPIFFE Workload API (none by default).", valueName: "path")) var workloadAPISocket: String?
    @Option(help: ArgumentHelp("Uid allowed on the Workload API; repeatable (default: the agent's uid).", valueName: "uid")) var workloadUID: [String] = []
    @Option(help: ArgumentHelp("Shell command run after each successful write (e.g. 'nginx -s reload').", valueName: "cmd")) var onRotate: String?
    @Option(help: ArgumentHelp("Octal mode of key.pem (default 0600).", valueName: "mode")) var fileMode: String?
    @Option(help: ArgumentHelp("Owner of the files, as uid:gid.", valueName: "uid:gid")) var fileOwner: String?
    @Option(help: ArgumentHelp("Status endpoint (/healthz, /status, /metrics), or 'off' (default 127.0.0.1:15020).", valueName: "host:port")) var statusAddr: String?
    @Option(help: ArgumentHelp("The CA's CRL to fetch (at start, every --crl-refresh, after each renewal) into DIR/crl.pem and the Workload API: meshca serve's http://MONITORING/crl.", valueName: "url")) var crlURL: String?
    @Option(help: ArgumentHelp("How often to fetch --crl-url again (default 1m).", valueName: "duration")) var crlRefresh: String?
    @Option(help: ArgumentHelp("trace, debug, info, notice, warning, error or critical (default info).", valueName: "level")) var logLevel: String?
    @Option(help: ArgumentHelp("text, or json: one object per line with time, level, message and the event's fields (default text).", valueName: "format")) var logFormat: String?

    /// The flags given, by key (`--crl-url` is `crl-url`).
    var flags: [String: String] {
        var flags: [String: String] = [:]
        flags["ca"] = ca.isEmpty ? nil : ca.joined(separator: ",")
        flags["sa"] = serviceAccount
        flags["ns"] = namespace
        flags["trust-domain"] = trustDomain
        flags["out"] = out
        flags["token"] = token
        flags["token-file"] = tokenFile
        flags["jwt-file"] = jwtFile
        flags["root-cert"] = rootCert
        flags["ttl"] = ttl
        flags["dns-name"] = dnsName.isEmpty ? nil : dnsName.joined(separator: ",")
        flags["combined-pem"] = combinedPEM
        flags["key-type"] = keyType
        flags["grace-ratio"] = graceRatio
        flags["jitter"] = jitter
        flags["workload-api-socket"] = workloadAPISocket
        flags["workload-uid"] = workloadUID.isEmpty ? nil : workloadUID.joined(separator: ",")
        flags["on-rotate"] = onRotate
        flags["file-mode"] = fileMode
        flags["file-owner"] = fileOwner
        flags["status-addr"] = statusAddr
        flags["crl-url"] = crlURL
        flags["crl-refresh"] = crlRefresh
        flags["log-level"] = logLevel
        flags["log-format"] = logFormat
        return flags
    }

    /// The checked configuration from flags, environment and file; every problem at once as a usage error.
    public func load(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> (configuration: AgentConfiguration, logLevel: Logger.Level) {
        do {
            let loaded = try AgentConfiguration.load(flags: flags, environment: environment, configFile: config)
            return (loaded.configuration, Logger.Level(rawValue: loaded.logLevel) ?? .info)
        } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        }
    }

    /// Runs the agent until SIGTERM/SIGINT.
    public func runAgent() async throws {
        let (configuration, level) = try load()
        configuration.logFormat.bootstrap(level: level)
        let runtime = AgentRuntime(configuration: configuration, logger: Logger(label: "meshca-agent")) { address in
            print("meshca agent: \(configuration.identity.uri) -> \(configuration.outDirectory); status on http://\(address)")
            fflush(nil)
        }
        try await runtime.run()
    }

    /// The status endpoint `meshca agent status` asks: --status-addr, else MESHCA_AGENT_STATUS_ADDR, else the
    /// status-addr of the --config file (else of the file MESHCA_AGENT_CONFIG names), else 127.0.0.1:15020.
    func statusAddress(environment: [String: String]) -> String {
        var reader = AgentConfiguration.reader()
        reader.read(configFile: config, configVariable: "MESHCA_AGENT_CONFIG", environment: environment, flags: flags)
        return reader.settings["status-addr"]?.text ?? "127.0.0.1:15020"
    }
}

/// `meshca agent run [flags]`: the same as `meshca agent [flags]`, kept for scripts that name it.
public struct AgentRun: AsyncParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the agent (the same as giving no subcommand).",
        discussion: AgentCommandLine.discussion
    )

    @OptionGroup var options: AgentOptions

    public func run() async throws {
        try await options.runAgent()
    }
}

/// `meshca agent status`
public struct AgentStatusCommand: AsyncParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show a running agent's identity, expiry, next renewal, last error and outage budget.",
        discussion: """
            Asks the agent's status endpoint: --status-addr HOST:PORT, else MESHCA_AGENT_STATUS_ADDR, else status-addr \
            in the --config file, else 127.0.0.1:15020 (the agent's default).
            """
    )

    /// The agent's flags: `status` reads --status-addr (and --config) from them, given before or after `status`.
    @OptionGroup(visibility: .hidden) var agent: AgentOptions
    @Flag(help: "Print the raw JSON.") var json = false

    /// The largest `/status` answer read: 64 KiB (an agent's is under 2 KiB).
    static let maximumBodyBytes = 64 * 1024

    public func run() async throws {
        let statusAddr = agent.statusAddress(environment: ProcessInfo.processInfo.environment)
        guard let url = URL(string: "http://\(statusAddr)/status"), (try? HostPort.parse(statusAddr)) != nil else {
            throw ValidationError("--status-addr \(statusAddr) is not HOST:PORT, e.g. 127.0.0.1:15020 or [::1]:15020.")
        }
        let answer: (status: Int, body: [UInt8])
        do {
            answer = try await HTTPFetch.get(url, maximumBodyBytes: Self.maximumBodyBytes, what: "an agent's status")
        } catch {
            throw AgentError(.noAgent, "No agent answers at \(statusAddr) (\(error)). Is `meshca agent` running with --status-addr \(statusAddr)?")
        }
        guard answer.status == 200, let status = try? JSONDecoder().decode(StatusDocument.self, from: Data(answer.body)) else {
            throw AgentError(.notAnAgent, "The server at \(statusAddr) answered HTTP \(answer.status) with something that is not an agent's status.")
        }
        if json {
            print(String(decoding: answer.body, as: UTF8.self), terminator: "")
            return
        }
        print("identity       \(status.spiffeID)")
        print("state          \(status.state)")
        print("serial         \(status.serial ?? "-")")
        print("not after      \(status.notAfter ?? "-")")
        print("next renewal   \(status.nextRenewal ?? "-")")
        print("outage budget  \(HumanDuration.format(.seconds(Int64(status.outageBudgetSeconds)))) (how long the CA can be down before this certificate expires)")
        print("renewals       \(status.renewals), via \(status.obtainedBy ?? "-")")
        print("ca             \(status.caAddress ?? "-") (the CA address that answered last)")
        print("last error     \(status.lastError ?? "-")")
        if let number = status.crlNumber {
            let nextUpdate = status.crlNextUpdate ?? "-"
            let expired = status.crlNextUpdate.flatMap { try? Date($0, strategy: .iso8601) }.map { $0 <= Date() } ?? false
            print("crl            #\(number), next update \(nextUpdate)\(expired ? " (expired)" : "")")
        } else {
            print("crl            -")
        }
        print("crl refused    \(status.crlLastRefusal.map { "\(status.crlLastRefusalAt ?? "-"): \($0)" } ?? "-")")
        if status.state != "ok" { throw ExitCode.failure }
    }
}

/// The entry point of `meshca` and `meshca-agent`: ArgumentParser's, except that a usage error found while a
/// command runs (a `ValidationError` from `run()`, such as a bad value from the environment or a config file)
/// prints the usage of that command, not of the top level.
public enum CommandLineMain {
    /// Parses the arguments, runs the chosen command, and exits with its status (64 for a usage error).
    public static func run<Root: ParsableCommand>(_ root: Root.Type) async {
        var command: any ParsableCommand
        do {
            command = try root.parseAsRoot()
        } catch {
            root.exit(withError: error)
        }
        do {
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as ValidationError {
            let failed = type(of: command)
            let name = path(from: root, to: failed)?.joined(separator: " ") ?? root._commandName
            let usage = root.usageString(for: failed)
            let text = "Error: \(error.message)\nUsage: \(usage)\n  See '\(name) --help' for more information.\n"
            _ = text.withCString { write(2, $0, strlen($0)) }
            exit(ExitCode.validationFailure.rawValue)
        } catch {
            root.exit(withError: error)
        }
    }

    /// The command names from `root` down to `target` (`["meshca", "token", "create"]`), or nil when not below it.
    static func path(from root: any ParsableCommand.Type, to target: any ParsableCommand.Type) -> [String]? {
        if ObjectIdentifier(root) == ObjectIdentifier(target) { return [root._commandName] }
        for subcommand in root.configuration.subcommands {
            if let rest = path(from: subcommand, to: target) { return [root._commandName] + rest }
        }
        return nil
    }
}
