import Foundation
import MeshCACore
import X509

/// An in-memory CA for core tests, with a fixed "now" so that every time is explicit.
struct TestCA {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)  // 2027-01-15T08:00:00Z
    static let trustDomain = try! TrustDomain("cluster.local")

    let key: Certificate.PrivateKey
    let root: Certificate
    let authority: CertificateAuthority

    init(keyType: KeyType = .ecP256, rootTTL: Duration = .seconds(10 * 365 * 86_400), trustDomain: TrustDomain = TestCA.trustDomain) throws {
        key = try keyType.generate()
        root = try SelfSignedRoot.make(trustDomain: trustDomain, key: key, ttl: rootTTL, now: Self.now)
        authority = CertificateAuthority(
            trustDomain: trustDomain,
            signer: try SigningIdentity(certificate: root, privateKey: key, bundle: [root])
        )
    }

    static func identity(_ sa: String = "was", ns: String = "default") throws -> SPIFFEID {
        try SPIFFEID(trustDomain: trustDomain, namespace: ns, serviceAccount: sa)
    }

    /// A CSR for `identity` with a fresh key of `keyType`.
    static func csr(for identity: SPIFFEID, keyType: KeyType = .ecP256) throws -> String {
        try WorkloadCSR.pem(WorkloadCSR.make(for: identity, key: keyType.generate()))
    }

    /// A CSR with arbitrary extensions, signed by a fresh P-256 key.
    static func csr(extensions: Certificate.Extensions, key: Certificate.PrivateKey? = nil) throws -> String {
        let key = try key ?? KeyType.ecP256.generate()
        let request = try CertificateSigningRequest(
            version: .v1,
            subject: DistinguishedName(),
            privateKey: key,
            attributes: CertificateSigningRequest.Attributes([try .init(ExtensionRequest(extensions: extensions))]),
            signatureAlgorithm: .ecdsaWithSHA256
        )
        return try WorkloadCSR.pem(request)
    }

    func issue(_ identity: SPIFFEID, ttl: Duration? = nil, at time: Date = TestCA.now) throws -> Issuance {
        try authority.issue(IssuanceRequest(csrPEM: Self.csr(for: identity), identity: identity, requestedTTL: ttl), at: time)
    }
}

/// Runs `body` and returns the ``IssuanceError`` it throws (or fails the test when it throws nothing).
func issuanceError(_ body: () throws -> Void) -> IssuanceError? {
    do {
        try body()
        return nil
    } catch let error as IssuanceError {
        return error
    } catch {
        return IssuanceError(.signingFailed, "unexpected error type: \(error)")
    }
}
