import Foundation
import Logging
import MeshCACore
import MeshCAIO
import MeshCASettings
import MeshCAPlatform

/// Everything `meshca serve` can be told, with safe defaults: loopback only, 24h certificates, a rate limit.
///
/// Build one with ``load(flags:environment:configFile:)``, which reads flags, then `MESHCA_*` environment
/// variables, then a YAML file, and validates every value before anything binds a port. `init()` gives
/// the defaults, for tests and for callers that set fields themselves (they are not re-validated).
///
/// | Key | Field | Default |
/// |---|---|---|
/// | `listen` | ``listen`` | `127.0.0.1:15012` |
/// | `monitoring` | ``monitoring`` | `127.0.0.1:15014` |
/// | `state-dir` | ``stateDirectory`` | unset: the standard state directory |
/// | `init-if-missing` | ``initIfMissing`` | `false`: refuse to start without a CA |
/// | `ledger` | ``ledgerURL`` | unset: SQLite, `ledger.db` in the state directory |
/// | `ledger-password-file` | ``ledgerPasswordFile`` | unset: `PGPASSWORD`, else `~/.pgpass` |
/// | `trust-domain` | ``trustDomain`` | `cluster.local` |
/// | `dns-name` | ``dnsNames`` | `localhost` and this machine's host name |
/// | `default-ttl` | ``defaultTTL`` | `24h` |
/// | `max-ttl` | ``maxTTL`` | `90d` |
/// | `serving-cert-ttl` | ``servingCertificateTTL`` | `7d` |
/// | `rate-limit` | ``rateLimit`` | `100/m` per identity |
/// | `auth-failure-limit` | ``authFailureLimit`` | `60/m` per network address |
/// | `retry-window` | ``retryWindow`` | `5m` |
/// | `trusted-node-accounts` | ``trustedNodeAccounts`` | none: `ImpersonatedIdentity` is refused |
/// | `allow-dns-sans` | ``allowDNSSANs`` | none: DNS SANs are refused |
/// | `jwt-keys` | ``jwtKeysFile`` | unset: no JWT authentication |
/// | `jwks-url` | ``jwksURL`` | unset: keys only from `jwt-keys` |
/// | `jwks-ca-file` | ``jwksCAFile`` | unset: the system's roots |
/// | `jwks-token-file` | ``jwksTokenFile`` | unset: no `Authorization` header |
/// | `jwks-refresh` | ``jwksRefresh`` | `5m` |
/// | `jwt-issuer` | ``jwtIssuer`` | unset |
/// | `jwt-audience` | ``jwtAudiences`` | `istio-ca` |
/// | `jwt-max-lifetime` | ``jwtMaxLifetime`` | `48h` |
/// | `handshake-timeout` | ``handshakeTimeout`` | `10s` |
/// | `idle-timeout` | ``idleTimeout`` | `5m` |
/// | `max-connections` | ``maxConnections`` | `auto`: from the open-file limit, at most 4096 |
/// | `state-poll-interval` | ``statePollInterval`` | `1s` |
/// | `log-level` | ``logLevel`` | `info` |
/// | `log-format` | ``logFormat`` | `text` |
public struct DaemonConfiguration: Sendable {
    /// Where the gRPC CA service (Istio's `IstioCertificateService`) listens. Key `listen`.
    public var listen = HostPort(host: "127.0.0.1", port: 15012)
    /// Where the plain-HTTP `/metrics`, `/healthz` and `/readyz` listen. Key `monitoring`.
    public var monitoring = HostPort(host: "127.0.0.1", port: 15014)
    /// The CA's state directory; `nil` means the standard resolution. Key `state-dir`.
    public var stateDirectory: String? = nil
    /// Whether to create a CA (a new root) when the state directory holds none. Off by default, so a lost or wrongly
    /// mounted volume stops the daemon instead of silently replacing the root every workload trusts. Key
    /// `init-if-missing`.
    public var initIfMissing = false
    /// The PostgreSQL database the ledger is in (`postgres://USER@HOST:PORT/DATABASE?sslmode=...`), shared by any
    /// number of replicas; `nil` keeps it in the state directory (SQLite). Key `ledger`.
    public var ledgerURL: String? = nil
    /// The file holding the PostgreSQL ledger's password. Key `ledger-password-file`.
    public var ledgerPasswordFile: String? = nil

