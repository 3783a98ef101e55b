import Foundation
import Logging
import MeshCACore
import MeshCAErrors
import MeshCAIO
@_exported import MeshCASettings

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
        var reader = SettingsReader(command: "meshca serve", environmentPrefix: "MESHCA_", keys: specs)
        reader.read(
            configFile: configFile ?? flags["config"], configVariable: "MESHCA_CONFIG", environment: environment, flags: flags)
        var configuration = DaemonConfiguration()
        let failed = reader.apply(to: &configuration)
        reader.problems += crossKeyProblems(configuration, reader: reader, failed: failed)
        try reader.checkProblems()
        return configuration
    }

    /// Every key: what it accepts, an example, and how its text becomes a field. Adding a key is one line
    /// here plus the field; the order is the order of ``keys`` and of reported problems.
    static let specs: [SettingKey<DaemonConfiguration>] = [
        SettingKey("listen", accepts: hostPort, example: "127.0.0.1:15012") { $1.listen = try HostPort.parse($0.text) },
        SettingKey("monitoring", accepts: hostPort, example: "127.0.0.1:15014") { $1.monitoring = try HostPort.parse($0.text) },
        SettingKey("state-dir", accepts: "a directory path", example: "/var/lib/meshca") {
            $1.stateDirectory = try $0.nonEmpty()
        },
        SettingKey("init-if-missing", accepts: "true or false (also yes/no, 1/0)", example: "true") {
            $1.initIfMissing = try $0.boolean()
        },
        SettingKey("ledger", accepts: "a postgres:// URL without a password (leave it out for SQLite in the state directory)",
            example: "postgres://meshca@db.example:5432/meshca?sslmode=verify-full") {
            guard case .postgres(let url, _) = try? LedgerLocation.parse($0.text) else {
                throw SettingProblem("it is not a postgres:// or postgresql:// URL")
            }
            $1.ledgerURL = url
        },
        SettingKey("ledger-password-file", accepts: "the path of a readable file holding the PostgreSQL password", example: "/etc/meshca/ledger-password") {
            $1.ledgerPasswordFile = try $0.readableFile()
        },
        SettingKey("trust-domain", accepts: "a lowercase DNS-style name", example: "cluster.local") {
            $1.trustDomain = try TrustDomain($0.text).name
        },
        SettingKey("dns-name", list: true, accepts: "DNS names or IPv4 addresses", example: "meshca.example,localhost") {
            $1.dnsNames = try $0.list(checking: DaemonConfiguration.dnsNameProblem)
        },
        SettingKey("default-ttl", accepts: "a duration up to max-ttl, such as 90s, 30m, 24h or 7d", example: "24h") {
            $1.defaultTTL = try HumanDuration.parse($0.text)
        },
        SettingKey("max-ttl", accepts: "a duration from 1s to 365d, such as 24h, 7d or 90d", example: "90d") {
            $1.maxTTL = try HumanDuration.parse($0.text)
            guard $1.maxTTL <= DaemonConfiguration.maxTTLCeiling else { throw SettingProblem("it is longer than 365d") }
        },
        SettingKey("serving-cert-ttl", accepts: "a duration such as 24h or 7d", example: "7d") {
            $1.servingCertificateTTL = try HumanDuration.parse($0.text)
        },
        SettingKey("auth-failure-limit", accepts: "COUNT/s, COUNT/m or COUNT/h per network address, or off (also 0)", example: "60/m") {
            $1.authFailureLimit = try RateLimit.parseValue($0.text)
        },
        SettingKey("rate-limit", accepts: "COUNT/s, COUNT/m or COUNT/h per identity, or off (also 0)", example: "100/m") {
            $1.rateLimit = try RateLimit.parseValue($0.text)
        },
        SettingKey("retry-window", accepts: "a duration up to 1h, such as 5m, or off (also 0)", example: "5m") {
            let text = $0.text.trimmingCharacters(in: .whitespaces).lowercased()
            if text == "off" || text == "0" { return $1.retryWindow = .zero }
            $1.retryWindow = try HumanDuration.parse(text)
            guard $1.retryWindow <= .seconds(3600) else { throw SettingProblem("it is longer than 1h") }
        },
        SettingKey(
            "trusted-node-accounts", list: true,
            accepts: "NAMESPACE/SERVICE-ACCOUNT pairs, comma-separated, or none (also off)", example: "istio-system/ztunnel"
        ) {
            let text = $0.text.trimmingCharacters(in: .whitespaces).lowercased()
            if text == "none" || text == "off" { return $1.trustedNodeAccounts = [] }
            $1.trustedNodeAccounts = try $0.list(checking: DaemonConfiguration.nodeAccountProblem)
        },
        SettingKey(
            "allow-dns-sans", list: true,
            accepts: "NAMESPACE/SERVICE-ACCOUNT=PATTERN items, comma-separated, where PATTERN is a DNS name or *. before one (one more label), or none (also off)",
            example: "istio-system/istiod=istiod.istio-system.svc"
        ) {
            let text = $0.text.trimmingCharacters(in: .whitespaces).lowercased()
            if text == "none" || text == "off" { return $1.allowDNSSANs = DNSSANPolicy() }
            let items = try $0.nonEmptyItems()
            do {
                $1.allowDNSSANs = try DNSSANPolicy(parsing: items)
            } catch let problem as DNSSANPolicy.PolicyProblem {
                throw SettingProblem(problem.why)
            }
        },
        SettingKey("jwt-keys", accepts: "the path of a readable JWKS file", example: "/etc/meshca/jwks.json") {
            $1.jwtKeysFile = try $0.readableFile()
        },
        SettingKey("jwks-url", accepts: "an https:// (or http://) URL of a JWKS document or an OIDC discovery document", example: "https://kubernetes.default.svc/openid/v1/jwks") {
            let text = try $0.nonEmpty().trimmingCharacters(in: .whitespaces)
            guard let url = URL(string: text), ["https", "http"].contains(url.scheme?.lowercased() ?? ""), url.host != nil else {
                throw SettingProblem("it is not an http(s) URL with a host")
            }
            $1.jwksURL = text
        },
        SettingKey("jwks-ca-file", accepts: "the path of a readable PEM file of CA certificates", example: "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt") {
            $1.jwksCAFile = try $0.readableFile()
        },
        SettingKey("jwks-token-file", accepts: "the path of a readable file holding a bearer token", example: "/var/run/secrets/kubernetes.io/serviceaccount/token") {
            $1.jwksTokenFile = try $0.readableFile()
        },
        SettingKey("jwks-refresh", accepts: "a duration from 10s to 24h, such as 5m or 1h", example: "5m") {
            $1.jwksRefresh = try HumanDuration.parse($0.text)
            guard $1.jwksRefresh >= .seconds(10) else { throw SettingProblem("it is shorter than 10s") }
            guard $1.jwksRefresh <= .seconds(86_400) else { throw SettingProblem("it is longer than 24h") }
        },
        SettingKey("jwt-issuer", accepts: "the token issuer, non-empty", example: "https://kubernetes.default.svc") {
            $1.jwtIssuer = try $0.nonEmpty()
        },
        SettingKey("jwt-audience", list: true, accepts: "one or more audiences", example: "istio-ca") {
            $1.jwtAudiences = try $0.list(checking: { _ in nil })
        },
        SettingKey("jwt-max-lifetime", accepts: "a duration such as 1h, 12h or 48h", example: "48h") {
            $1.jwtMaxLifetime = try HumanDuration.parse($0.text)
        },
        SettingKey("handshake-timeout", accepts: "a duration from 1s, such as 5s or 10s", example: "10s") {
            $1.handshakeTimeout = try HumanDuration.parse($0.text)
        },
        SettingKey("idle-timeout", accepts: "a duration from 1s, such as 1m or 5m", example: "5m") {
            $1.idleTimeout = try HumanDuration.parse($0.text)
        },
        SettingKey("max-connections", accepts: "a whole number of connections per listener, at least 1, or auto", example: "1000") {
            let text = $0.text.trimmingCharacters(in: .whitespaces).lowercased()
            if text == "auto" { return $1.maxConnections = nil }
            guard text.allSatisfy(\.isASCII), let count = Int(text) else { throw SettingProblem("it is not a whole number") }
            guard count >= 1 else { throw SettingProblem("it is below 1") }
            $1.maxConnections = count
        },
        SettingKey("state-poll-interval", accepts: "a duration from 1s to 1h, such as 1s or 10s", example: "1s") {
            $1.statePollInterval = try HumanDuration.parse($0.text)
            guard $1.statePollInterval <= .seconds(3600) else { throw SettingProblem("it is longer than 1h") }
        },
        SettingKey("log-level", accepts: "trace, debug, info, notice, warning, error or critical", example: "info") {
            guard let level = Logger.Level(rawValue: $0.text.trimmingCharacters(in: .whitespaces).lowercased()) else {
                throw SettingProblem("it is not a log level")
            }
            $1.logLevel = level
        },
        SettingKey("log-format", accepts: "text or json (one JSON object per line)", example: "json") {
            guard let format = LogFormat(rawValue: $0.text.trimmingCharacters(in: .whitespaces).lowercased()) else {
                throw SettingProblem("it is not a log format")
            }
            $1.logFormat = format
        },
    ]

    private static let hostPort = "HOST:PORT or [IPv6]:PORT, port 0-65535"
}

