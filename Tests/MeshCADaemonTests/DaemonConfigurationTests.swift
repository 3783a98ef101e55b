import Foundation
import Logging
import MeshCACore
import MeshCADaemon
import MeshCATestSupport
import Testing

@Suite("Daemon configuration: flags over environment over file over defaults, every problem at once")
struct DaemonConfigurationTests {
    typealias HostPort = DaemonConfiguration.HostPort
    typealias RateLimit = DaemonConfiguration.RateLimit

    /// Loads with a config file holding `yaml`, when given, in a fresh directory.
    func load(flags: [String: String] = [:], environment: [String: String] = [:], yaml: String? = nil) throws
        -> DaemonConfiguration
    {
        let dir = try TemporaryDirectory("config")
        defer { dir.remove() }
        if let yaml { try dir.write("meshca.yaml", yaml) }
        return try DaemonConfiguration.load(
            flags: flags, environment: environment, configFile: yaml.map { _ in dir.file("meshca.yaml") })
    }

    /// The problems reported for a load that must fail.
    func problems(flags: [String: String] = [:], environment: [String: String] = [:], yaml: String? = nil) throws
        -> [String]
    {
        do {
            _ = try load(flags: flags, environment: environment, yaml: yaml)
        } catch let error as ConfigurationError {
            return error.problems
        }
        Issue.record("the configuration loaded, but problems were expected")
        return []
    }

    @Test("With nothing set, the defaults are safe: loopback, 24h of 90d, 100/m, 60 failed authentications/m, no JWT, info")
    func defaults() throws {
        let config = try load()
        #expect(config.listen == HostPort(host: "127.0.0.1", port: 15012))
        #expect(config.monitoring == HostPort(host: "127.0.0.1", port: 15014))
        #expect(config.stateDirectory == nil)
        #expect(config.trustDomain == "cluster.local")
        #expect(config.dnsNames.first == "localhost")
        #expect(config.defaultTTL == .seconds(86_400) && config.maxTTL == .seconds(90 * 86_400))
        #expect(config.servingCertificateTTL == .seconds(7 * 86_400))
        #expect(config.rateLimit == RateLimit(count: 100, per: .seconds(60)))
        #expect(config.authFailureLimit == RateLimit(count: 60, per: .seconds(60)))
        #expect(config.jwtKeysFile == nil && config.jwtIssuer == nil && config.jwtAudiences == ["istio-ca"])
        #expect(config.logLevel == .info)
        #expect(!config.initIfMissing)
        #expect(config.trustedNodeAccounts.isEmpty && config.allowDNSSANs.isEmpty)
        #expect(config.ledger == .stateDirectory)
        #expect(DaemonConfiguration.keys.count == 30 && DaemonConfiguration.keys.contains("serving-cert-ttl"))
        #expect(DaemonConfiguration.keys.contains("state-poll-interval") && config.statePollInterval == .seconds(1))
    }

    @Test(
        "A flag beats the environment, which beats the file, which beats the default",
        arguments: [
            (true, true, true, 10), (false, true, true, 20), (false, false, true, 30), (false, false, false, 90),
        ]
    )
    func precedence(flag: Bool, environment: Bool, file: Bool, days: Int64) throws {
        let config = try load(
            flags: flag ? ["max-ttl": "10d"] : [:],
            environment: environment ? ["MESHCA_MAX_TTL": "20d"] : [:],
            yaml: file ? "max-ttl: 30d\n" : nil
        )
        #expect(config.maxTTL == .seconds(days * 86_400))
    }

    @Test("init-if-missing is a boolean from the flag, MESHCA_INIT_IF_MISSING or the file; anything else is a problem")
    func initIfMissing() throws {
        #expect(try load(flags: ["init-if-missing": "true"]).initIfMissing)
        #expect(try load(environment: ["MESHCA_INIT_IF_MISSING": "yes"]).initIfMissing)
        #expect(try load(yaml: "init-if-missing: true\n").initIfMissing)
        #expect(try !load(environment: ["MESHCA_INIT_IF_MISSING": "false"], yaml: "init-if-missing: true\n").initIfMissing)
        let found = try problems(yaml: "init-if-missing: sometimes\n")
        #expect(found.count == 1)
        #expect(found.first?.contains("init-if-missing (config file ") == true, "\(found)")
        #expect(found.first?.contains("\"sometimes\": it is not true or false. Accepted: true or false") == true, "\(found)")
    }

