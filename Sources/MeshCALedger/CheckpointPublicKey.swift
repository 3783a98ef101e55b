import Crypto
import Foundation
import _CryptoExtras

/// The public half of a ledger key: what `meshca audit verify` checks checkpoint signatures with.
public struct CheckpointPublicKey: Sendable, Equatable, CustomStringConvertible {
    /// The 32-byte Ed25519 public key.
    public let rawRepresentation: [UInt8]

    /// The key from its 32 raw bytes; throws `.ledgerKey` for anything else.
    public init(rawRepresentation: [UInt8]) throws {
        do {
            _ = try Curve25519.Signing.PublicKey(rawRepresentation: rawRepresentation)
        } catch {
            throw LedgerError(
                code: .ledgerKey,
                message: "A ledger public key must be 32 bytes of Ed25519, but \(rawRepresentation.count) bytes were "
                    + "given. Pass the PEM file written next to the ledger (ledger-key.pub.pem).")
        }
        self.rawRepresentation = rawRepresentation
    }

    /// The key from a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) or, deriving its public half, a `PRIVATE KEY`
    /// (PKCS#8) document. `source` names the file in errors.
    public init(pemRepresentation pem: String, source: String) throws {
        if let key = try? Curve25519.Signing.PublicKey(pemRepresentation: pem) {
            self.rawRepresentation = Array(key.rawRepresentation)
        } else if let key = try? Curve25519.Signing.PrivateKey(pemRepresentation: pem) {
            self.rawRepresentation = Array(key.publicKey.rawRepresentation)
        } else {
            throw LedgerError(
                code: .ledgerKey,
                message: "\(source) is not an Ed25519 key in PEM form (expected '-----BEGIN PUBLIC KEY-----' or "
                    + "'-----BEGIN PRIVATE KEY-----'). Give the ledger key's public half, ledger-key.pub.pem, or "
                    + "derive it with `openssl pkey -in ledger-key.pem -pubout`.")
        }
    }

    /// A key already known to be 32 bytes of Ed25519 (derived from a private key).
    init(derivedFrom key: Curve25519.Signing.PrivateKey) {
        self.rawRepresentation = Array(key.publicKey.rawRepresentation)
    }

    /// The key as a PEM `PUBLIC KEY` document, readable by `openssl pkey -pubin`.
    public var pemRepresentation: String {
        // Only fails for bytes the initializers already refused.
        (try? Curve25519.Signing.PublicKey(rawRepresentation: rawRepresentation).pemRepresentation) ?? ""
    }

    /// A short name for the key: the first 16 hex digits of the SHA-256 of its raw bytes. Stored in every
    /// checkpoint, so a checkpoint signed by another key is named as such.
    public var id: String {
        String(Hex.encode(LedgerChainField.sha256(rawRepresentation)).prefix(16))
    }

    /// The key id.
    public var description: String { id }

    /// Whether `signature` is this key's Ed25519 signature over `message`.
    public func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: rawRepresentation) else { return false }
        return key.isValidSignature(signature, for: message)
    }
}

/// Lowercase hex, as the ledger stores fingerprints.
package enum Hex {
    /// `bytes` as lowercase hex without separators.
    package static func encode(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