extension DaemonConfiguration {
    /// The problems of keys that are fine alone and not together (a default-ttl above max-ttl, JWT settings without
    /// keys); keys whose own value failed (`failed`) are not checked again.
    static func crossKeyProblems(
        _ configuration: DaemonConfiguration, reader: SettingsReader<DaemonConfiguration>, failed: Set<String>
    ) -> [String] {
        var problems: [String] = []
        if failed.isDisjoint(with: ["default-ttl", "max-ttl"]), configuration.defaultTTL > configuration.maxTTL {
            let setting = reader.setting("default-ttl", default: "24h")!
            let maxSource = reader.settings["max-ttl"]?.origin ?? "default"
            let maxText = HumanDuration.format(configuration.maxTTL)
            let why = "it is longer than max-ttl (\(maxSource)) = \"\(maxText)\"; lower default-ttl or raise max-ttl"
            problems.append(setting.problem(why, example: maxText))
        }
        if configuration.jwtIssuer != nil, configuration.jwtKeysFile == nil, configuration.jwksURL == nil, failed.isDisjoint(with: ["jwt-keys", "jwks-url"]),
            let setting = reader.settings["jwt-issuer"]
        {
            problems.append(
                setting.problem(
                    "it is set but neither jwt-keys nor jwks-url is, and only tokens verified with those keys are checked; set one of them too"
                ))
        }
        if configuration.jwtKeysFile != nil, configuration.jwksURL != nil, let setting = reader.settings["jwks-url"] {
            problems.append(setting.problem("jwt-keys is set too; give the keys one way: a file (jwt-keys) or a URL (jwks-url)"))
        }
        for key in ["jwks-ca-file", "jwks-token-file", "jwks-refresh"] where configuration.jwksURL == nil && !failed.contains("jwks-url") {
            if let setting = reader.settings[key] { problems.append(setting.problem("it applies to jwks-url, which is not set; set jwks-url too")) }
        }
        return problems
    }
}
