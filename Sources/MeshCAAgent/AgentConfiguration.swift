#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import MeshCACore
import MeshCAErrors
import MeshCAIO
@_exported import MeshCASettings

import MeshCAPlatform

/// Everything `meshca agent` needs, validated before it starts.
public struct AgentConfiguration: Sendable {
    /// How the agent proves its identity the first time (and after its certificate expired).
    public enum Bootstrap: Sendable, Equatable {
        /// A join token given on the command line.
        case token(String)
        /// A file holding a join token (re-read at each bootstrap).
        case tokenFile(String)
        /// A file holding a Kubernetes service-account JWT (re-read at each bootstrap, as the kubelet rotates it).
        case jwtFile(String)

        /// Whether the credential is read from a file at each use (and so may have been replaced since).
        var isFile: Bool {
            if case .token = self { return false }
            return true
        }
    }

    /// The CA's addresses (`HOST:PORT`), tried in turn: the one that answered last first, the next when it gives no
    /// answer. A host name stands for every address it resolves to. Set from the initializer's `caAddress` and
    /// more added after it.
    public var caAddresses: [String]
    /// The identity requested.
    public var identity: SPIFFEID
    /// The directory the three files are written to.
    public var outDirectory: String
    /// The bootstrap credential.
    public var bootstrap: Bootstrap
    /// Roots to verify the CA against; nil uses the root pinned by the join token.
    public var rootCertFile: String?
    /// The requested certificate lifetime.
    public var ttl: Duration
    /// The workload key type.
    public var keyType: KeyType
    /// When to renew and how to retry.
    public var schedule: RenewalSchedule
    /// The Workload API socket path, or nil for none.
    public var workloadAPISocket: String?
    /// Unix uids admitted to the Workload API.
    public var workloadUIDs: Set<UInt32>
    /// A shell command run after every successful write.
    public var onRotate: String?
    /// Mode of `key.pem`.
    public var keyMode: mode_t
    /// Owner of the files, or nil.
    public var fileOwner: (uid: uid_t, gid: gid_t)?
    /// `HOST:PORT` of the status endpoint, or nil for none.
    public var statusAddress: (host: String, port: Int)?
    /// The CA's CRL over plain HTTP (`meshca serve`'s `http://MONITORING/crl`), or nil to fetch none.
    public var crlURL: URL?
    /// How often the CRL is fetched again (it is also fetched after every new certificate).
    public var crlRefreshInterval: Duration = .seconds(60)
    /// How log lines are written to stderr (`log-format`: text, or one JSON object per line).
    public var logFormat: LogFormat = .text
    /// DNS names asked for besides the SPIFFE ID (`dns-name`), lowercase; the CA grants them only by its
    /// `allow-dns-sans` policy. Empty by default.
    public var dnsNames: [String] = []
    /// A file name in ``outDirectory`` for the chain and the key together (`combined-pem`), swapped with the other
    /// files and with `key.pem`'s mode; nil for none.
    public var combinedPEM: String?

    /// Creates a configuration for a CA at `caAddress` (add more addresses to ``caAddresses``).
    public init(
        caAddress: String,
        identity: SPIFFEID,
        outDirectory: String,
        bootstrap: Bootstrap,
        rootCertFile: String? = nil,
        ttl: Duration = .seconds(86_400),
        keyType: KeyType = .ecP256,
        schedule: RenewalSchedule,
        workloadAPISocket: String? = nil,
        workloadUIDs: Set<UInt32> = [UInt32(getuid())],
        onRotate: String? = nil,
        keyMode: mode_t = 0o600,
        fileOwner: (uid: uid_t, gid: gid_t)? = nil,
        statusAddress: (host: String, port: Int)? = ("127.0.0.1", 15020),
        crlURL: URL? = nil
    ) {
        self.crlURL = crlURL
        self.caAddresses = [caAddress]
        self.identity = identity
        self.outDirectory = outDirectory
        self.bootstrap = bootstrap
        self.rootCertFile = rootCertFile
        self.ttl = ttl
        self.keyType = keyType
        self.schedule = schedule
        self.workloadAPISocket = workloadAPISocket
        self.workloadUIDs = workloadUIDs
        self.onRotate = onRotate
        self.keyMode = keyMode
        self.fileOwner = fileOwner
        self.statusAddress = statusAddress
    }
}