    /// Where the ledger is, from ``ledgerURL`` and ``ledgerPasswordFile``.
    public var ledger: LedgerLocation {
        ledgerURL.map { .postgres(url: $0, passwordFile: ledgerPasswordFile) } ?? .stateDirectory
    }
    /// The trust domain for a CA created by `init-if-missing`; ignored once a CA exists. Key `trust-domain`.
    public var trustDomain = "cluster.local"
    /// DNS names for the daemon's serving certificate; IPv4 literals become IP SANs. Key `dns-name`.
    public var dnsNames = DaemonConfiguration.defaultDNSNames()
    /// The lifetime of a workload certificate when the request names none. Key `default-ttl`.
    public var defaultTTL: Duration = .seconds(24 * 3600)
    /// The longest lifetime granted; longer requests are refused. At most 365 days. Key `max-ttl`.
    public var maxTTL: Duration = .seconds(90 * 86_400)
    /// The lifetime of the daemon's own TLS serving certificate. Key `serving-cert-ttl`.
    public var servingCertificateTTL: Duration = .seconds(7 * 86_400)
    /// Issuances allowed per identity; `nil` turns limiting off. Key `rate-limit`.
    public var rateLimit: RateLimit? = RateLimit(count: 100, per: .seconds(60))
    /// Failed authentications allowed per network address (IP) before its requests are refused unread;
    /// `nil` turns the limit off. Key `auth-failure-limit`.
    public var authFailureLimit: RateLimit? = RateLimit(count: 60, per: .seconds(60))
    /// How long after an issuance a request repeated with the same credential and the same CSR public key gets
    /// the same certificate back (see ``RepeatedRequests``); `.zero` turns this off. Key `retry-window`.
    public var retryWindow: Duration = RepeatedRequests.defaultWindow
    /// The service accounts, `namespace/name`, whose callers may ask for a certificate on behalf of another workload
    /// with `ImpersonatedIdentity`, as istiod's `CA_TRUSTED_NODE_ACCOUNTS` (Istio's ambient mode: ztunnel,
    /// `istio-system/ztunnel`). Empty: every such request is refused. Key `trusted-node-accounts`.
    public var trustedNodeAccounts: [String] = []
    /// Which service accounts may ask for which DNS names as DNS SANs besides their SPIFFE ID (`ns/sa=pattern`
    /// items); empty: none may. Key `allow-dns-sans`.
    public var allowDNSSANs = DNSSANPolicy()
    /// A JWKS file with the keys that sign Kubernetes service-account tokens; `nil` disables JWT
    /// authentication. A path, never the keys themselves. Key `jwt-keys`.
    public var jwtKeysFile: String? = nil
    /// Where to fetch the keys that sign service-account tokens instead: the API server's `/openid/v1/jwks`, or an
    /// OIDC discovery document (`.../.well-known/openid-configuration`) naming its `jwks_uri`. Key `jwks-url`.
    public var jwksURL: String? = nil
    /// The roots that verify `jwks-url`'s server (in a pod, the service account's `ca.crt`); `nil`: the system's.
    /// Key `jwks-ca-file`.
    public var jwksCAFile: String? = nil
    /// A file holding a bearer token for `jwks-url` (in a pod, the service account's token), read at every fetch.
    /// Key `jwks-token-file`.
    public var jwksTokenFile: String? = nil
    /// How often the keys are fetched again from `jwks-url` (also, at most every 15 s, for a token naming an
    /// unknown key id). Key `jwks-refresh`.
    public var jwksRefresh: Duration = .seconds(300)
    /// The `iss` that tokens must carry; `nil` accepts any issuer the keys verify. Key `jwt-issuer`.
    public var jwtIssuer: String? = nil
    /// The `aud` values of which a token must carry at least one. Key `jwt-audience`.
    public var jwtAudiences = ["istio-ca"]
    /// The longest lifetime a token may have (`exp - iat`, or `exp - now` without `iat`); longer-lived
    /// tokens are refused. Key `jwt-max-lifetime`.
    public var jwtMaxLifetime: Duration = .seconds(48 * 3600)
    /// How long a new connection has to finish its TLS handshake (gRPC) or send its first request (monitoring)
    /// before it is closed. Key `handshake-timeout`.
    public var handshakeTimeout: Duration = ConnectionLimits.defaultHandshakeTimeout
    /// How long a connection may stay without a request before it is closed. Key `idle-timeout`.
    public var idleTimeout: Duration = ConnectionLimits.defaultIdleTimeout
    /// How often the daemon looks for CA files changed by another meshca process (a root rotation step). A root
    /// rotation's pick-up margin (`meshca root prepare --pick-up-margin`, 5s by default) should be at least five
    /// times this. Key `state-poll-interval`.
    public var statePollInterval: Duration = .seconds(1)
    /// The most connections open at once on each listener; `nil` derives it from the open-file limit
    /// (``ConnectionLimits/automaticMaxConnections(openFileLimit:listeners:)``). Key `max-connections`.
    public var maxConnections: Int? = nil
    /// The least severe log level written. Key `log-level`.
    public var logLevel: Logger.Level = .info
    /// How log lines are written to stderr: swift-log's text lines, or one JSON object per line. Key `log-format`.
    public var logFormat: LogFormat = .text

