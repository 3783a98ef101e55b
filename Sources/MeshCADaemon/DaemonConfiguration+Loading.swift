import Foundation
import Logging
import MeshCACore
import MeshCAErrors
import MeshCAIO
import Yams

/// Every problem found in meshca's configuration, reported together so one edit fixes them all.
///
/// Each problem is one sentence naming the key, where the value came from (`flag --max-ttl`,
/// `environment MESHCA_MAX_TTL`, `config file PATH`), the bad value, the accepted values and an example.
///
/// Not a ``CAError``: one report of several problems at once.
public struct ConfigurationError: CodedError {
    /// The problems, one sentence each: the config file's first, then flags', then each key in ``DaemonConfiguration/keys`` order.
    public let problems: [String]

    /// Creates an error from at least one problem.
    public init(problems: [String]) {
        self.problems = problems
    }

    /// Always `invalid-configuration`.
    public var code: CAError.Code { .invalidConfiguration }

    /// The only problem, or a count followed by one problem per line.
    public var message: String {
        if problems.count == 1 { return problems[0] }
        return "The configuration has \(problems.count) problems:\n"
            + problems.map { "  - \($0)" }.joined(separator: "\n")
    }
}

/// Why a value breaks its key's rule, before the loader adds the key and source.
///
/// Not a ``CAError``: a clause the loader puts into its sentence, with the key, the source and an example.
struct ValueProblem: CodedError {
    let why: String
    init(_ why: String) { self.why = why }
    /// Always `invalid-value`.
    var code: CAError.Code { .invalidValue }
    /// The clause.
    var message: String { why }
}

extension DaemonConfiguration {
    /// The configuration keys, as written in a config file; flags are `--KEY`, environment variables
    /// `MESHCA_KEY` with `-` as `_` (`max-ttl`: `--max-ttl`, `MESHCA_MAX_TTL`). See the table on
    /// ``DaemonConfiguration`` for what each one sets.
    public static let keys: [String] = specs.map(\.name)

    /// The longest `max-ttl` accepted.
    public static let maxTTLCeiling: Duration = .seconds(365 * 86_400)

    /// Reads the configuration: each key from `flags` (kebab keys without `--`), else `MESHCA_<KEY>` in
    /// `environment`, else the YAML mapping in `configFile` (or `MESHCA_CONFIG`), else its default.
    ///
    /// Validates every value, checks that `jwt-keys` is a readable file, and throws one
    /// ``ConfigurationError`` listing every problem. List keys (`dns-name`, `jwt-audience`) are
    /// comma-separated in flags and environment, a YAML list or a comma-separated string in the file.
    /// `MESHCA_*` variables that are not keys are ignored; unknown flags and file keys are problems.
    public static func load(
        flags: [String: String],
        environment: [String: String],
        configFile: String?
    ) throws -> DaemonConfiguration {
        var reader = SettingsReader()
        if let path = configFile ?? flags["config"] {
            reader.readFile(path, namedBy: "--config")
        } else if let path = environment["MESHCA_CONFIG"] {
            reader.readFile(path, namedBy: "MESHCA_CONFIG")
        }
        for spec in specs {
            if let text = environment[ConfigurationSource.environmentName(spec.name)] {
                reader.settings[spec.name] = Setting(spec: spec, text: text, source: .environment)
            }
        }
        for (key, text) in flags.sorted(by: { $0.key < $1.key }) where key != "config" {
            guard let spec = specs.first(where: { $0.name == key }) else {
                let known = keys.map { "--" + $0 }.joined(separator: ", ")
                reader.problems.append("--\(key) is not a meshca serve option. Known options: \(known).")
                continue
            }
            reader.settings[key] = Setting(spec: spec, text: text, source: .flag)
        }
        return try reader.configuration()
    }

