import Foundation
import MeshCACore
import MeshCAIO
import X509

/// A CA made at run time for tests: a root (and, when asked, an intermediate under it that signs), issuing
/// workload certificates at whatever time a test names. Every key is generated here; nothing is committed.
public struct TestPKI: Sendable {
    /// A fixed moment tests can issue "now" at, so every time in them is explicit: 2027-01-15T08:00:00Z.
    public static let fixedNow = Date(timeIntervalSince1970: 1_800_000_000)

    public let trustDomain: TrustDomain
    /// The root's key.
    public let rootKey: Certificate.PrivateKey
    public let root: Certificate
    /// The intermediate that signs, when the PKI has one.
    public let intermediate: Certificate?
    /// The CA that issues: the intermediate when there is one, else the root.
    public let authority: CertificateAuthority

    /// A root of `keyType` valid for `rootTTL` from `createdAt` (three days ago by default, so certificates can be
    /// issued in the recent past), signing directly, or through an intermediate when `intermediate` is true.
    public init(
        trustDomain: String = "cluster.local", keyType: KeyType = .ecP256, createdAt: Date = Date().addingTimeInterval(-3 * 86_400),
        rootTTL: Duration = .seconds(10 * 365 * 86_400), intermediate: Bool = false
    ) throws {
        let trustDomain = try TrustDomain(trustDomain)
        self.trustDomain = trustDomain
        rootKey = try keyType.generate()
        root = try SelfSignedRoot.make(trustDomain: trustDomain, key: rootKey, ttl: rootTTL, now: createdAt)
        let rootCA = CertificateAuthority(
            trustDomain: trustDomain, signer: try SigningIdentity(certificate: root, privateKey: rootKey, bundle: [root]))
        if intermediate {
            let key = try KeyType.ecP256.generate()
            let certificate = try rootCA.issueIntermediate(
                publicKey: key.publicKey, commonName: "meshca test intermediate",
                ttl: .seconds(Int64(rootTTL.seconds / 2)), at: createdAt)
            self.intermediate = certificate
            authority = CertificateAuthority(
                trustDomain: trustDomain,
                signer: try SigningIdentity(certificate: certificate, privateKey: key, bundle: [root]))
        } else {
            self.intermediate = nil
            authority = rootCA
        }
    }

    /// `spiffe://<trust domain>/ns/<ns>/sa/<sa>`.
    public func identity(_ sa: String = "was", ns: String = "default") throws -> SPIFFEID {
        try SPIFFEID(trustDomain: trustDomain, namespace: ns, serviceAccount: sa)
    }

    /// A CSR for `identity` with `key`.
    public static func csr(for identity: SPIFFEID, key: Certificate.PrivateKey) throws -> String {
        try WorkloadCSR.pem(WorkloadCSR.make(for: identity, key: key))
    }

    /// A certificate for `sa` (namespace `ns`) issued at `at` for `ttl` (the policy's default when nil), and its key.
    public func issue(
        _ sa: String = "was", ns: String = "default", at: Date, ttl: Duration? = nil, keyType: KeyType = .ecP256
    ) throws -> (issuance: Issuance, key: Certificate.PrivateKey) {
        let identity = try self.identity(sa, ns: ns)
        let key = try keyType.generate()
        let issuance = try authority.issue(
            IssuanceRequest(csrPEM: Self.csr(for: identity, key: key), identity: identity, requestedTTL: ttl), at: at)
        return (issuance, key)
    }
}