    /// The defaults listed above.
    public init() {}

    /// Settings that are valid but weaken what the daemon checks, one sentence each, for the log at start.
    public var warnings: [String] {
        var warnings: [String] = []
        if jwtKeysFile != nil || jwksURL != nil, jwtIssuer == nil {
            warnings.append(
                "\(jwksURL != nil ? "jwks-url" : "jwt-keys") is set without jwt-issuer, so any token those keys verify is accepted, whatever its issuer. "
                    + "Set jwt-issuer to the API server's issuer (kubectl get --raw /.well-known/openid-configuration)."
            )
        }
        if !trustedNodeAccounts.isEmpty {
            warnings.append(
                "trusted-node-accounts is set (\(trustedNodeAccounts.joined(separator: ", "))): those callers get certificates for any "
                    + "workload identity of the trust domain they name. meshca cannot check, as istiod does, that such a pod runs on "
                    + "the caller's node; keep these service accounts to the node proxy (ztunnel) and restrict who can create pods "
                    + "or tokens for them.")
        }
        return warnings
    }

    /// `localhost` and this machine's host name (lowercased, when it is a valid DNS name).
    public static func defaultDNSNames() -> [String] {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return ["localhost"] }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self).lowercased()
        guard name != "localhost", Self.dnsNameProblem(name) == nil else { return ["localhost"] }
        return ["localhost", name]
    }

    /// Why `account` is not `NAMESPACE/SERVICE-ACCOUNT` with Kubernetes-valid names, or `nil` when it is.
    static func nodeAccountProblem(_ account: String) -> String? {
        let parts = account.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return "it is not NAMESPACE/SERVICE-ACCOUNT" }
        for (part, kind) in zip(parts, [KubernetesName.Kind.namespace, .serviceAccount]) {
            do {
                try KubernetesName.validate(String(part), as: kind)
            } catch let error as IssuanceError {
                return error.message.hasSuffix(".") ? String(error.message.dropLast()) : error.message
            } catch {
                return "\(error)"
            }
        }
        return nil
    }

    /// Why `name` is not usable as a DNS SAN or IPv4 literal, or `nil` when it is.
    static func dnsNameProblem(_ name: String) -> String? {
        if name.isEmpty { return "it is empty" }
        if name.utf8.count > 253 { return "it is longer than 253 characters" }
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.")
        if let bad = name.first(where: { !allowed.contains($0) }) { return "\"\(bad)\" is not allowed in a DNS name" }
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        if labels.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isNumber) }) {
            // All digits: meant as an IPv4 address, which becomes an IP SAN, so it must be a valid one.
            let valid = labels.count == 4 && labels.allSatisfy { (Int($0) ?? 256) <= 255 }
            return valid ? nil : "it is not a valid IPv4 address"
        }
        for label in labels {
            if label.isEmpty { return "it has an empty label" }
            if label.count > 63 { return "the label \"\(label)\" is longer than 63 characters" }
            if label.hasPrefix("-") || label.hasSuffix("-") {
                return "the label \"\(label)\" starts or ends with \"-\""
            }
        }
        return nil
    }
}

