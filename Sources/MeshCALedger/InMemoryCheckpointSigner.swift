import Crypto
import Foundation
import _CryptoExtras

/// A ledger key held in memory only: generated fresh, or given as PEM by a caller that stores it elsewhere.
public struct InMemoryCheckpointSigner: CheckpointSigner {
    private let key: Curve25519.Signing.PrivateKey
    /// The public half.
    public let publicKey: CheckpointPublicKey

    /// A new random key.
    public init() {
        self.init(key: Curve25519.Signing.PrivateKey())
    }

    /// The key in a PEM `PRIVATE KEY` (PKCS#8) document; `source` names it in errors.
    public init(pemRepresentation pem: String, source: String) throws {
        guard let key = try? Curve25519.Signing.PrivateKey(pemRepresentation: pem) else {
            throw LedgerError(
                code: .ledgerKey,
                message: "\(source) is not an Ed25519 private key in PEM form (expected '-----BEGIN PRIVATE "
                    + "KEY-----'). Restore the ledger key from a backup; if it is lost, move the file aside and a "
                    + "new key is created, but checkpoints signed by the old key can then only be checked with "
                    + "its public half (`meshca audit verify --public-key`).")
        }
        self.init(key: key)
    }

    private init(key: Curve25519.Signing.PrivateKey) {
        self.key = key
        self.publicKey = CheckpointPublicKey(derivedFrom: key)
    }

    /// The key as a PEM `PRIVATE KEY` (PKCS#8) document.
    public var pemRepresentation: String { key.pemRepresentation }

    /// The Ed25519 signature over `message`.
    public func sign(_ message: [UInt8]) throws -> [UInt8] {
        Array(try key.signature(for: message))
    }
}