extension AgentConfiguration {
    /// The settings while they are read; required ones are nil until set.
    struct Draft {
        var ca: [String] = []
        var serviceAccount: String?
        var namespace = "default"
        var trustDomain = "cluster.local"
        var out: String?
        var bootstraps: [(key: String, bootstrap: Bootstrap)] = []
        var rootCert: String?
        var ttl: Duration = .seconds(86_400)
        var keyType = KeyType.ecP256
        var graceRatio = 0.5
        var jitter = 0.1
        var workloadAPISocket: String?
        var workloadUIDs: Set<UInt32> = []
        var onRotate: String?
        var keyMode: mode_t = 0o600
        var fileOwner: (uid: uid_t, gid: gid_t)?
        var statusAddress: (host: String, port: Int)? = ("127.0.0.1", 15020)
        var crlURL: URL?
        var crlRefresh: Duration = .seconds(60)
        var logLevel = "info"
        var logFormat = LogFormat.text
        var dnsNames: [String] = []
        var combinedPEM: String?
    }

    /// The settings' keys, as written in a config file; flags are `--KEY`, environment variables `MESHCA_AGENT_KEY`
    /// with `-` as `_` (`crl-url`: `--crl-url`, `MESHCA_AGENT_CRL_URL`).
    public static let keys: [String] = specs.map(\.name)

    /// `MESHCA_AGENT_<KEY>`, upper case, `-` as `_`.
    public static func environmentName(_ key: String) -> String {
        reader().environmentName(key)
    }

    /// The log levels `log-level` accepts.
    public static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    /// Reads the agent's settings: each key from `flags` (kebab keys without `--`; list keys comma-separated),
    /// else `MESHCA_AGENT_<KEY>` in `environment`, else the YAML mapping in `configFile` (or
    /// `MESHCA_AGENT_CONFIG`), else its default. Checks every value and throws one ``ConfigurationError``
    /// listing every problem. `MESHCA_AGENT_*` variables that are not keys are ignored; unknown file keys are
    /// problems. Also returns the `log-level` text (checked).
    public static func load(
        flags: [String: String], environment: [String: String], configFile: String?
    ) throws -> (configuration: AgentConfiguration, logLevel: String) {
        var reader = Self.reader()
        reader.read(configFile: configFile, configVariable: "MESHCA_AGENT_CONFIG", environment: environment, flags: flags)
        var draft = Draft()
        reader.apply(to: &draft)
        let settings = reader.settings
        var problems = reader.problems
        func missing(_ key: String, _ what: String) -> String {
            let example = specs.first { $0.name == key }?.example ?? "VALUE"
            return "\(key) is not set: \(what). Give --\(key) \(example), \(environmentName(key))=\(example), or \(key): \(example) in the --config file."
        }
        if draft.ca.isEmpty, settings["ca"] == nil { problems.append(missing("ca", "the CA daemon's HOST:PORT is needed")) }
        if draft.serviceAccount == nil, settings["sa"] == nil { problems.append(missing("sa", "the workload's service account is needed")) }
        if draft.out == nil, settings["out"] == nil { problems.append(missing("out", "the directory for the three files is needed")) }
        if draft.bootstraps.count != 1, !problems.contains(where: { $0.hasPrefix("token") || $0.hasPrefix("jwt-file") }) {
            let given = draft.bootstraps.isEmpty ? "none is set" : "\(draft.bootstraps.map(\.key).joined(separator: " and ")) are all set"
            problems.append(
                "Give exactly one of --token, --token-file or --jwt-file (or MESHCA_AGENT_TOKEN, MESHCA_AGENT_TOKEN_FILE, MESHCA_AGENT_JWT_FILE, "
                    + "or token/token-file/jwt-file in the --config file); \(given). Create a token with "
                    + "`meshca token create --sa \(draft.serviceAccount ?? "NAME")` on the CA host.")
        }
        if case .jwtFile = draft.bootstraps.first?.bootstrap, draft.bootstraps.count == 1, draft.rootCert == nil {
            problems.append("--jwt-file needs --root-cert (or root-cert in the --config file): a JWT does not carry the CA's root (a join token does).")
        }
        var identity: SPIFFEID?
        var schedule: RenewalSchedule?
        do {
            schedule = try RenewalSchedule(graceRatio: draft.graceRatio, jitter: draft.jitter)
        } catch {
            problems.append(whole(error))
        }
        if let serviceAccount = draft.serviceAccount {
            do {
                identity = try SPIFFEID(trustDomain: TrustDomain(draft.trustDomain), namespace: draft.namespace, serviceAccount: serviceAccount)
            } catch {
                problems.append(whole(error))
            }
        }
        guard problems.isEmpty, let ca = draft.ca.first, let out = draft.out, let identity, let schedule, let bootstrap = draft.bootstraps.first?.bootstrap else {
            throw ConfigurationError(problems: problems)
        }
        var configuration = AgentConfiguration(
            caAddress: ca, identity: identity, outDirectory: FilePaths.absolute(out), bootstrap: bootstrap, rootCertFile: draft.rootCert,
            ttl: draft.ttl, keyType: draft.keyType, schedule: schedule, workloadAPISocket: draft.workloadAPISocket,
            workloadUIDs: draft.workloadUIDs.isEmpty ? [UInt32(getuid())] : draft.workloadUIDs, onRotate: draft.onRotate,
            keyMode: draft.keyMode, fileOwner: draft.fileOwner, statusAddress: draft.statusAddress, crlURL: draft.crlURL
        )
        configuration.caAddresses = draft.ca
        configuration.crlRefreshInterval = draft.crlRefresh
        configuration.logFormat = draft.logFormat
        configuration.dnsNames = draft.dnsNames
        configuration.combinedPEM = draft.combinedPEM
        return (configuration, draft.logLevel)
    }

