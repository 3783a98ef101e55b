import Crypto
import Foundation
import GRPCCore
import Logging
import MeshCACore
@testable import MeshCADaemon
import MeshCAIO
import MeshCATestSupport
import MeshCATransport
import SwiftASN1
import Testing
import X509

/// `jwks-url`: the daemon's JWT keys fetched over HTTPS from a server that rotates them, as the API server's
/// `/openid/v1/jwks` does. The server is `interop/jwks_server.py` (Python's http.server with TLS), its certificate
/// from a test CA given as `jwks-ca-file`; the unknown-key rate limit runs on a test clock.
@Suite("JWT keys from a URL: fetched, refreshed for an unknown key id at most every 15 s, kept when the server fails")
struct RemoteJWTKeysTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    /// A P-256 signing key with its key id, and its JWK.
    struct SigningKey {
        let kid: String
        let key = P256.Signing.PrivateKey()

        var jwk: [String: String] {
            let point = key.publicKey.x963Representation  // 0x04 || X || Y
            return [
                "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
                "x": JWTText.base64url(point.dropFirst().prefix(32)), "y": JWTText.base64url(point.suffix(32)),
            ]
        }

        /// A service-account token for default/was, valid for an hour from `at`, naming this key's id.
        func token(at: Date = RemoteJWTKeysTests.now) throws -> String {
            let claims: [String: Any] = [
                "iss": "https://kubernetes.default.svc", "aud": ["istio-ca"], "sub": "system:serviceaccount:default:was",
                "iat": Int(at.timeIntervalSince1970), "exp": Int(at.timeIntervalSince1970) + 3600,
            ]
            return try JWTText.es256(claims, key: key, kid: kid)
        }
    }

    /// The HTTPS server, its files and the CA its certificate chains to.
    final class Server: Sendable {
        let directory: TemporaryDirectory
        let process: BackgroundProcess
        let port: Int

        init(token: String? = nil) async throws {
            directory = try TemporaryDirectory("jwks")
            let pki = try TestPKI()
            let key = try KeyType.ecP256.generate()
            let leaf = try pki.authority.issueServingCertificate(
                publicKey: key.publicKey, dnsNames: ["localhost"], ipAddresses: [[127, 0, 0, 1]], ttl: .seconds(3600), at: Date())
            try directory.write("chain.pem", leaf.pem + pki.root.pem)
            try directory.write("key.pem", try key.serializeAsPEM().pemString + "\n")
            try directory.write("ca.pem", pki.root.pem)
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("interop/jwks_server.py").path
            process = try BackgroundProcess(
                "/usr/bin/env", ["python3", script, directory.path, directory.file("chain.pem"), directory.file("key.pem")] + (token.map { [$0] } ?? []))
            let line = try await process.waitForLine(containing: "PORT ", timeout: .seconds(60))
            port = Int(line.split(separator: " ").last ?? "") ?? 0
        }

        var jwksURL: String { "https://127.0.0.1:\(port)/openid/v1/jwks" }
        var caFile: String { directory.file("ca.pem") }

        /// Serves `keys` at /openid/v1/jwks from now on.
        func serve(_ keys: [SigningKey]) throws {
            let document = try JSONSerialization.data(withJSONObject: ["keys": keys.map(\.jwk)])
            try directory.write("_openid_v1_jwks", String(decoding: document, as: UTF8.self))
        }

        /// How many requests for `path` the server answered. The server logs each one to a file before answering
        /// it, so every request whose answer the test has seen is counted.
        func requests(_ path: String) -> Int {
            let log = (try? String(contentsOfFile: directory.file("requests.log"), encoding: .utf8)) ?? ""
            return log.split(separator: "\n").filter { $0.hasPrefix("GET \(path) ") }.count
        }

        func stop() async {
            _ = try? await process.stop()
            directory.remove()
        }
    }

    func authenticator(_ keys: RemoteJWTKeys) throws -> JWTAuthenticator {
        JWTAuthenticator(remote: keys, issuer: "https://kubernetes.default.svc", audiences: ["istio-ca"], trustDomain: try TrustDomain("cluster.local"))
    }

    func verifies(_ authenticator: JWTAuthenticator, _ token: String) async -> Bool {
        (try? await authenticator.authenticate(token, at: Self.now)) != nil
    }

    @Test("A rotated key is fetched on its first token; made-up key ids cost one fetch per 15 s of the daemon's clock")
    func rotation() async throws {
        let server = try await Server()
        let a = SigningKey(kid: "a")
        let b = SigningKey(kid: "b")
        try server.serve([a])
        let clock = TestClock(start: Self.now)
        let keys = try RemoteJWTKeys(
            source: .init(url: server.jwksURL, caFile: server.caFile), time: ServiceTime(clock: clock, now: { clock.date }),
            logger: Logger(label: "test"))
        #expect(await keys.refresh(), "\(keys.lastError ?? "")")
        #expect(keys.current?.keyIDs == ["a"])
        let jwt = try authenticator(keys)
        #expect(await verifies(jwt, try a.token()))

        // The cluster rotates its signing key: the first token signed with it makes the daemon fetch the keys again.
        try server.serve([b])
        #expect(await verifies(jwt, try b.token()))
        #expect(server.requests("/openid/v1/jwks") == 2)
        #expect(!(await verifies(jwt, try a.token())), "the old key is gone from the set")

        // Tokens naming key ids nobody published: no fetch within 15 s of the last one for an unknown key id...
        let forged = SigningKey(kid: "forged")
        #expect(!(await verifies(jwt, try forged.token())))
        #expect(!(await verifies(jwt, try SigningKey(kid: "forged-2").token())))
        #expect(server.requests("/openid/v1/jwks") == 2)
        // ... and one fetch once 15 s have passed.
        clock.advance(by: .seconds(16))
        #expect(!(await verifies(jwt, try forged.token())))
        #expect(server.requests("/openid/v1/jwks") == 3)
        #expect(await verifies(jwt, try b.token()))
        await server.stop()
    }

    @Test("A key server that never answers holds a request for 2 s of the daemon's clock, not for the fetch's 15 s")
    func unansweredFetch() async throws {
        // The TLS handshake of the fetch waits until its 15 s timeout (real time), like an API server that stopped
        // responding.
        let server = try UnansweredPort()
        let clock = TestClock(start: Self.now)
        let keys = try RemoteJWTKeys(
            source: .init(url: "https://127.0.0.1:\(server.port)/openid/v1/jwks"), time: ServiceTime(clock: clock, now: { clock.date }),
            logger: Logger(label: "test"))
        let jwt = try authenticator(keys)
        let token = try SigningKey(kid: "a").token()
        let verdict = Task { await verifies(jwt, token) }
        // The request waits on the clock (its fetch on the network): 2 s of the clock answer it.
        let patience = ContinuousClock.now + .seconds(30)
        while clock.sleepers == 0 && ContinuousClock.now < patience { await Task.yield() }
        #expect(clock.pendingDeadlines == [RemoteJWTKeys.requestWait])
        clock.advance(by: RemoteJWTKeys.requestWait)
        #expect(await verdict.value == false, "no keys: the token is refused")
        #expect(keys.current == nil)
        withExtendedLifetime(server) {}
    }

    @Test("When the server fails, the last good keys stay in use, the failure is counted and the keys' age grows")
    func serverDown() async throws {
        let server = try await Server()
        let a = SigningKey(kid: "a")
        try server.serve([a])
        let clock = TestClock(start: Self.now)
        let metrics = CAMetrics(now: { clock.date })
        let keys = try RemoteJWTKeys(
            source: .init(url: server.jwksURL, caFile: server.caFile, timeout: .seconds(1)),
            time: ServiceTime(clock: clock, now: { clock.date }), logger: Logger(label: "test"), metrics: metrics)
        #expect(await keys.refresh())
        #expect(metrics.exposition().contains("meshca_jwt_keys_refresh_failures_total 0"))
        await server.stop()
        clock.advance(by: .seconds(600))
        #expect(!(await keys.refresh()))
        #expect(keys.lastError?.contains("cannot fetch a JWKS document from \(server.jwksURL)") == true, "\(keys.lastError ?? "")")
        #expect(await verifies(try authenticator(keys), try a.token()), "the last good key set is still used")
        let exposition = metrics.exposition()
        #expect(exposition.contains("meshca_jwt_keys_refresh_failures_total 1"), "\(exposition)")
        #expect(exposition.contains("meshca_jwt_keys_age_seconds 600"), "\(exposition)")
    }

    @Test("A server that wants a bearer token gets the token file's contents; without it, the 401 is named with the fix")
    func bearerToken() async throws {
        let server = try await Server(token: "s3cret")
        try server.serve([SigningKey(kid: "a")])
        let without = try RemoteJWTKeys(source: .init(url: server.jwksURL, caFile: server.caFile), logger: Logger(label: "test"))
        #expect(!(await without.refresh()))
        #expect(without.lastError?.contains("answered 401 Unauthorized") == true, "\(without.lastError ?? "")")
        #expect(without.lastError?.contains("jwks-token-file") == true)
        // With no key set at all, a token is refused saying why.
        let refusal = await #expect(throws: AuthenticationFailure.self) { try await authenticator(without).authenticate(try SigningKey(kid: "a").token(), at: Self.now) }
        #expect(refusal?.message.contains("have not been fetched from \(server.jwksURL) yet") == true)

        // A token arriving while there is no key set makes the daemon try again (at most every 15 s): once the token
        // file is right, the next such token gets through without waiting for the periodic refresh.
        #expect(server.requests("/openid/v1/jwks") == 2, "the start fetch and the one for the token above")

        try server.directory.write("token", "s3cret\n")
        let with = try RemoteJWTKeys(
            source: .init(url: server.jwksURL, caFile: server.caFile, tokenFile: server.directory.file("token")), logger: Logger(label: "test"))
        #expect(await with.refresh(), "\(with.lastError ?? "")")
        await server.stop()
    }

    @Test("An OIDC discovery URL is followed to its jwks_uri; a server outside jwks-ca-file's roots is refused")
    func discoveryAndTrust() async throws {
        let server = try await Server()
        let a = SigningKey(kid: "a")
        try server.serve([a])
        try server.directory.write("_.well-known_openid-configuration", #"{"issuer":"https://kubernetes.default.svc","jwks_uri":"\#(server.jwksURL)"}"#)
        let keys = try RemoteJWTKeys(
            source: .init(url: "https://127.0.0.1:\(server.port)/.well-known/openid-configuration", caFile: server.caFile), logger: Logger(label: "test"))
        #expect(await keys.refresh(), "\(keys.lastError ?? "")")
        #expect(keys.current?.keyIDs == ["a"])
        #expect(server.requests("/.well-known/openid-configuration") == 1)

        // Another CA's roots: the TLS handshake fails and nothing is fetched.
        let other = try TemporaryDirectory("jwks-other")
        defer { other.remove() }
        try other.write("ca.pem", try TestPKI().root.pem)
        let untrusted = try RemoteJWTKeys(
            source: .init(url: server.jwksURL, caFile: other.file("ca.pem"), timeout: .seconds(1)), logger: Logger(label: "test"))
        #expect(!(await untrusted.refresh()))
        #expect(untrusted.current == nil)
        await server.stop()
    }

    @Test("meshca serve with jwks-url issues to a workload whose token is signed by the cluster's current key")
    func daemon() async throws {
        let server = try await Server()
        let a = SigningKey(kid: "a")
        try server.serve([a])
        let (daemon, _) = try await InProcessDaemon.start {
            $0.jwksURL = server.jwksURL
            $0.jwksCAFile = server.caFile
            $0.jwtIssuer = "https://kubernetes.default.svc"
        }
        let csr = try TestPKI.csr(for: try TestPKI.identity("was"))
        // A failure shows the daemon's warnings and errors (a JWKS fetch that failed or hung, for instance).
        try await daemon.log.explainingFailure {
            let chain = try await daemon.client().createCertificate(csrPEM: csr, ttl: nil, headers: ["authorization": "Bearer \(try a.token(at: Date()))"])
            let leaf = try Certificate(pemEncoded: try #require(chain.first))
            #expect(leaf.uriSANs == [try TestPKI.identity("was").uri])
            // The cluster rotates its key; the daemon follows on the first token signed with the new one.
            let b = SigningKey(kid: "b")
            try server.serve([b])
            _ = try await daemon.client().createCertificate(csrPEM: csr, ttl: nil, headers: ["authorization": "Bearer \(try b.token(at: Date()))"])
        }
        #expect(server.requests("/openid/v1/jwks") == 2)
        await daemon.stop()
        await server.stop()
    }

    @Test("jwks-url and its settings load from flags; conflicting or orphaned settings are named")
    func configuration() throws {
        let dir = try TemporaryDirectory("jwks-config")
        defer { dir.remove() }
        try dir.write("ca.pem", "x")
        let loaded = try DaemonConfiguration.load(
            flags: [
                "jwks-url": "https://kubernetes.default.svc/openid/v1/jwks", "jwks-ca-file": dir.file("ca.pem"), "jwks-refresh": "10m",
                "jwt-issuer": "https://kubernetes.default.svc",
            ], environment: [:], configFile: nil)
        #expect(loaded.jwksURL == "https://kubernetes.default.svc/openid/v1/jwks")
        #expect(loaded.jwksRefresh == .seconds(600))
        #expect(loaded.warnings.isEmpty)

        func problems(_ flags: [String: String]) -> [String] {
            do {
                _ = try DaemonConfiguration.load(flags: flags, environment: [:], configFile: nil)
                return []
            } catch let error as ConfigurationError {
                return error.problems
            } catch {
                return ["\(error)"]
            }
        }
        #expect(problems(["jwks-url": "kubernetes.default.svc"]).first?.contains("it is not an http(s) URL with a host") == true)
        #expect(problems(["jwks-url": "https://a.example/jwks", "jwt-keys": dir.file("ca.pem")]).first?.contains("give the keys one way") == true)
        #expect(problems(["jwks-ca-file": dir.file("ca.pem")]).first?.contains("it applies to jwks-url, which is not set") == true)
        #expect(problems(["jwks-url": "https://a.example/jwks", "jwks-refresh": "1s"]).first?.contains("shorter than 10s") == true)
    }
}
