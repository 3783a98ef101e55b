import X509

/// What the CA signs with: its certificate and key, the chain up to (not including) the root, and the
/// trust bundle it hands out.
///
/// For a self-signed meshca root, `certificate` is the root, `intermediates` is empty and `bundle`
/// holds the root. For a plugged-in intermediate, `intermediates` carries the chain above it.
public struct SigningIdentity: Sendable {
    /// The CA certificate that signs workload certificates.
    public let certificate: Certificate
    /// The CA's private key. Never logged, never serialized by the core.
    public let privateKey: Certificate.PrivateKey
    /// Certificates between `certificate` and the roots, signing CA's issuer first. Empty for a root CA.
    public let intermediates: [Certificate]
    /// The roots workloads trust (`root-cert.pem`). Several during a root rotation.
    public let bundle: [Certificate]

    /// Checks that the key belongs to the certificate and that the certificate is a CA allowed to sign.
    public init(
        certificate: Certificate,
        privateKey: Certificate.PrivateKey,
        intermediates: [Certificate] = [],
        bundle: [Certificate]
    ) throws {
        guard privateKey.publicKey == certificate.publicKey else {
            throw IssuanceError(
                .invalidSigner,
                "The CA key does not match the CA certificate (their public keys differ). Restore the key that "
                    + "belongs to this certificate from your backup, or start over with a new CA."
            )
        }
        let constraints = try? certificate.extensions.basicConstraints
        guard case .isCertificateAuthority = constraints else {
            throw IssuanceError(.invalidSigner, "The CA certificate is not a CA (BasicConstraints CA=true is missing).")
        }
        if let usage = try? certificate.extensions.keyUsage, !usage.keyCertSign {
            throw IssuanceError(.invalidSigner, "The CA certificate's KeyUsage does not allow keyCertSign.")
        }
        guard !bundle.isEmpty else {
            throw IssuanceError(.invalidSigner, "The CA has no root certificate to hand out as its trust bundle.")
        }
        _ = try KeyType.signatureAlgorithm(for: certificate.publicKey)
        self.certificate = certificate
        self.privateKey = privateKey
        self.intermediates = intermediates
        self.bundle = bundle
    }

    /// Whether this CA is one of the roots it hands out (meshca's own root), rather than a plug-in intermediate
    /// signing under someone else's root.
    public var isRoot: Bool { bundle.contains(certificate) }

    /// The CA certificates between a leaf this CA signs and the roots: none for a root, else the signing CA and
    /// the chain above it.
    public var chainAboveLeaf: [Certificate] { isRoot ? intermediates : [certificate] + intermediates }

    /// The root a certificate signed by this CA chains to: the signing root itself, or for a plug-in intermediate
    /// the first root of its bundle.
    public var anchor: Certificate { isRoot ? certificate : (bundle.first ?? certificate) }

    /// The signature algorithm that follows the CA key (P-256 → ECDSA-SHA256, P-384 → ECDSA-SHA384, RSA → SHA256-RSA).
    var signatureAlgorithm: Certificate.SignatureAlgorithm {
        // Checked in init, so this cannot fail.
        (try? KeyType.signatureAlgorithm(for: certificate.publicKey)) ?? .ecdsaWithSHA256
    }
}
