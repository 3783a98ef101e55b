import Foundation
import JWTKit
import MeshCACore
import MeshCAIO
import SwiftASN1
import X509

/// Verifies Kubernetes service-account tokens (`authorization: Bearer <jwt>`) offline, against public
/// keys from a file: PEM public keys or certificates, or a JWKS document (the API server's
/// `/openid/v1/jwks`).
///
/// Checks: signature by one of the keys, `iss` (when configured), `aud` containing one of the accepted
/// audiences (`istio-ca` by default), `exp` and `nbf` with one minute of clock skew, and a lifetime
/// (`exp - iat`, or `exp - now` without `iat`) of at most `maxLifetime`, so a stolen long-lived token is not
/// a standing credential. The identity comes
/// from the `kubernetes.io` claim (namespace and service account name) or from
/// `sub = system:serviceaccount:<ns>:<sa>`.
public struct JWTAuthenticator: Sendable {
    /// Where the verification keys come from.
    private enum Keys: Sendable {
        /// Loaded once from `jwt-keys`.
        case fixed(JWTKeyCollection)
        /// Fetched from `jwks-url`, refreshed periodically and for unknown key ids.
        case remote(RemoteJWTKeys)
    }
    private let keys: Keys
    private let issuer: String?
    private let audiences: [String]
    private let trustDomain: TrustDomain
    private let maxLifetime: Duration
    /// The default `maxLifetime` (`jwt-max-lifetime`): 48 hours. Kubernetes projected tokens stay under it.
    public static let defaultMaxLifetime: Duration = .seconds(48 * 3600)
    /// Tolerated clock difference for `exp` and `nbf`.
    static let skew: TimeInterval = 60

    /// Loads the keys in `keysFile`. Throws ``DaemonError`` naming the file when nothing usable is in it.
    public init(
        keysFile: String, issuer: String?, audiences: [String], trustDomain: TrustDomain,
        maxLifetime: Duration = JWTAuthenticator.defaultMaxLifetime
    ) async throws {
        guard let data = FileManager.default.contents(atPath: keysFile) else {
            throw DaemonError(.unreadableFile, "Cannot read the JWT keys file \(keysFile) (jwt-keys). Check the path and its permissions.")
        }
        let text = String(decoding: data, as: UTF8.self)
        let keys = JWTKeyCollection()
        do {
            if text.trimmingCharacters(in: .whitespacesAndNewlines).hasPrefix("{") {
                try await keys.add(jwksJSON: text)
            } else {
                let documents = try PEMDocument.parseMultiple(pemString: text)
                guard !documents.isEmpty else { throw DaemonError(.unreadableFile, "no PEM block") }
                for document in documents {
                    try await Self.add(document, to: keys)
                }
            }
        } catch {
            throw DaemonError(
                .unreadableFile,
                "The JWT keys file \(keysFile) holds no usable key (\(error)). Give PEM public keys or certificates (ECDSA P-256/P-384 or RSA), "
                    + "or the JWKS document from the API server: kubectl get --raw /openid/v1/jwks > \(keysFile)"
            )
        }
        self.keys = .fixed(keys)
        self.issuer = issuer
        self.audiences = audiences
        self.trustDomain = trustDomain
        self.maxLifetime = maxLifetime
    }

    /// Verifies with the keys `remote` fetches (`jwks-url`).
    public init(
        remote: RemoteJWTKeys, issuer: String?, audiences: [String], trustDomain: TrustDomain,
        maxLifetime: Duration = JWTAuthenticator.defaultMaxLifetime
    ) {
        self.keys = .remote(remote)
        self.issuer = issuer
        self.audiences = audiences
        self.trustDomain = trustDomain
        self.maxLifetime = maxLifetime
    }

    /// The key collection to verify `jwt` with: for remote keys, fetched again first when the token names a key id
    /// the set does not hold (at most every 15 s).
    private func collection(for jwt: String) async throws -> JWTKeyCollection {
        switch keys {
        case .fixed(let collection):
            return collection
        case .remote(let remote):
            // No key set yet (the fetch at start failed), or one without the token's key id: fetch again, at most
            // once per 15 s whatever the tokens say.
            let keyID = Self.keyID(of: jwt)
            if let current = remote.current {
                if let keyID, !current.keyIDs.contains(keyID) { _ = await remote.refreshForUnknownKey(keyID) }
            } else {
                _ = await remote.refreshForUnknownKey(keyID ?? "")
            }
            guard let current = remote.current else {
                throw AuthenticationFailure(
                    method: "jwt",
                    "The JWT keys have not been fetched from \(remote.source.url) yet (\(remote.lastError ?? "no fetch finished")); "
                        + "service-account tokens cannot be checked. See the daemon's log and jwks-url.")
            }
            return current.keys
        }
    }

    /// The `kid` in a compact JWT's header, if it has one (read, not verified, by JWTKit's own parser).
    static func keyID(of jwt: String) -> String? {
        (try? DefaultJWTParser().parse(Array(jwt.utf8), as: ServiceAccountClaims.self))?.header.kid
    }