    /// The reader of the agent's keys (`MESHCA_AGENT_` variables).
    static func reader() -> SettingsReader<Draft> {
        SettingsReader(command: "meshca agent", environmentPrefix: "MESHCA_AGENT_", keys: specs)
    }

    /// The whole message of a MeshCACore error about settings together (the schedule, the identity).
    private static func whole(_ error: any Error) -> String {
        (error as? IssuanceError)?.message ?? "\(error)"
    }

    private static let durationRule = "a duration such as 90s, 30m, 24h or 7d"

    /// Every key, in the order of `--help` and of reported problems.
    static let specs: [SettingKey<Draft>] = [
        SettingKey(
            "ca", list: true,
            accepts: "the CA daemon's HOST:PORT; several for replicas, comma-separated (a YAML list in the file), each "
                + "tried when the one before gives no answer", example: "meshca.example:15012"
        ) { setting, draft in
            for item in try setting.nonEmptyItems() {
                let address: HostPort
                do throws(HostPort.Problem) {
                    address = try HostPort.parse(item)
                } catch {
                    throw SettingProblem("\"\(item)\": \(error.why)")
                }
                guard address.port > 0 else { throw SettingProblem("\"\(item)\": the CA's port cannot be 0") }
                if !draft.ca.contains(item) { draft.ca.append(item) }
            }
        },
        SettingKey("sa", accepts: "a Kubernetes service account name", example: "web") { setting, draft in
            try KubernetesName.validate(setting.text, as: .serviceAccount)
            draft.serviceAccount = setting.text
        },
        SettingKey("ns", accepts: "a Kubernetes namespace name", example: "default") { setting, draft in
            try KubernetesName.validate(setting.text, as: .namespace)
            draft.namespace = setting.text
        },
        SettingKey("trust-domain", accepts: "a lowercase DNS-style name", example: "cluster.local") { setting, draft in
            draft.trustDomain = try TrustDomain(setting.text).name
        },
        SettingKey(
            "dns-name", list: true,
            accepts: "DNS names for the certificate besides the SPIFFE ID, comma-separated (a YAML list in the file); the CA "
                + "grants them only by its allow-dns-sans policy", example: "web.example.internal"
        ) { setting, draft in
            for item in try setting.nonEmptyItems() {
                let name = item.lowercased()
                if let why = DNSNamePattern.nameProblem(name) { throw SettingProblem("\"\(item)\": \(why)") }
                if !draft.dnsNames.contains(name) { draft.dnsNames.append(name) }
            }
        },
        SettingKey("out", accepts: "a directory path", example: "/var/run/secrets/workload") { setting, draft in
            draft.out = try setting.nonEmpty()
        },
        SettingKey(
            "combined-pem", accepts: "a file name (no directory) for the chain and key in one file, written in --out",
            example: "combined.pem"
        ) { setting, draft in
            let name = setting.text.trimmed
            if let why = CredentialDirectory.combinedNameProblem(name) { throw SettingProblem(why) }
            draft.combinedPEM = name
        },
        SettingKey("token", accepts: "a join token from `meshca token create`", example: "mct1.…") { setting, draft in
            _ = try JoinToken(parsing: setting.text.trimmed)
            draft.bootstraps.append(("token", .token(setting.text.trimmed)))
        },
        SettingKey("token-file", accepts: "the path of a file holding a join token", example: "/etc/meshca/web.token") { setting, draft in
            draft.bootstraps.append(("token-file", .tokenFile(try setting.nonEmpty())))
        },
        SettingKey("jwt-file", accepts: "the path of a Kubernetes service-account token file", example: "/var/run/secrets/tokens/istio-token") {
            setting, draft in
            draft.bootstraps.append(("jwt-file", .jwtFile(try setting.nonEmpty())))
        },
        SettingKey("root-cert", accepts: "the path of a PEM file of root certificates", example: "/etc/meshca/root-cert.pem") { setting, draft in
            draft.rootCert = try setting.nonEmpty()
        },
        SettingKey("ttl", accepts: durationRule, example: "24h") { setting, draft in
            draft.ttl = try HumanDuration.parse(setting.text)
        },
        SettingKey("key-type", accepts: KeyType.allCases.map(\.rawValue).joined(separator: ", "), example: "ec-p256") { setting, draft in
            draft.keyType = try KeyType(parsing: setting.text)
        },
        SettingKey("grace-ratio", accepts: "a fraction between 0 and 1 (0.5 renews at half-life)", example: "0.5") { setting, draft in
            guard let value = Double(setting.text.trimmed) else { throw SettingProblem("it is not a number") }
            draft.graceRatio = value
        },
        SettingKey("jitter", accepts: "a fraction from 0 up to 1", example: "0.1") { setting, draft in
            guard let value = Double(setting.text.trimmed) else { throw SettingProblem("it is not a number") }
            draft.jitter = value
        },
        SettingKey("workload-api-socket", accepts: "the path of a Unix socket", example: "/run/meshca/agent.sock") { setting, draft in
            draft.workloadAPISocket = try setting.nonEmpty()
        },
        SettingKey("workload-uid", list: true, accepts: "numeric uids, comma-separated (a YAML list in the file)", example: "1000,1001") {
            setting, draft in
            for item in try setting.nonEmptyItems() {
                guard let uid = UInt32(item) else { throw SettingProblem("\"\(item)\" is not a numeric uid") }
                draft.workloadUIDs.insert(uid)
            }
        },
        SettingKey("on-rotate", accepts: "a shell command", example: "'nginx -s reload'") { setting, draft in
            draft.onRotate = try setting.nonEmpty()
        },
        SettingKey("file-mode", accepts: "an octal file mode the owner can read", example: "0600") { setting, draft in
            guard let mode = mode_t(setting.text, radix: 8), mode & ~0o777 == 0, mode & 0o400 != 0 else {
                throw SettingProblem("it is not an octal file mode the owner can read")
            }
            draft.keyMode = mode
        },
        SettingKey("file-owner", accepts: "numeric uid:gid", example: "1000:1000") { setting, draft in
            let parts = setting.text.split(separator: ":")
            guard parts.count == 2, let uid = uid_t(parts[0]), let gid = gid_t(parts[1]) else { throw SettingProblem("it is not numeric uid:gid") }
            draft.fileOwner = (uid, gid)
        },
        SettingKey("status-addr", accepts: "HOST:PORT or [IPv6]:PORT, or off", example: "127.0.0.1:15020") { setting, draft in
            if setting.text == "off" { return draft.statusAddress = nil }
            let address = try HostPort.parse(setting.text)
            draft.statusAddress = (address.host, address.port)
        },
        SettingKey("crl-url", accepts: "a plain http:// URL (meshca serve's http://MONITORING/crl; the CRL is signed, so no TLS is needed)",
            example: "http://127.0.0.1:15014/crl") { setting, draft in
            guard let url = URL(string: setting.text), url.scheme == "http", url.host != nil else { throw SettingProblem("it is not a plain http:// URL") }
            draft.crlURL = url
        },
        SettingKey("crl-refresh", accepts: durationRule, example: "1m") { setting, draft in
            draft.crlRefresh = try HumanDuration.parse(setting.text)
        },
        SettingKey("log-level", accepts: logLevels.joined(separator: ", "), example: "info") { setting, draft in
            let level = setting.text.trimmed.lowercased()
            guard logLevels.contains(level) else { throw SettingProblem("it is not a log level") }
            draft.logLevel = level
        },
        SettingKey("log-format", accepts: "text or json (one JSON object per line)", example: "json") { setting, draft in
            guard let format = LogFormat(rawValue: setting.text.trimmed.lowercased()) else { throw SettingProblem("it is not a log format") }
            draft.logFormat = format
        },
    ]
}