    /// Every key: what it accepts, an example, and how its text becomes a field. Adding a key is one line
    /// here plus the field; the order is the order of ``keys`` and of reported problems.
    static let specs: [KeySpec] = [
        KeySpec("listen", accepts: hostPort, example: "127.0.0.1:15012") { $1.listen = try HostPort.parse($0.text) },
        KeySpec("monitoring", accepts: hostPort, example: "127.0.0.1:15014") { $1.monitoring = try HostPort.parse($0.text) },
        KeySpec("state-dir", accepts: "a directory path", example: "/var/lib/meshca") {
            $1.stateDirectory = try $0.nonEmpty()
        },
        KeySpec("init-if-missing", accepts: "true or false (also yes/no, 1/0)", example: "true") {
            $1.initIfMissing = try $0.boolean()
        },
        KeySpec("ledger", accepts: "a postgres:// URL without a password (leave it out for SQLite in the state directory)",
            example: "postgres://meshca@db.example:5432/meshca?sslmode=verify-full") {
            guard case .postgres(let url, _) = try? LedgerLocation.parse($0.text) else {
                throw ValueProblem("it is not a postgres:// or postgresql:// URL")
            }
            $1.ledgerURL = url
        },
        KeySpec("ledger-password-file", accepts: "the path of a readable file holding the PostgreSQL password", example: "/etc/meshca/ledger-password") {
            $1.ledgerPasswordFile = try $0.readableFile()
        },
        KeySpec("trust-domain", accepts: "a lowercase DNS-style name", example: "cluster.local") {
            $1.trustDomain = try TrustDomain($0.text).name
        },
        KeySpec("dns-name", list: true, accepts: "DNS names or IPv4 addresses", example: "meshca.example,localhost") {
            $1.dnsNames = try $0.list(checking: DaemonConfiguration.dnsNameProblem)
        },
        KeySpec("default-ttl", accepts: "a duration up to max-ttl, such as 90s, 30m, 24h or 7d", example: "24h") {
            $1.defaultTTL = try HumanDuration.parse($0.text)
        },
        KeySpec("max-ttl", accepts: "a duration from 1s to 365d, such as 24h, 7d or 90d", example: "90d") {
            $1.maxTTL = try HumanDuration.parse($0.text)
            guard $1.maxTTL <= DaemonConfiguration.maxTTLCeiling else { throw ValueProblem("it is longer than 365d") }
        },
        KeySpec("serving-cert-ttl", accepts: "a duration such as 24h or 7d", example: "7d") {
            $1.servingCertificateTTL = try HumanDuration.parse($0.text)
        },
        KeySpec("auth-failure-limit", accepts: "COUNT/s, COUNT/m or COUNT/h per network address, or off (also 0)", example: "60/m") {
            $1.authFailureLimit = try RateLimit.parseValue($0.text)
        },
        KeySpec("rate-limit", accepts: "COUNT/s, COUNT/m or COUNT/h per identity, or off (also 0)", example: "100/m") {
            $1.rateLimit = try RateLimit.parseValue($0.text)
        },
        KeySpec("retry-window", accepts: "a duration up to 1h, such as 5m, or off (also 0)", example: "5m") {
            let text = $0.text.trimmingCharacters(in: .whitespaces).lowercased()
            if text == "off" || text == "0" { return $1.retryWindow = .zero }
            $1.retryWindow = try HumanDuration.parse(text)
            guard $1.retryWindow <= .seconds(3600) else { throw ValueProblem("it is longer than 1h") }
        },
        KeySpec(
            "trusted-node-accounts", list: true,
            accepts: "NAMESPACE/SERVICE-ACCOUNT pairs, comma-separated, or none (also off)", example: "istio-system/ztunnel"
        ) {
            let text = $0.text.trimmingCharacters(in: .whitespaces).lowercased()
            if text == "none" || text == "off" { return $1.trustedNodeAccounts = [] }
            $1.trustedNodeAccounts = try $0.list(checking: DaemonConfiguration.nodeAccountProblem)
        },
        KeySpec(
            "allow-dns-sans", list: true,
            accepts: "NAMESPACE/SERVICE-ACCOUNT=PATTERN items, comma-separated, where PATTERN is a DNS name or *. before one (one more label), or none (also off)",
            example: "istio-system/istiod=istiod.istio-system.svc"
        ) {
            let text = $0.text.trimmingCharacters(in: .whitespaces).lowercased()
            if text == "none" || text == "off" { return $1.allowDNSSANs = DNSSANPolicy() }
            guard !$0.items.isEmpty else { throw ValueProblem("it lists nothing") }
            do {
                $1.allowDNSSANs = try DNSSANPolicy(parsing: $0.items)
            } catch let problem as DNSSANPolicy.PolicyProblem {
                throw ValueProblem(problem.why)
            }
        },
        KeySpec("jwt-keys", accepts: "the path of a readable JWKS file", example: "/etc/meshca/jwks.json") {
            $1.jwtKeysFile = try $0.readableFile()
        },
        KeySpec("jwks-url", accepts: "an https:// (or http://) URL of a JWKS document or an OIDC discovery document", example: "https://kubernetes.default.svc/openid/v1/jwks") {
            let text = try $0.nonEmpty().trimmingCharacters(in: .whitespaces)
            guard let url = URL(string: text), ["https", "http"].contains(url.scheme?.lowercased() ?? ""), url.host != nil else {
                throw ValueProblem("it is not an http(s) URL with a host")
            }
            $1.jwksURL = text
        },
        KeySpec("jwks-ca-file", accepts: "the path of a readable PEM file of CA certificates", example: "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt") {
            $1.jwksCAFile = try $0.readableFile()
        },
        KeySpec("jwks-token-file", accepts: "the path of a readable file holding a bearer token", example: "/var/run/secrets/kubernetes.io/serviceaccount/token") {
            $1.jwksTokenFile = try $0.readableFile()
        },
        KeySpec("jwks-refresh", accepts: "a duration from 10s to 24h, such as 5m or 1h", example: "5m") {
            $1.jwksRefresh = try HumanDuration.parse($0.text)
            guard $1.jwksRefresh >= .seconds(10) else { throw ValueProblem("it is shorter than 10s") }
            guard $1.jwksRefresh <= .seconds(86_400) else { throw ValueProblem("it is longer than 24h") }
        },
        KeySpec("jwt-issuer", accepts: "the token issuer, non-empty", example: "https://kubernetes.default.svc") {
            $1.jwtIssuer = try $0.nonEmpty()
        },
        KeySpec("jwt-audience", list: true, accepts: "one or more audiences", example: "istio-ca") {
            $1.jwtAudiences = try $0.list(checking: { _ in nil })
        },
        KeySpec("jwt-max-lifetime", accepts: "a duration such as 1h, 12h or 48h", example: "48h") {
            $1.jwtMaxLifetime = try HumanDuration.parse($0.text)
        },
        KeySpec("handshake-timeout", accepts: "a duration from 1s, such as 5s or 10s", example: "10s") {
            $1.handshakeTimeout = try HumanDuration.parse($0.text)
        },
        KeySpec("idle-timeout", accepts: "a duration from 1s, such as 1m or 5m", example: "5m") {
            $1.idleTimeout = try HumanDuration.parse($0.text)
        },
        KeySpec("max-connections", accepts: "a whole number of connections per listener, at least 1, or auto", example: "1000") {
            let text = $0.text.trimmingCharacters(in: .whitespaces).lowercased()
            if text == "auto" { return $1.maxConnections = nil }
            guard text.allSatisfy(\.isASCII), let count = Int(text) else { throw ValueProblem("it is not a whole number") }
            guard count >= 1 else { throw ValueProblem("it is below 1") }
            $1.maxConnections = count
        },
        KeySpec("state-poll-interval", accepts: "a duration from 1s to 1h, such as 1s or 10s", example: "1s") {
            $1.statePollInterval = try HumanDuration.parse($0.text)
            guard $1.statePollInterval <= .seconds(3600) else { throw ValueProblem("it is longer than 1h") }
        },
        KeySpec("log-level", accepts: "trace, debug, info, notice, warning, error or critical", example: "info") {
            guard let level = Logger.Level(rawValue: $0.text.trimmingCharacters(in: .whitespaces).lowercased()) else {
                throw ValueProblem("it is not a log level")
            }
            $1.logLevel = level
        },
        KeySpec("log-format", accepts: "text or json (one JSON object per line)", example: "json") {
            guard let format = LogFormat(rawValue: $0.text.trimmingCharacters(in: .whitespaces).lowercased()) else {
                throw ValueProblem("it is not a log format")
            }
            $1.logFormat = format
        },
    ]

