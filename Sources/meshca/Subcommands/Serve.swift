import ArgumentParser
import Foundation
import Logging
import MeshCADaemon

/// `meshca serve`: the CSR-signing daemon (Istio's CA API over gRPC/TLS).
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the CA daemon: Istio's IstioCertificateService/CreateCertificate over gRPC/TLS.",
        discussion: """
            Every setting can also come from the environment (MESHCA_<KEY>, e.g. MESHCA_MAX_TTL) or a YAML file \
            (--config); flags win over the environment, which wins over the file. On a state directory without a CA it \
            refuses to start (create one with `meshca init`, or restore a backup) unless --init-if-missing is given. \
            Stops gracefully on SIGTERM/SIGINT.
            """
    )

    @Option(help: ArgumentHelp("A YAML file with settings (keys as the flag names, e.g. max-ttl: 7d).", valueName: "file"))
    var config: String?

    @Option(help: ArgumentHelp("gRPC/TLS listen address (default 127.0.0.1:15012).", valueName: "host:port"))
    var listen: String?

    @Option(help: ArgumentHelp("Metrics and health listen address (default 127.0.0.1:15014).", valueName: "host:port"))
    var monitoring: String?

    @Option(help: ArgumentHelp("The CA's state directory.", valueName: "dir"))
    var stateDir: String?

    @Flag(help: "Create a CA (a new root) when the state directory holds none, instead of refusing to start.")
    var initIfMissing = false

    @Option(help: ArgumentHelp("Trust domain of a CA created by --init-if-missing (default cluster.local).", valueName: "name"))
    var trustDomain: String?

    @Option(help: ArgumentHelp("A DNS name (or IPv4 address) for the serving certificate; repeatable (default: localhost and the host name).", valueName: "name"))
    var dnsName: [String] = []

    @Option(help: ArgumentHelp("Lifetime when the request asks for none (default 24h).", valueName: "duration"))
    var defaultTTL: String?

    @Option(help: ArgumentHelp("Longest lifetime granted; longer requests are refused (default 90d).", valueName: "duration"))
    var maxTTL: String?

    @Option(help: ArgumentHelp("Lifetime of the daemon's own TLS certificate, renewed at half-life (default 7d).", valueName: "duration"))
    var servingCertTTL: String?

    @Option(help: ArgumentHelp("Requests per identity: N/s, N/m or N/h, or off (default 100/m).", valueName: "rate"))
    var rateLimit: String?

    @Option(help: ArgumentHelp("Failed authentications per client address before it is refused unread: N/s, N/m or N/h, or off (default 60/m).", valueName: "rate"))
    var authFailureLimit: String?

    @Option(help: ArgumentHelp("How long a request repeated with the same credential and CSR key gets the certificate already issued, or off (default 5m).", valueName: "duration"))
    var retryWindow: String?

    @Option(help: ArgumentHelp("Service accounts (ns/sa, comma-separated) that may ask on behalf of a pod with ImpersonatedIdentity, as istiod's CA_TRUSTED_NODE_ACCOUNTS: istio-system/ztunnel for ambient mode (default none).", valueName: "ns/sa,..."))
    var trustedNodeAccounts: String?

    @Option(
        name: .customLong("allow-dns-sans"),
        help: ArgumentHelp("Who may ask for DNS SANs: ns/sa=pattern items, comma-separated; a pattern is a DNS name or *. before one (default none).", valueName: "ns/sa=pattern,..."))
    var allowDNSSans: String?

    @Option(help: ArgumentHelp("Public keys for Kubernetes service-account JWTs: PEM keys/certificates or a JWKS file.", valueName: "file"))
    var jwtKeys: String?

    @Option(
        name: .customLong("jwks-url"),
        help: ArgumentHelp(
            "Fetch the service-account JWT keys from this URL and keep them fresh: the API server's /openid/v1/jwks, or an OIDC discovery URL.",
            valueName: "url"))
    var jwksURL: String?

    @Option(name: .customLong("jwks-ca-file"), help: ArgumentHelp("PEM roots that verify --jwks-url's server (default: the system's).", valueName: "file"))
    var jwksCAFile: String?

    @Option(name: .customLong("jwks-token-file"), help: ArgumentHelp("A file whose token is sent to --jwks-url as Authorization: Bearer (re-read at every fetch).", valueName: "file"))
    var jwksTokenFile: String?

    @Option(name: .customLong("jwks-refresh"), help: ArgumentHelp("How often --jwks-url is fetched again (default 5m).", valueName: "duration"))
    var jwksRefresh: String?

    @Option(help: ArgumentHelp("Required `iss` of service-account JWTs.", valueName: "issuer"))
    var jwtIssuer: String?

    @Option(help: ArgumentHelp("Accepted `aud` of service-account JWTs, comma-separated (default istio-ca).", valueName: "aud"))
    var jwtAudience: String?

    @Option(help: ArgumentHelp("Longest lifetime (exp - iat) of an accepted service-account JWT (default 48h).", valueName: "duration"))
    var jwtMaxLifetime: String?

    @Option(help: ArgumentHelp("Time a new connection has to finish its TLS handshake (monitoring: send a request) (default 10s).", valueName: "duration"))
    var handshakeTimeout: String?

    @Option(help: ArgumentHelp("Time a connection may stay without a request before it is closed (default 5m).", valueName: "duration"))
    var idleTimeout: String?

    @Option(help: ArgumentHelp("Most connections open at once on each listener, or auto: from the open-file limit, at most 4096 (default auto).", valueName: "count"))
    var maxConnections: String?

    @Option(help: ArgumentHelp("How often to look for CA files changed by another meshca process, such as a root rotation step (default 1s).", valueName: "duration"))
    var statePollInterval: String?

    @Option(help: ArgumentHelp("trace, debug, info, notice, warning, error or critical (default info).", valueName: "level"))
    var logLevel: String?

    @Option(help: ArgumentHelp("text, or json: one object per line with time, level, message and the event's fields (default text).", valueName: "format"))
    var logFormat: String?

    func run() async throws {
        var flags: [String: String] = [:]
        flags["listen"] = listen
        flags["monitoring"] = monitoring
        flags["state-dir"] = stateDir
        flags["init-if-missing"] = initIfMissing ? "true" : nil
        flags["trust-domain"] = trustDomain
        flags["dns-name"] = dnsName.isEmpty ? nil : dnsName.joined(separator: ",")
        flags["default-ttl"] = defaultTTL
        flags["max-ttl"] = maxTTL
        flags["serving-cert-ttl"] = servingCertTTL
        flags["rate-limit"] = rateLimit
        flags["auth-failure-limit"] = authFailureLimit
        flags["retry-window"] = retryWindow
        flags["trusted-node-accounts"] = trustedNodeAccounts
        flags["allow-dns-sans"] = allowDNSSans
        flags["jwt-keys"] = jwtKeys
        flags["jwks-url"] = jwksURL
        flags["jwks-ca-file"] = jwksCAFile
        flags["jwks-token-file"] = jwksTokenFile
        flags["jwks-refresh"] = jwksRefresh
        flags["jwt-issuer"] = jwtIssuer
        flags["jwt-audience"] = jwtAudience
        flags["jwt-max-lifetime"] = jwtMaxLifetime
        flags["handshake-timeout"] = handshakeTimeout
        flags["idle-timeout"] = idleTimeout
        flags["max-connections"] = maxConnections
        flags["state-poll-interval"] = statePollInterval
        flags["log-level"] = logLevel
        flags["log-format"] = logFormat
        let environment = ProcessInfo.processInfo.environment
        let configuration: DaemonConfiguration
        do {
            configuration = try DaemonConfiguration.load(flags: flags, environment: environment, configFile: config ?? environment["MESHCA_CONFIG"])
        } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        }
        configuration.bootstrapLogging()
        let logger = Logger(label: "meshca")
        let daemon = Daemon(configuration: configuration, logger: logger) { grpc, monitoring in
            print("meshca serve: listening on \(grpc) (gRPC, TLS); metrics and health on http://\(monitoring)")
            fflush(nil)
        }
        try await daemon.run()
    }
}