    private static func add(_ document: PEMDocument, to keys: JWTKeyCollection) async throws {
        let publicKey: Certificate.PublicKey
        switch document.discriminator {
        case "CERTIFICATE": publicKey = try Certificate(derEncoded: document.derBytes).publicKey
        case "PUBLIC KEY": publicKey = try Certificate.PublicKey(derEncoded: document.derBytes)
        default: throw DaemonError(.unreadableFile, "a \(document.discriminator) block is not a public key")
        }
        let pem = try publicKey.serializeAsPEM().pemString
        switch KeyType.of(publicKey) {
        case "ec-p256": await keys.add(ecdsa: try ES256PublicKey(pem: pem))
        case "ec-p384": await keys.add(ecdsa: try ES384PublicKey(pem: pem))
        case .some(let type) where type.hasPrefix("rsa-"): await keys.add(rsa: try Insecure.RSA.PublicKey(pem: pem), digestAlgorithm: .sha256)
        default: throw DaemonError(.unreadableFile, "only ECDSA P-256/P-384 and RSA keys are supported")
        }
    }

    /// The caller a JWT stands for, as of `now`.
    public func authenticate(_ jwt: String, at now: Date) async throws -> AuthenticatedCaller {
        func fail(_ message: String) -> AuthenticationFailure { AuthenticationFailure(method: "jwt", message) }
        let claims: ServiceAccountClaims
        let keys = try await collection(for: jwt)
        do {
            claims = try await keys.verify(jwt, as: ServiceAccountClaims.self, iteratingKeys: true)
        } catch {
            throw fail("The service-account token's signature does not verify with the configured JWT keys (\(Self.reason(error))). \(checkKeys)")
        }
        if let issuer, claims.iss?.value != issuer {
            throw fail("The service-account token's issuer is \(claims.iss?.value ?? "missing"), expected \(issuer) (--jwt-issuer).")
        }
        guard let aud = claims.aud?.value, aud.contains(where: audiences.contains) else {
            throw fail("The service-account token's audience \(claims.aud?.value ?? []) does not include \(audiences.joined(separator: " or ")). Mount a projected token with audience \(audiences[0]).")
        }
        guard let exp = claims.exp?.value else { throw fail("The service-account token has no expiry (exp); only bound, expiring tokens are accepted.") }
        guard now.timeIntervalSince(exp) <= Self.skew else {
            throw fail("The service-account token expired at \(exp.formatted(.iso8601)). The kubelet refreshes projected tokens; check that the workload re-reads it.")
        }
        if let nbf = claims.nbf?.value, nbf.timeIntervalSince(now) > Self.skew {
            throw fail("The service-account token is not valid before \(nbf.formatted(.iso8601)); check the clocks.")
        }
        let lifetime = exp.timeIntervalSince(claims.iat?.value ?? now)
        if lifetime > TimeInterval(maxLifetime.components.seconds) {
            let measured = claims.iat == nil ? "exp - now, as it has no iat" : "exp - iat"
            throw fail(
                "The service-account token's lifetime is \(HumanDuration.format(.seconds(Int64(lifetime)))) (\(measured)), "
                    + "longer than the \(HumanDuration.format(maxLifetime)) this CA accepts (--jwt-max-lifetime). Mount a "
                    + "projected token with a shorter expirationSeconds, or raise jwt-max-lifetime.")
        }
        guard let (namespace, serviceAccount) = claims.workload else {
            throw AuthenticationFailure(
                method: "jwt", "The token names no service account (no kubernetes.io claim and sub is not system:serviceaccount:<ns>:<sa>).",
                noIdentity: true)
        }
        let identity: SPIFFEID
        do {
            identity = try SPIFFEID(trustDomain: trustDomain, namespace: namespace, serviceAccount: serviceAccount)
        } catch let error as IssuanceError {
            throw fail(error.message)
        }
        return AuthenticatedCaller(
            identity: identity,
            requester: Requester(name: "jwt:system:serviceaccount:\(namespace):\(serviceAccount)", authMethod: "jwt")
        )
    }

    /// What to check when a signature does not verify.
    private var checkKeys: String {
        switch keys {
        case .fixed: "Check --jwt-keys against the cluster's /openid/v1/jwks."
        case .remote(let remote): "The keys were fetched from \(remote.source.url) (jwks-url); is the token from that cluster?"
        }
    }

    private static func reason(_ error: any Error) -> String {
        if let jwt = error as? JWTError { return jwt.reason ?? "\(jwt.errorType)" }
        return "\(error)"
    }
}

/// The claims of a Kubernetes service-account token that meshca reads.
struct ServiceAccountClaims: JWTPayload {
    struct KubernetesClaim: Codable, Sendable {
        struct Named: Codable, Sendable { var name: String }
        var namespace: String?
        var serviceaccount: Named?
    }

    var iss: IssuerClaim?
    var sub: SubjectClaim?
    var aud: AudienceClaim?
    var exp: ExpirationClaim?
    var nbf: NotBeforeClaim?
    var iat: IssuedAtClaim?
    var kubernetes: KubernetesClaim?

    enum CodingKeys: String, CodingKey {
        case iss, sub, aud, exp, nbf, iat
        case kubernetes = "kubernetes.io"
    }

    /// Time and audience are checked by ``JWTAuthenticator`` with its clock and skew, not here.
    func verify(using algorithm: some JWTAlgorithm) async throws {}

    var workload: (String, String)? {
        if let namespace = kubernetes?.namespace, let name = kubernetes?.serviceaccount?.name { return (namespace, name) }
        let parts = sub?.value.split(separator: ":", omittingEmptySubsequences: false) ?? []
        guard parts.count == 4, parts[0] == "system", parts[1] == "serviceaccount" else { return nil }
        return (String(parts[2]), String(parts[3]))
    }
}