    private static let hostPort = "HOST:PORT or [IPv6]:PORT, port 0-65535"
}

/// One key's rule, for messages and docs/configuration.md, and how to apply its value.
struct KeySpec: Sendable {
    let name: String
    let isList: Bool
    let accepts: String
    let example: String
    /// Sets the field from the value; throws ``ValueProblem`` or a MeshCACore error whose message has the rule.
    let apply: @Sendable (Setting, inout DaemonConfiguration) throws -> Void

    init(
        _ name: String,
        list: Bool = false,
        accepts: String,
        example: String,
        apply: @escaping @Sendable (Setting, inout DaemonConfiguration) throws -> Void
    ) {
        self.name = name
        self.isList = list
        self.accepts = accepts
        self.example = example
        self.apply = apply
    }
}

/// Where a value came from, so a message can say where to fix it.
enum ConfigurationSource: Sendable {
    case flag
    case environment
    case file(String)
    case defaultValue

    static func environmentName(_ key: String) -> String {
        "MESHCA_" + key.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    func describe(_ key: String) -> String {
        switch self {
        case .flag: "flag --\(key)"
        case .environment: "environment \(Self.environmentName(key))"
        case .file(let path): "config file \(path)"
        case .defaultValue: "default"
        }
    }

    /// How to write `value` for `key` in the same place the bad value came from.
    func example(_ key: String, _ value: String) -> String {
        switch self {
        case .flag, .defaultValue: "--\(key) \(value)"
        case .environment: "\(Self.environmentName(key))=\(value)"
        case .file: "\(key): \(value)"
        }
    }
}

/// One key's raw value and origin, with the checks the key table uses.
struct Setting: Sendable {
    let spec: KeySpec
    /// The value as written; for a YAML list, its items joined with commas.
    let text: String
    let source: ConfigurationSource
    /// For list keys, the items: split at commas, trimmed, empty ones dropped.
    let items: [String]

