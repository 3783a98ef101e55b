import Foundation
import MeshCACore
import MeshCAIO
import SwiftASN1
import X509

/// A CA made at run time for tests: a root (and, when asked, an intermediate under it that signs), issuing
/// workload certificates at whatever time a test names. Every key is generated here; nothing is committed.
public struct TestPKI: Sendable {
    /// A fixed moment tests can issue "now" at, so every time in them is explicit: 2027-01-15T08:00:00Z.
    public static let fixedNow = Date(timeIntervalSince1970: 1_800_000_000)

    public let trustDomain: TrustDomain
    /// The root (the last certificate of the signer's bundle when the PKI wraps a CA made elsewhere).
    public let root: Certificate
    /// The intermediate that signs, when the PKI has one.
    public let intermediate: Certificate?
    /// The CA that issues: the intermediate when there is one, else the root.
    public let authority: CertificateAuthority

    /// The signing certificate, its key and the roots: what a CRL is signed with, or a `cacerts` key is written from.
    public var signer: SigningIdentity { authority.signingIdentity }

    /// A root of `keyType` valid for `rootTTL` from `createdAt` (three days ago by default, so certificates can be
    /// issued in the recent past), with `commonName` when given, signing directly, or through an intermediate
    /// living `intermediateTTL` from `createdAt` when one is given.
    public init(
        trustDomain: String = "cluster.local", keyType: KeyType = .ecP256, createdAt: Date = Date().addingTimeInterval(-3 * 86_400),
        rootTTL: Duration = .seconds(10 * 365 * 86_400), commonName: String? = nil, intermediateTTL: Duration? = nil
    ) throws {
        let trustDomain = try TrustDomain(trustDomain)
        let rootKey = try keyType.generate()
        let root = try SelfSignedRoot.make(trustDomain: trustDomain, key: rootKey, ttl: rootTTL, now: createdAt, commonName: commonName)
        let rootCA = CertificateAuthority(
            trustDomain: trustDomain, signer: try SigningIdentity(certificate: root, privateKey: rootKey, bundle: [root]))
        guard let intermediateTTL else {
            self.init(trustDomain: trustDomain, root: root, intermediate: nil, authority: rootCA)
            return
        }
        let key = try KeyType.ecP256.generate()
        let intermediate = try rootCA.issueIntermediate(
            publicKey: key.publicKey, commonName: "meshca test intermediate", ttl: intermediateTTL, at: createdAt)
        self.init(
            trustDomain: trustDomain, signer: try SigningIdentity(certificate: intermediate, privateKey: key, bundle: [root]))
    }

    /// A PKI around a CA made elsewhere: a CA state directory's signer, an intermediate written by
    /// `meshca intermediate create`, a rogue signer a test mints certificates with.
    public init(trustDomain: TrustDomain, signer: SigningIdentity) {
        let root = signer.bundle.last ?? signer.certificate
        self.init(
            trustDomain: trustDomain, root: root, intermediate: signer.certificate == root ? nil : signer.certificate,
            authority: CertificateAuthority(trustDomain: trustDomain, signer: signer))
    }

    private init(trustDomain: TrustDomain, root: Certificate, intermediate: Certificate?, authority: CertificateAuthority) {
        self.trustDomain = trustDomain
        self.root = root
        self.intermediate = intermediate
        self.authority = authority
    }

    /// `spiffe://<trust domain>/ns/<ns>/sa/<sa>`.
    public func identity(_ sa: String = "was", ns: String = "default") throws -> SPIFFEID {
        try SPIFFEID(trustDomain: trustDomain, namespace: ns, serviceAccount: sa)
    }

    /// `spiffe://<trustDomain>/ns/<ns>/sa/<sa>`, for tests that need an identity before (or without) a CA.
    public static func identity(_ sa: String = "was", ns: String = "default", trustDomain: String = "cluster.local") throws -> SPIFFEID {
        try SPIFFEID(trustDomain: TrustDomain(trustDomain), namespace: ns, serviceAccount: sa)
    }

    /// A CSR for `identity` with `key`.
    public static func csr(for identity: SPIFFEID, key: Certificate.PrivateKey) throws -> String {
        try WorkloadCSR.pem(WorkloadCSR.make(for: identity, key: key))
    }

    /// A CSR for `identity` with a fresh key of `keyType`.
    public static func csr(for identity: SPIFFEID, keyType: KeyType = .ecP256) throws -> String {
        try csr(for: identity, key: keyType.generate())
    }

    /// A CSR carrying exactly `extensions` (no subject), signed by `key` (a fresh P-256 key when nil): for requests
    /// a workload would not send.
    public static func csr(extensions: Certificate.Extensions, key: Certificate.PrivateKey? = nil) throws -> String {
        let request = try CertificateSigningRequest(
            version: .v1, subject: DistinguishedName(), privateKey: key ?? KeyType.ecP256.generate(),
            attributes: CertificateSigningRequest.Attributes([try .init(ExtensionRequest(extensions: extensions))]),
            signatureAlgorithm: .ecdsaWithSHA256)
        return try WorkloadCSR.pem(request)
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

    /// Writes Istio's plug-in CA layout into `directory` (created when missing): `ca-cert.pem` and `ca-key.pem`
    /// (the signing CA and its key), `cert-chain.pem` (the signing CA up to the root), `root-cert.pem`.
    public func writeCacerts(to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let signer = self.signer
        var chain = [signer.certificate] + signer.intermediates
        if chain.last != root { chain.append(root) }
        let files = [
            "ca-cert.pem": signer.certificate.pem,
            "ca-key.pem": try signer.privateKey.serializeAsPEM().pemString,
            "cert-chain.pem": chain.map(\.pem).joined(),
            "root-cert.pem": root.pem,
        ]
        for (name, contents) in files {
            try contents.write(toFile: directory + "/" + name, atomically: false, encoding: .utf8)
        }
    }
}