extension DaemonConfiguration {
    /// A `HOST:PORT` address (MeshCACore's ``MeshCACore/HostPort``), for `listen` and `monitoring`.
    public typealias HostPort = MeshCACore.HostPort

    /// How many certificates one identity may be issued per period, e.g. 100 per minute.
    public struct RateLimit: Hashable, Sendable, CustomStringConvertible {
        /// Issuances allowed per period; at least 1.
        public var count: Int
        /// The period: one second, minute or hour.
        public var per: Duration

        /// Creates a limit from its parts, unchecked.
        public init(count: Int, per: Duration) {
            self.count = count
            self.per = per
        }

        /// Parses `N/s`, `N/m` or `N/h`; `off` or `0` mean no limit and return `nil`. Throws a
        /// ``ConfigurationError`` whose one problem names the text, the rule and an example.
        public static func parse(_ text: String) throws -> RateLimit? {
            do {
                return try parseValue(text)
            } catch {
                throw ConfigurationError(problems: [
                    "\"\(text)\" is not a rate limit: \(error.why). Write COUNT/s, COUNT/m or COUNT/h, or off, e.g. 100/m."
                ])
            }
        }

        /// The parser behind ``parse(_:)``, for the loader, which adds the key and source itself.
        static func parseValue(_ text: String) throws(SettingProblem) -> RateLimit? {
            let text = text.trimmingCharacters(in: .whitespaces).lowercased()
            if text == "off" || text == "0" { return nil }
            let parts = text.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 2 else { throw SettingProblem("it is not COUNT/UNIT") }
            guard parts[0].allSatisfy(\.isASCII), let count = Int(parts[0]), count >= 0 else {
                throw SettingProblem("the count \"\(parts[0])\" is not a whole number")
            }
            let period: Duration
            switch parts[1] {
            case "s": period = .seconds(1)
            case "m": period = .seconds(60)
            case "h": period = .seconds(3600)
            default: throw SettingProblem("the unit \"\(parts[1])\" is not s, m or h")
            }
            return count == 0 ? nil : RateLimit(count: count, per: period)
        }

        /// `N/s`, `N/m` or `N/h`.
        public var description: String {
            let unit =
                per == .seconds(1)
                ? "s" : per == .seconds(60) ? "m" : per == .seconds(3600) ? "h" : HumanDuration.format(per)
            return "\(count)/\(unit)"
        }
    }
}

extension HostPort {
    /// Parses `HOST:PORT` or `[IPv6]:PORT` (port 0 allowed), throwing a ``ConfigurationError`` whose one
    /// problem names the text, the rule it broke and an example.
    public init(parsing text: String) throws {
        do {
            self = try Self.parse(text)
        } catch {
            throw ConfigurationError(problems: [
                "\"\(text)\" is not a HOST:PORT address: \(error.why). Example: 127.0.0.1:15012 or [::1]:15012."
            ])
        }
    }
}
