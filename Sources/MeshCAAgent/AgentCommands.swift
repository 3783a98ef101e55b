import ArgumentParser
import Logging
import MeshCACore
import MeshCAIO

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#endif

/// The agent's command line, shared by `meshca agent` and the small `meshca-agent` executable.
public enum AgentCommandLine {
    /// What the agent does, for both commands' help.
    public static let abstract = "Keep a workload's cert-chain.pem, key.pem and root-cert.pem fresh, and serve the SPIFFE Workload API."
    /// `run` (the default) and `status`.
    public static let subcommands: [any ParsableCommand.Type] = [AgentRun.self, AgentStatusCommand.self]
}

/// `meshca agent [run] --ca HOST:PORT --sa NAME --out DIR --token T ...`
public struct AgentRun: AsyncParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the agent (the default when no subcommand is given).",
        discussion: """
            The key never leaves this machine; every certificate gets a new key. The first certificate needs a \
            join token (--token/--token-file) or a service-account JWT (--jwt-file); renewals use the current \
            certificate over mTLS. Readers that must never mix a key with another chain should resolve DIR/..data \
            once and read the three files from that directory.
            """
    )

    @Option(help: ArgumentHelp("The CA daemon's address.", valueName: "host:port")) var ca: String
    @Option(name: .customLong("sa"), help: ArgumentHelp("Service account of the workload.", valueName: "name")) var serviceAccount: String
    @Option(name: .customLong("ns"), help: ArgumentHelp("Namespace of the workload.", valueName: "name")) var namespace: String = "default"
    @Option(help: ArgumentHelp("Trust domain of the identity.", valueName: "name")) var trustDomain: String = "cluster.local"
    @Option(help: ArgumentHelp("Directory for the three files.", valueName: "dir")) var out: String
    @Option(help: ArgumentHelp("Join token for the first certificate (also pins the CA root).", valueName: "token")) var token: String?
    @Option(help: ArgumentHelp("File holding the join token.", valueName: "file")) var tokenFile: String?
    @Option(help: ArgumentHelp("File holding a Kubernetes service-account JWT (re-read at each use).", valueName: "file")) var jwtFile: String?
    @Option(help: ArgumentHelp("Roots to verify the CA with (default: the token's pinned root).", valueName: "file")) var rootCert: String?
    @Option(help: ArgumentHelp("Requested lifetime.", valueName: "duration")) var ttl: String = "24h"
    @Option(help: ArgumentHelp("Workload key type.", valueName: "type")) var keyType: String = KeyType.ecP256.rawValue
    @Option(help: ArgumentHelp("Fraction of the lifetime left when renewing.", valueName: "ratio")) var graceRatio: Double = 0.5
    @Option(help: ArgumentHelp("Random spread of the renewal time (fraction).", valueName: "fraction")) var jitter: Double = 0.1
    @Option(help: ArgumentHelp("Unix socket for the SPIFFE Workload API (none by default).", valueName: "path")) var workloadAPISocket: String?
    @Option(help: ArgumentHelp("Uid allowed on the Workload API; repeatable (default: the agent's uid).", valueName: "uid")) var workloadUID: [UInt32] = []
    @Option(help: ArgumentHelp("Shell command run after each successful write (e.g. 'nginx -s reload').", valueName: "cmd")) var onRotate: String?
    @Option(help: ArgumentHelp("Octal mode of key.pem.", valueName: "mode")) var fileMode: String = "0600"
    @Option(help: ArgumentHelp("Owner of the files, as uid:gid.", valueName: "uid:gid")) var fileOwner: String?
    @Option(help: ArgumentHelp("Status endpoint (/healthz, /status), or 'off'.", valueName: "host:port")) var statusAddr: String = "127.0.0.1:15020"
    @Option(help: ArgumentHelp("The CA's CRL to fetch (at start, every --crl-refresh, after each renewal) into DIR/crl.pem and the Workload API: meshca serve's http://MONITORING/crl.", valueName: "url")) var crlURL: String?
    @Option(help: ArgumentHelp("How often to fetch --crl-url again.", valueName: "duration")) var crlRefresh: String = "1m"
    @Option(help: ArgumentHelp("trace, debug, info, notice, warning, error or critical.", valueName: "level")) var logLevel: String = "info"

    func makeConfiguration() throws -> AgentConfiguration {
        func parseDuration(_ text: String, flag: String) throws -> Duration {
            do { return try HumanDuration.parse(text) } catch let error as IssuanceError { throw ValidationError("\(flag): \(error.message)") }
        }
        let bootstraps = [token.map { AgentConfiguration.Bootstrap.token($0) }, tokenFile.map { .tokenFile($0) }, jwtFile.map { .jwtFile($0) }].compactMap { $0 }
        guard bootstraps.count == 1, let bootstrap = bootstraps.first else {
            throw ValidationError("Give exactly one of --token, --token-file or --jwt-file (create a token with `meshca token create --sa \(serviceAccount)` on the CA host).")
        }
        if case .jwtFile = bootstrap, rootCert == nil {
            throw ValidationError("--jwt-file needs --root-cert: a JWT does not carry the CA's root (a join token does).")
        }
        if case .token(let text) = bootstrap {
            do { _ = try JoinToken(parsing: text) } catch let error as IssuanceError { throw ValidationError("--token: \(error.message)") }
        }
        guard let mode = mode_t(fileMode, radix: 8), mode & ~0o777 == 0, mode & 0o400 != 0 else {
            throw ValidationError("--file-mode \(fileMode) is not an octal file mode the owner can read, such as 0600 or 0640.")
        }
        var owner: (uid: uid_t, gid: gid_t)?
        if let fileOwner {
            let parts = fileOwner.split(separator: ":")
            guard parts.count == 2, let uid = uid_t(parts[0]), let gid = gid_t(parts[1]) else {
                throw ValidationError("--file-owner \(fileOwner) must be numeric uid:gid, such as 1000:1000.")
            }
            owner = (uid, gid)
        }
        var crl: URL?
        if let crlURL {
            guard let url = URL(string: crlURL), url.scheme == "http", url.host != nil else {
                throw ValidationError(
                    "--crl-url \(crlURL) must be a plain http:// URL, such as http://127.0.0.1:15014/crl (meshca serve's monitoring port); the CRL is signed, so no TLS is needed.")
            }
            crl = url
        }
        var status: (host: String, port: Int)?
        if statusAddr != "off" {
            guard let address = try? HostPort.parse(statusAddr) else {
                throw ValidationError("--status-addr \(statusAddr) is not HOST:PORT (or off), e.g. 127.0.0.1:15020 or [::1]:15020.")
            }
            status = (address.host, address.port)
        }
        let crlRefreshInterval = try parseDuration(crlRefresh, flag: "--crl-refresh")
        do {
            var configuration = AgentConfiguration(
                caAddress: ca,
                identity: try SPIFFEID(trustDomain: TrustDomain(trustDomain), namespace: namespace, serviceAccount: serviceAccount),
                outDirectory: FilePaths.absolute(out),
                bootstrap: bootstrap,
                rootCertFile: rootCert,
                ttl: try parseDuration(ttl, flag: "--ttl"),
                keyType: try KeyType(parsing: keyType),
                schedule: try RenewalSchedule(graceRatio: graceRatio, jitter: jitter),
                workloadAPISocket: workloadAPISocket,
                workloadUIDs: workloadUID.isEmpty ? [UInt32(getuid())] : Set(workloadUID),
                onRotate: onRotate,
                keyMode: mode,
                fileOwner: owner,
                statusAddress: status,
                crlURL: crl
            )
            configuration.crlRefreshInterval = crlRefreshInterval
            return configuration
        } catch let error as IssuanceError {
            throw ValidationError(error.message)
        }
    }

    public func validate() throws {
        _ = try makeConfiguration()
    }

    public func run() async throws {
        let configuration = try makeConfiguration()
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("--log-level \(logLevel) is not one of trace, debug, info, notice, warning, error, critical.")
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let runtime = AgentRuntime(configuration: configuration, logger: Logger(label: "meshca-agent")) { address in
            print("meshca agent: \(configuration.identity.uri) -> \(configuration.outDirectory); status on http://\(address)")
            fflush(nil)
        }
        try await runtime.run()
    }
}