    init(spec: KeySpec, text: String, items: [String]? = nil, source: ConfigurationSource) {
        self.spec = spec
        self.text = text
        self.source = source
        self.items = (items ?? [text]).flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// The sentence for a value that breaks the key's rule; `example` replaces the key's usual example value.
    func problem(_ why: String, example: String? = nil) -> String {
        "\(spec.name) (\(source.describe(spec.name))) = \"\(text)\": \(why). Accepted: \(spec.accepts). "
            + "Example: \(source.example(spec.name, example ?? spec.example))"
    }

    /// `true`/`yes`/`1` or `false`/`no`/`0`, any case.
    func boolean() throws -> Bool {
        switch text.trimmingCharacters(in: .whitespaces).lowercased() {
        case "true", "yes", "1": return true
        case "false", "no", "0": return false
        default: throw ValueProblem("it is not true or false")
        }
    }

    func nonEmpty() throws -> String {
        guard !text.trimmingCharacters(in: .whitespaces).isEmpty else { throw ValueProblem("it is empty") }
        return text
    }

    /// The items, at least one, each passing `check` (which returns why an item is bad).
    func list(checking check: (String) -> String?) throws -> [String] {
        guard !items.isEmpty else { throw ValueProblem("it lists nothing") }
        for item in items {
            if let why = check(item) { throw ValueProblem("\"\(item)\": \(why)") }
        }
        return items
    }

    /// The path, when it names a regular file this user can read.
    func readableFile() throws -> String {
        let path = try nonEmpty()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ValueProblem("no such file")
        }
        guard !isDirectory.boolValue else { throw ValueProblem("it is a directory") }
        guard FileManager.default.isReadableFile(atPath: path) else { throw ValueProblem("this user cannot read it") }
        return path
    }
}

/// Collects raw settings from the file, environment and flags, then checks them all at once.
struct SettingsReader {
    var settings: [String: Setting] = [:]
    var problems: [String] = []

