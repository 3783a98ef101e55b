#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import X509

/// One workload certificate the CA signed, with everything the ledger records about it.
///
/// The CA returns an `Issuance` and does nothing else with it; the caller records it durably and only
/// then hands the certificate out.
public struct Issuance: Sendable {
    /// The signed leaf.
    public let certificate: Certificate
    /// The SPIFFE ID in the leaf's single URI SAN.
    public let identity: SPIFFEID
    /// Intermediates between the leaf and the roots, signing CA first (empty under a self-signed root).
    public let intermediates: [Certificate]
    /// The trust bundle: the roots a peer should trust.
    public let bundle: [Certificate]
    /// When the CA signed it (the `now` given to ``CertificateAuthority/issue(_:at:)``).
    public let issuedAt: Date
    /// What the request asked for, `nil` for "the default".
    public let requestedTTL: Duration?
    /// The real lifetime from `issuedAt` to notAfter (shorter than asked when capped by the CA's own expiry).
    public let grantedTTL: Duration
    /// The key type of the certified public key.
    public let keyType: String
    /// SHA-256 of the CSR's DER encoding.
    public let csrSHA256: String
    /// SHA-256 of the signing CA certificate's DER encoding.
    public let issuerFingerprint: String

    /// `cert-chain.pem` as istio-agent writes it: leaf, intermediates, then the roots.
    public var certChainPEM: String { ([certificate] + intermediates + bundle).map(\.pem).joined() }
    /// `root-cert.pem`: the roots only.
    public var bundlePEM: String { bundle.map(\.pem).joined() }
    /// The `cert_chain` of Istio's `IstioCertificateResponse`: one element per certificate for the leaf
    /// and each intermediate, then the whole root bundle as the last element, every element ending in `\n`.
    public var istioCertChain: [String] { [certificate.pem] + intermediates.map(\.pem) + [bundlePEM] }
}
