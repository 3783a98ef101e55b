import Crypto
import Foundation
import GRPCCore
import MeshCACore
@testable import MeshCADaemon
import MeshCATestSupport
import Testing

@Suite("Service-account JWTs: lifetime limit")
struct JWTAuthenticatorTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    let key = P256.Signing.PrivateKey()

    func authenticator(maxLifetime: Duration? = nil) async throws -> (JWTAuthenticator, TemporaryDirectory) {
        let dir = try TemporaryDirectory("jwt")
        try dir.write("keys.pem", key.publicKey.pemRepresentation)
        let trustDomain = try TrustDomain("cluster.local")
        let authenticator =
            if let maxLifetime {
                try await JWTAuthenticator(
                    keysFile: dir.file("keys.pem"), issuer: "https://kubernetes.default.svc", audiences: ["istio-ca"],
                    trustDomain: trustDomain, maxLifetime: maxLifetime)
            } else {
                try await JWTAuthenticator(
                    keysFile: dir.file("keys.pem"), issuer: "https://kubernetes.default.svc", audiences: ["istio-ca"],
                    trustDomain: trustDomain)
            }
        return (authenticator, dir)
    }

    /// An ES256 token for default/was issued at `iat` (seconds from `now`; nil leaves the claim out) that
    /// expires at `exp`.
    func token(iat: Int?, exp: Int) throws -> String {
        var claims: [String: Any] = [
            "iss": "https://kubernetes.default.svc", "aud": ["istio-ca"], "sub": "system:serviceaccount:default:was",
            "exp": Int(Self.now.timeIntervalSince1970) + exp,
        ]
        if let iat { claims["iat"] = Int(Self.now.timeIntervalSince1970) + iat }
        return try JWTText.es256(claims, key: key)
    }

    func failure(_ authenticator: JWTAuthenticator, _ jwt: String) async -> AuthenticationFailure? {
        do {
            _ = try await authenticator.authenticate(jwt, at: Self.now)
            return nil
        } catch {
            return error as? AuthenticationFailure
        }
    }

    @Test("Tokens up to 48h long are accepted by default: a projected 12h token, and a 48h one without iat")
    func withinLimit() async throws {
        let (jwt, dir) = try await authenticator()
        defer { dir.remove() }
        let caller = try await jwt.authenticate(try token(iat: -600, exp: 12 * 3600 - 600), at: Self.now)
        #expect(caller.identity.uri == "spiffe://cluster.local/ns/default/sa/was")
        _ = try await jwt.authenticate(try token(iat: -3600, exp: 47 * 3600), at: Self.now)
        _ = try await jwt.authenticate(try token(iat: nil, exp: 48 * 3600), at: Self.now)
    }

    @Test("A token living longer than 48h (exp - iat) is UNAUTHENTICATED, naming its lifetime, the limit and the setting")
    func tooLongWithIssuedAt() async throws {
        let (jwt, dir) = try await authenticator()
        defer { dir.remove() }
        // Issued a year ago and valid for another hour: still unexpired, but a standing credential.
        let failure = try #require(await failure(jwt, try token(iat: -365 * 86_400, exp: 3600)))
        #expect(failure.method == "jwt")
        #expect(failure.message.contains("lifetime is 365d1h (exp - iat)"))
        #expect(failure.message.contains("longer than the 2d this CA accepts (--jwt-max-lifetime)"))
        #expect(rpcError(for: failure).code == .unauthenticated)
    }

    @Test("Without iat, the lifetime is exp - now")
    func tooLongWithoutIssuedAt() async throws {
        let (jwt, dir) = try await authenticator()
        defer { dir.remove() }
        let failure = try #require(await failure(jwt, try token(iat: nil, exp: 72 * 3600)))
        #expect(failure.message.contains("lifetime is 3d (exp - now, as it has no iat)"))
    }

    @Test("--jwt-max-lifetime sets the limit")
    func configuredLimit() async throws {
        let (jwt, dir) = try await authenticator(maxLifetime: .seconds(3600))
        defer { dir.remove() }
        _ = try await jwt.authenticate(try token(iat: -1800, exp: 1800), at: Self.now)
        let failure = try #require(await failure(jwt, try token(iat: -1800, exp: 2700)))
        #expect(failure.message.contains("lifetime is 1h15m (exp - iat), longer than the 1h this CA accepts"))
    }
}

@Suite("jwt-max-lifetime and the jwt-issuer warning in the configuration")
struct JWTConfigurationTests {
    @Test("jwt-max-lifetime defaults to 48h and is read from flags, the environment and the file")
    func maxLifetime() throws {
        let dir = try TemporaryDirectory("jwtconfig")
        defer { dir.remove() }
        #expect(DaemonConfiguration().jwtMaxLifetime == .seconds(48 * 3600))
        #expect(try DaemonConfiguration.load(flags: ["jwt-max-lifetime": "12h"], environment: [:], configFile: nil).jwtMaxLifetime == .seconds(12 * 3600))
        let env = ["MESHCA_JWT_MAX_LIFETIME": "1d"]
        #expect(try DaemonConfiguration.load(flags: [:], environment: env, configFile: nil).jwtMaxLifetime == .seconds(86_400))
        try dir.write("meshca.yaml", "jwt-max-lifetime: 90m\n")
        #expect(try DaemonConfiguration.load(flags: [:], environment: [:], configFile: dir.file("meshca.yaml")).jwtMaxLifetime == .seconds(5400))
        do {
            _ = try DaemonConfiguration.load(flags: ["jwt-max-lifetime": "forever"], environment: [:], configFile: nil)
            Issue.record("a bad jwt-max-lifetime was accepted")
        } catch let error as ConfigurationError {
            #expect(error.problems.first?.hasPrefix("jwt-max-lifetime (flag --jwt-max-lifetime) = \"forever\"") == true)
            #expect(error.problems.first?.contains("Example: --jwt-max-lifetime 48h") == true)
        }
    }

    @Test("jwt-keys without jwt-issuer is a warning, with the fix")
    func issuerWarning() throws {
        var config = DaemonConfiguration()
        #expect(config.warnings.isEmpty)
        config.jwtKeysFile = "/etc/meshca/jwks.json"
        #expect(config.warnings.count == 1)
        #expect(config.warnings.first?.hasPrefix("jwt-keys is set without jwt-issuer") == true)
        config.jwtIssuer = "https://kubernetes.default.svc"
        #expect(config.warnings.isEmpty)
    }
}
