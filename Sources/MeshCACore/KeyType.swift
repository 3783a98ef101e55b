import Crypto
import X509
import SwiftASN1
import _CryptoExtras

/// The key algorithms meshca generates and accepts: ECDSA P-256 (the default) and P-384, RSA 2048-4096.
public enum KeyType: String, Sendable, CaseIterable, CustomStringConvertible {
    case ecP256 = "ec-p256"
    case ecP384 = "ec-p384"
    case rsa2048 = "rsa-2048"
    case rsa3072 = "rsa-3072"
    case rsa4096 = "rsa-4096"

    /// The command-line spelling, e.g. `ec-p256`.
    public var description: String { rawValue }

    /// Whether this is an RSA key (which, unlike EC keys, may carry keyEncipherment).
    public var isRSA: Bool {
        switch self {
        case .rsa2048, .rsa3072, .rsa4096: true
        case .ecP256, .ecP384: false
        }
    }

    /// Parses the command-line spelling, listing the accepted values when it is unknown.
    public init(parsing text: String) throws {
        guard let value = KeyType(rawValue: text.lowercased()) else {
            throw IssuanceError(
                .unsupportedKey,
                "Key type \"\(text)\" is not supported. Use one of: "
                    + KeyType.allCases.map(\.rawValue).joined(separator: ", ") + "."
            )
        }
        self = value
    }

    /// Generates a fresh private key of this type from the system's secure random source.
    public func generate() throws -> Certificate.PrivateKey {
        switch self {
        case .ecP256: Certificate.PrivateKey(P256.Signing.PrivateKey())
        case .ecP384: Certificate.PrivateKey(P384.Signing.PrivateKey())
        case .rsa2048: Certificate.PrivateKey(try _RSA.Signing.PrivateKey(keySize: .bits2048))
        case .rsa3072: Certificate.PrivateKey(try _RSA.Signing.PrivateKey(keySize: .bits3072))
        case .rsa4096: Certificate.PrivateKey(try _RSA.Signing.PrivateKey(keySize: .bits4096))
        }
    }

    /// The type of a public key, or `nil` when meshca does not accept it. RSA keys between 2048 and
    /// 8192 bits are accepted from CSRs and reported by their nearest listed size or as `rsa-<bits>`.
    public static func of(_ key: Certificate.PublicKey) -> String? {
        if P256.Signing.PublicKey(key) != nil { return KeyType.ecP256.rawValue }
        if P384.Signing.PublicKey(key) != nil { return KeyType.ecP384.rawValue }
        if let rsa = _RSA.Signing.PublicKey(key), (2048...8192).contains(rsa.keySizeInBits) {
            return "rsa-\(rsa.keySizeInBits)"
        }
        return nil
    }

    /// The signature algorithm a CA with a key of this public key's type signs with.
    static func signatureAlgorithm(for key: Certificate.PublicKey) throws -> Certificate.SignatureAlgorithm {
        if P256.Signing.PublicKey(key) != nil { return .ecdsaWithSHA256 }
        if P384.Signing.PublicKey(key) != nil { return .ecdsaWithSHA384 }
        if _RSA.Signing.PublicKey(key) != nil { return .sha256WithRSAEncryption }
        throw IssuanceError(.invalidSigner, "The CA key is neither ECDSA P-256/P-384 nor RSA; meshca cannot sign with it.")
    }

    /// A short description of why a CSR key is refused.
    static func refusal(for key: Certificate.PublicKey) -> String {
        if let rsa = _RSA.Signing.PublicKey(key) {
            return "RSA keys must have 2048 to 8192 bits, this one has \(rsa.keySizeInBits)"
        }
        return "only ECDSA P-256, ECDSA P-384 and RSA (2048-8192 bits) keys are accepted"
    }
}

extension Certificate.PrivateKey {
    /// The key as unencrypted PKCS#8 DER, the format the SPIFFE Workload API requires (swift-crypto's
    /// RSA PEM is PKCS#1, so RSA keys are re-encoded).
    public func pkcs8DER() throws -> [UInt8] {
        let pem = try serializeAsPEM()
        switch pem.discriminator {
        case "PRIVATE KEY": return pem.derBytes
        case "RSA PRIVATE KEY": return Array(try _RSA.Signing.PrivateKey(derRepresentation: pem.derBytes).pkcs8DERRepresentation)
        default: throw IssuanceError(.unsupportedKey, "A \(pem.discriminator) cannot be converted to PKCS#8.")
        }
    }
}