/// `meshca agent status`
public struct AgentStatusCommand: AsyncParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show a running agent's identity, expiry, next renewal, last error and outage budget."
    )

    @Option(help: ArgumentHelp("The agent's status endpoint.", valueName: "host:port")) var statusAddr: String = "127.0.0.1:15020"
    @Flag(help: "Print the raw JSON.") var json = false

    /// The largest `/status` answer read: 64 KiB (an agent's is under 2 KiB).
    static let maximumBodyBytes = 64 * 1024

    public func run() async throws {
        guard let url = URL(string: "http://\(statusAddr)/status"), (try? HostPort.parse(statusAddr)) != nil else {
            throw ValidationError("--status-addr \(statusAddr) is not HOST:PORT, e.g. 127.0.0.1:15020 or [::1]:15020.")
        }
        let answer: (status: Int, body: [UInt8])
        do {
            answer = try await HTTPFetch.get(url, maximumBodyBytes: Self.maximumBodyBytes, what: "an agent's status")
        } catch {
            throw AgentCommandError("No agent answers at \(statusAddr) (\(error)). Is `meshca agent` running with --status-addr \(statusAddr)?")
        }
        guard answer.status == 200, let status = try? JSONDecoder().decode(StatusDocument.self, from: Data(answer.body)) else {
            throw AgentCommandError("The server at \(statusAddr) answered HTTP \(answer.status) with something that is not an agent's status.")
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

/// A failure of an agent command, printed as `Error: <description>` with exit status 1.
struct AgentCommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