    @Test("ledger takes a postgres:// URL from the flag, MESHCA_LEDGER or the file; anything else names the rule")
    func ledger() throws {
        let url = "postgres://meshca@db.example:5432/meshca?sslmode=verify-full"
        #expect(try load(flags: ["ledger": url]).ledger == .postgres(url: url, passwordFile: nil))
        #expect(try load(environment: ["MESHCA_LEDGER": url]).ledger == .postgres(url: url, passwordFile: nil))
        let dir = try TemporaryDirectory("ledger-password")
        defer { dir.remove() }
        try dir.write("password", "secret\n")
        let withFile = try load(yaml: "ledger: \(url)\nledger-password-file: \(dir.file("password"))\n")
        #expect(withFile.ledger == .postgres(url: url, passwordFile: dir.file("password")))
        #expect(withFile.ledger.isShared)
        let found = try problems(flags: ["ledger": "/var/lib/meshca/ledger.db"])
        #expect(found.count == 1)
        #expect(found.first?.contains("\"/var/lib/meshca/ledger.db\": it is not a postgres:// or postgresql:// URL") == true, "\(found)")
    }

    @Test("trusted-node-accounts takes ns/sa items from the flag, MESHCA_TRUSTED_NODE_ACCOUNTS or a YAML list, and warns at start")
    func trustedNodeAccounts() throws {
        #expect(try load(flags: ["trusted-node-accounts": "istio-system/ztunnel, kube-system/ztunnel"]).trustedNodeAccounts == ["istio-system/ztunnel", "kube-system/ztunnel"])
        #expect(try load(environment: ["MESHCA_TRUSTED_NODE_ACCOUNTS": "istio-system/ztunnel"]).trustedNodeAccounts == ["istio-system/ztunnel"])
        let config = try load(yaml: "trusted-node-accounts: [istio-system/ztunnel]\n")
        #expect(config.trustedNodeAccounts == ["istio-system/ztunnel"])
        #expect(config.warnings.contains { $0.contains("cannot check, as istiod does, that such a pod runs on the caller's node") })
        #expect(try load(flags: ["trusted-node-accounts": "none"]).trustedNodeAccounts.isEmpty)
        let found = try problems(flags: ["trusted-node-accounts": "ztunnel"])
        #expect(found == [
            "trusted-node-accounts (flag --trusted-node-accounts) = \"ztunnel\": \"ztunnel\": it is not NAMESPACE/SERVICE-ACCOUNT. "
                + "Accepted: NAMESPACE/SERVICE-ACCOUNT pairs, comma-separated, or none (also off). Example: --trusted-node-accounts istio-system/ztunnel"
        ])
        #expect(try problems(environment: ["MESHCA_TRUSTED_NODE_ACCOUNTS": "istio-system/Ztunnel"]).first?.contains("uppercase \"Z\"") == true)
    }

    @Test("allow-dns-sans takes ns/sa=pattern items from the flag, MESHCA_ALLOW_DNS_SANS or a YAML list")
    func allowDNSSANs() throws {
        let flag = try load(flags: ["allow-dns-sans": "istio-system/istiod=istiod.istio-system.svc,default/web=*.example.internal"])
        let identity = try SPIFFEID(parsing: "spiffe://cluster.local/ns/istio-system/sa/istiod")
        let local = try TrustDomain("cluster.local")
        let other = try TrustDomain("other.domain")
        #expect(flag.allowDNSSANs.patterns(for: identity, in: local).map(\.text) == ["istiod.istio-system.svc"])
        #expect(flag.allowDNSSANs.patterns(for: identity, in: other).isEmpty)
        #expect(try load(environment: ["MESHCA_ALLOW_DNS_SANS": "default/web=web.svc"]).allowDNSSANs.items == ["default/web=web.svc"])
        let file = try load(yaml: "allow-dns-sans:\n  - istio-system/istiod=istiod.istio-system.svc\n  - istio-system/istiod=istiod-remote.istio-system.svc\n")
        #expect(file.allowDNSSANs.items == ["istio-system/istiod=istiod.istio-system.svc", "istio-system/istiod=istiod-remote.istio-system.svc"])
        let found = try problems(flags: ["allow-dns-sans": "default/web=*.svc"])
        #expect(found.count == 1)
        #expect(found.first?.hasPrefix("allow-dns-sans (flag --allow-dns-sans) = \"default/web=*.svc\": \"default/web=*.svc\": a wildcard needs at least two labels") == true, "\(found)")
    }

    @Test("MESHCA_CONFIG names the file when --config is not given")
    func configFromEnvironment() throws {
        let dir = try TemporaryDirectory("config")
        defer { dir.remove() }
        try dir.write("c.yaml", "log-level: debug\n")
        let config = try DaemonConfiguration.load(
            flags: [:], environment: ["MESHCA_CONFIG": dir.file("c.yaml")], configFile: nil)
        #expect(config.logLevel == .debug)
    }

    @Test("Bad values from flags, environment and file are reported together, each with key, source and value")
    func manyProblems() throws {
        let found = try problems(
            flags: ["max-ttl": "400d", "listen": "localhost:99999"],
            environment: ["MESHCA_LOG_LEVEL": "loud", "MESHCA_TRUST_DOMAIN": "Cluster.Local"],
            yaml: "rate-limit: 5/fortnight\ndefault-ttl: soon\njwt-keys: /nonexistent/jwks.json\n"
        )
        let expected: [(key: String, source: String, value: String)] = [
            ("max-ttl", "flag --max-ttl", "\"400d\""),
            ("listen", "flag --listen", "\"localhost:99999\""),
            ("log-level", "environment MESHCA_LOG_LEVEL", "\"loud\""),
            ("trust-domain", "environment MESHCA_TRUST_DOMAIN", "\"Cluster.Local\""),
            ("rate-limit", "config file ", "\"5/fortnight\""),
            ("default-ttl", "config file ", "\"soon\""),
            ("jwt-keys", "config file ", "\"/nonexistent/jwks.json\""),
        ]
        #expect(found.count == expected.count, "\(found)")
        for (key, source, value) in expected {
            let problem = found.first { $0.hasPrefix(key + " (") }
            #expect(problem?.contains(source) == true, "\(key): \(problem ?? "missing")")
            #expect(problem?.contains(value) == true, "\(key): \(problem ?? "missing")")
            #expect(problem?.contains("Accepted: ") == true && problem?.contains("Example: ") == true)
        }
        #expect(found.contains { $0.contains("MESHCA_LOG_LEVEL=info") })  // the example is written for the source
        let description = ConfigurationError(problems: found).description
        #expect(description.split(separator: "\n").count == found.count + 1)
    }

    @Test("A default TTL longer than the maximum names both keys")
    func defaultAboveMax() throws {
        let found = try problems(flags: ["max-ttl": "1h"])
        #expect(found.count == 1)
        #expect(found.first?.hasPrefix("default-ttl (default)") == true)
        #expect(found.first?.contains("max-ttl (flag --max-ttl) = \"1h\"") == true)
        #expect(found.first?.hasSuffix("Example: --default-ttl 1h") == true)
    }

    @Test("An unknown key in the file is named, with a guess and the known keys")
    func unknownKey() throws {
        let found = try problems(yaml: "max_ttl: 90d\n")
        #expect(found.count == 1)
        #expect(found.first?.contains("unknown key \"max_ttl\"") == true)
        #expect(found.first?.contains("Did you mean max-ttl?") == true)
        #expect(found.first?.contains("Known keys: listen, monitoring, state-dir") == true)
    }

    @Test("A file that is not YAML, or is missing, is reported with its path")
    func badFile() throws {
        let syntax = try problems(yaml: "listen: [127.0.0.1:1\nmax-ttl: 1d\n")
        #expect(syntax.count == 1)
        #expect(syntax.first?.contains("meshca.yaml (from --config) is not valid YAML") == true)
        let error = #expect(throws: ConfigurationError.self) {
            try DaemonConfiguration.load(flags: [:], environment: [:], configFile: "/nonexistent/meshca.yaml")
        }
        #expect(
            error?.problems == [
                "config file /nonexistent/meshca.yaml (from --config) does not exist. "
                    + "Fix the path, or drop --config to use only flags, environment and defaults."
            ])
    }

    @Test("dns-name is a YAML list in the file and comma-separated in the environment")
    func dnsNames() throws {
        let file = try load(yaml: "dns-name:\n  - meshca.istio-system.svc\n  - 10.0.0.7\n")
        #expect(file.dnsNames == ["meshca.istio-system.svc", "10.0.0.7"])
        let environment = try load(environment: ["MESHCA_DNS_NAME": "a.example, b.example,"])
        #expect(environment.dnsNames == ["a.example", "b.example"])
        let bad = try problems(flags: ["dns-name": "ok.example,bad_name"])
        #expect(bad.first?.contains("\"bad_name\"") == true)
        let badIP = try problems(flags: ["dns-name": "10.0.0.300"])
        #expect(badIP.first?.contains("\"10.0.0.300\": it is not a valid IPv4 address") == true)
    }

    @Test(
        "rate-limit accepts COUNT/s, COUNT/m, COUNT/h and off",
        arguments: [
            ("10/s", RateLimit(count: 10, per: .seconds(1))), ("100/m", RateLimit(count: 100, per: .seconds(60))),
            ("3/h", RateLimit(count: 3, per: .seconds(3600))), ("off", nil), ("0", nil),
        ]
    )
    func rateLimits(text: String, expected: RateLimit?) throws {
        #expect(try RateLimit.parse(text) == expected)
        #expect(try load(flags: ["rate-limit": text]).rateLimit == expected)
    }

    @Test("rate-limit refuses other units and missing counts", arguments: ["10/d", "ten/m", "10", "/m", "-1/s"])
    func badRateLimits(text: String) throws {
        #expect(throws: ConfigurationError.self) { try RateLimit.parse(text) }
        let found = try problems(environment: ["MESHCA_RATE_LIMIT": text])
        #expect(found.first?.hasPrefix("rate-limit (environment MESHCA_RATE_LIMIT) = \"\(text)\"") == true)
    }

    @Test("HOST:PORT parses IPv4, bracketed IPv6 and port 0, and refuses the rest")
    func hostPorts() throws {
        #expect(try HostPort(parsing: "0.0.0.0:0") == HostPort(host: "0.0.0.0", port: 0))
        #expect(try HostPort(parsing: "[::1]:15012") == HostPort(host: "::1", port: 15012))
        #expect(HostPort(host: "::1", port: 15012).description == "[::1]:15012")
        for bad in ["::1:80", "localhost", "host:65536", ":80", "[::1]80", "host:http"] {
            #expect(throws: ConfigurationError.self, "\(bad)") { try HostPort(parsing: bad) }
        }
    }

    @Test("jwt-keys must be a readable file, and jwt-issuer needs it")
    func jwtKeys() throws {
        let dir = try TemporaryDirectory("jwt")
        defer { dir.remove() }
        try dir.write("jwks.json", "{\"keys\": []}")
        let config = try load(flags: [
            "jwt-keys": dir.file("jwks.json"), "jwt-issuer": "https://kubernetes.default.svc",
        ])
        #expect(config.jwtKeysFile == dir.file("jwks.json"))
        #expect(try problems(flags: ["jwt-keys": dir.path]).first?.contains("it is a directory") == true)
        #expect(
            try problems(flags: ["jwt-issuer": "https://issuer"]).first?.hasPrefix("jwt-issuer (flag --jwt-issuer)")
                == true)
    }
}