    /// Reads the YAML mapping at `path`; `option` is how the user named the file, for messages.
    mutating func readFile(_ path: String, namedBy option: String) {
        let origin = "config file \(path) (from \(option))"
        let fix = "Fix the path, or drop \(option) to use only flags, environment and defaults."
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            return problems.append("\(origin) does not exist. \(fix)")
        }
        guard !isDirectory.boolValue else {
            return problems.append("\(origin) is a directory, not a YAML file. \(fix)")
        }
        // An empty file sets nothing, unread: String(contentsOfFile:) leaks a 4 KiB buffer on a zero-length file
        // (found by fuzz-config; regression input Fuzz/Crashes/config/leak-empty-file).
        if let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            attributes[.type] as? FileAttributeType == .typeRegular, (attributes[.size] as? NSNumber)?.intValue == 0
        {
            return
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: String(contentsOfFile: path, encoding: .utf8))
        } catch let error as YamlError {
            return problems.append("\(origin) is not valid YAML; write one key: value per line. Yams says: \(error)")
        } catch {
            return problems.append("\(origin) cannot be read as UTF-8 text (\(error.localizedDescription)). \(fix)")
        }
        guard let root else { return }  // An empty file sets nothing.
        guard let mapping = root.mapping else {
            return problems.append("\(origin) must be a mapping of keys to values, one per line, e.g. max-ttl: 90d.")
        }
        let source = ConfigurationSource.file(path)
        for (keyNode, value) in mapping {
            let key = keyNode.string ?? "\(keyNode)"
            guard let spec = DaemonConfiguration.specs.first(where: { $0.name == key }) else {
                problems.append(Self.unknownKey(key, in: path))
                continue
            }
            let fix = "Accepted: \(spec.accepts). Example: \(source.example(key, spec.example))"
            if value.null != nil {
                problems.append("\(key) (config file \(path)) has no value. Give one or remove the line. \(fix)")
            } else if let scalar = value.scalar {
                settings[key] = Setting(spec: spec, text: scalar.string, source: source)
            } else if let list = value.sequence, spec.isList, list.allSatisfy({ $0.scalar != nil }) {
                let items = list.compactMap { $0.scalar?.string }
                settings[key] = Setting(spec: spec, text: items.joined(separator: ","), items: items, source: source)
            } else {
                let shape = spec.isList ? "a value or a list of values" : "a single value"
                problems.append("\(key) (config file \(path)) must be \(shape), not a nested structure. \(fix)")
            }
        }
    }

    private static func unknownKey(_ key: String, in path: String) -> String {
        let normalized = key.lowercased().replacingOccurrences(of: "_", with: "-")
        let guess = DaemonConfiguration.keys.first { normalized == $0 || normalized == $0 + "s" }
        let hint = guess.map { " Did you mean \($0)?" } ?? ""
        let known = DaemonConfiguration.keys.joined(separator: ", ")
        return "config file \(path): unknown key \"\(key)\".\(hint) Known keys: \(known)."
    }

    /// Applies every setting over the defaults, throwing one ``ConfigurationError`` with all problems.
    func configuration() throws -> DaemonConfiguration {
        var problems = self.problems
        var config = DaemonConfiguration()
        var failed: Set<String> = []
        for spec in DaemonConfiguration.specs {
            guard let setting = settings[spec.name] else { continue }
            do {
                try spec.apply(setting, &config)
            } catch {
                failed.insert(spec.name)
                let why = (error as? ValueProblem)?.why ?? (error as? HostPort.Problem)?.why ?? Self.rule(from: error)
                problems.append(setting.problem(why))
            }
        }
        if failed.isDisjoint(with: ["default-ttl", "max-ttl"]), config.defaultTTL > config.maxTTL {
            let spec = DaemonConfiguration.specs.first { $0.name == "default-ttl" }!
            let setting = settings["default-ttl"] ?? Setting(spec: spec, text: "24h", source: .defaultValue)
            let maxSource = settings["max-ttl"]?.source.describe("max-ttl") ?? "default"
            let maxText = HumanDuration.format(config.maxTTL)
            let why = "it is longer than max-ttl (\(maxSource)) = \"\(maxText)\"; lower default-ttl or raise max-ttl"
            problems.append(setting.problem(why, example: maxText))
        }
        if config.jwtIssuer != nil, config.jwtKeysFile == nil, config.jwksURL == nil, failed.isDisjoint(with: ["jwt-keys", "jwks-url"]),
            let setting = settings["jwt-issuer"]
        {
            problems.append(
                setting.problem(
                    "it is set but neither jwt-keys nor jwks-url is, and only tokens verified with those keys are checked; set one of them too"
                ))
        }
        if config.jwtKeysFile != nil, config.jwksURL != nil, let setting = settings["jwks-url"] {
            problems.append(setting.problem("jwt-keys is set too; give the keys one way: a file (jwt-keys) or a URL (jwks-url)"))
        }
        for key in ["jwks-ca-file", "jwks-token-file", "jwks-refresh"] where config.jwksURL == nil && !failed.contains("jwks-url") {
            if let setting = settings[key] { problems.append(setting.problem("it applies to jwks-url, which is not set; set jwks-url too")) }
        }
        guard problems.isEmpty else { throw ConfigurationError(problems: problems) }
        return config
    }

    /// The rule from a MeshCACore message ("<value> is not valid: RULE. What to do."), without the rest.
    private static func rule(from error: any Error) -> String {
        let message = (error as? IssuanceError)?.message ?? "\(error)"
        guard let colon = message.range(of: ": ") else { return message }
        let rest = message[colon.upperBound...]
        return String(rest[..<(rest.range(of: ". ")?.lowerBound ?? rest.endIndex)])
    }
}
