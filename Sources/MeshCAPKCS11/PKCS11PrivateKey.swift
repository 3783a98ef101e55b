import CPKCS11
import Crypto
import Foundation
import MeshCACore
import SwiftASN1
import Synchronization
import X509
import _CryptoExtras

/// A CA key that lives in a PKCS#11 token: every signature is made by the token, the key never leaves it.
///
/// Wrap it in `Certificate.PrivateKey(_:)` and it signs everything a file key signs (workload certificates,
/// the serving certificate, CRLs, intermediates, bridge certificates). A signature the token cannot make (token
/// removed, module failing) throws ``IssuanceError`` `signer-unavailable`. Serializing it throws: there is no
/// key material to write out.
public struct PKCS11PrivateKey: CustomPrivateKey, CustomStringConvertible {
    /// Where the key lives (with its CKA_ID). Holds no PIN.
    public let uri: PKCS11URI
    /// The key's public half, read from the token.
    public let publicKey: Certificate.PublicKey
    /// The key's type.
    public let keyType: KeyType
    let token: PKCS11Token
    private let handles: HandleCache

    init(uri: PKCS11URI, publicKey: Certificate.PublicKey, keyType: KeyType, token: PKCS11Token, handle: CK_OBJECT_HANDLE, epoch: Int) {
        self.uri = uri
        self.publicKey = publicKey
        self.keyType = keyType
        self.token = token
        self.handles = HandleCache(epoch: epoch, handle: handle)
    }

    public var description: String { "PKCS#11 key \(uri)" }

    public var defaultSignatureAlgorithm: Certificate.SignatureAlgorithm {
        switch keyType {
        case .ecP256: .ecdsaWithSHA256
        case .ecP384: .ecdsaWithSHA384
        case .rsa2048, .rsa3072, .rsa4096: .sha256WithRSAEncryption
        }
    }

    public var supportedSignatureAlgorithms: [Certificate.SignatureAlgorithm] {
        keyType.isRSA
            ? [.sha256WithRSAEncryption, .sha384WithRSAEncryption, .sha512WithRSAEncryption]
            : [.ecdsaWithSHA256, .ecdsaWithSHA384, .ecdsaWithSHA512]
    }

    public func signSynchronously(bytes: some DataProtocol, signatureAlgorithm: Certificate.SignatureAlgorithm) throws -> Certificate.Signature {
        let input: [UInt8]
        let mechanism: CK_ULONG
        switch signatureAlgorithm {
        case .ecdsaWithSHA256 where !keyType.isRSA: (input, mechanism) = (Array(SHA256.hash(data: bytes)), CKM_ECDSA)
        case .ecdsaWithSHA384 where !keyType.isRSA: (input, mechanism) = (Array(SHA384.hash(data: bytes)), CKM_ECDSA)
        case .ecdsaWithSHA512 where !keyType.isRSA: (input, mechanism) = (Array(SHA512.hash(data: bytes)), CKM_ECDSA)
        case .sha256WithRSAEncryption where keyType.isRSA: (input, mechanism) = (Array(bytes), CKM_SHA256_RSA_PKCS)
        case .sha384WithRSAEncryption where keyType.isRSA: (input, mechanism) = (Array(bytes), CKM_SHA384_RSA_PKCS)
        case .sha512WithRSAEncryption where keyType.isRSA: (input, mechanism) = (Array(bytes), CKM_SHA512_RSA_PKCS)
        default:
            throw IssuanceError(.signingFailed, "The \(keyType) key in the HSM cannot make a \(signatureAlgorithm) signature.")
        }
        let raw: [UInt8]
        do {
            raw = try sign(input, mechanism: mechanism)
        } catch {
            throw error.asIssuanceError
        }
        let signatureBytes = keyType.isRSA ? raw : Self.derECDSA(raw)
        return try Certificate.Signature(signatureAlgorithm: signatureAlgorithm, signatureBytes: ASN1BitString(bytes: signatureBytes[...]))
    }

    /// The raw signature of `input` with `mechanism`, made by the token.
    func sign(_ input: [UInt8], mechanism: CK_ULONG) throws(PKCS11Error) -> [UInt8] {
        try token.withSession { (session, epoch) throws(PKCS11Error) in
            let handle = try self.handle(in: session, epoch: epoch)
            let f = token.module.functions.pointee
            var mech = CK_MECHANISM(mechanism: CK_MECHANISM_TYPE(mechanism), pParameter: nil, ulParameterLen: 0)
            try token.module.check(f.C_SignInit!(session, &mech, handle), "C_SignInit", token.name)
            var data = input
            var signature = [UInt8](repeating: 0, count: 1024)
            var length = CK_ULONG(signature.count)
            try token.module.check(f.C_Sign!(session, &data, CK_ULONG(data.count), &signature, &length), "C_Sign", token.name)
            return Array(signature.prefix(Int(length)))
        }
    }

    /// The key's object handle for a session of `epoch` (looked up again after a reset).
    private func handle(in session: CK_SESSION_HANDLE, epoch: Int) throws(PKCS11Error) -> CK_OBJECT_HANDLE {
        if let handle = handles.handle(for: epoch) { return handle }
        let handle = try PKCS11Keys.findPrivateKey(uri, token: token, in: session)
        handles.store(handle, epoch: epoch)
        return handle
    }

    /// What the token says about the key's protection: `CKA_SENSITIVE`, `CKA_EXTRACTABLE`, `CKA_ALWAYS_SENSITIVE`,
    /// `CKA_NEVER_EXTRACTABLE`, and what reading its private value (`CKA_VALUE` / `CKA_PRIVATE_EXPONENT`) gives.
    public func protection() throws(PKCS11Error) -> Protection {
        try token.withSession { (session, epoch) throws(PKCS11Error) in
            let handle = try self.handle(in: session, epoch: epoch)
            let module = token.module
            func flag(_ type: CK_ULONG) throws(PKCS11Error) -> Bool? { try module.attribute(type, of: handle, in: session)?.first.map { $0 != 0 } }
            var refusal = CK_RV(CKR_OK)
            let secret = try module.attribute(keyType.isRSA ? CKA_PRIVATE_EXPONENT : CKA_VALUE, of: handle, in: session, refusal: &refusal)
            return Protection(
                sensitive: try flag(CKA_SENSITIVE) ?? false, extractable: try flag(CKA_EXTRACTABLE) ?? true,
                alwaysSensitive: try flag(CKA_ALWAYS_SENSITIVE) ?? false, neverExtractable: try flag(CKA_NEVER_EXTRACTABLE) ?? false,
                privateValueReadable: secret != nil, privateValueRefusal: secret == nil ? PKCS11Error.name(of: refusal) : nil)
        }
    }

    /// How the token protects a key.
    public struct Protection: Sendable, Equatable {
        /// CKA_SENSITIVE: the private value is never revealed in plaintext.
        public let sensitive: Bool
        /// CKA_EXTRACTABLE: the key may be wrapped out of the token.
        public let extractable: Bool
        /// CKA_ALWAYS_SENSITIVE: it has been sensitive since it was made.
        public let alwaysSensitive: Bool
        /// CKA_NEVER_EXTRACTABLE: it has never been extractable.
        public let neverExtractable: Bool
        /// Whether asking the token for the private value returned it (false for a protected key).
        public let privateValueReadable: Bool
        /// The CK_RV name of the refusal to read it, e.g. `CKR_ATTRIBUTE_SENSITIVE`.
        public let privateValueRefusal: String?

        /// One line for `meshca doctor`: "sensitive, not extractable" or what is wrong.
        public var summary: String {
            var parts = [sensitive ? "sensitive" : "NOT sensitive", extractable ? "EXTRACTABLE" : "not extractable"]
            if sensitive && !alwaysSensitive { parts.append("was not always sensitive") }
            if !extractable && !neverExtractable { parts.append("was extractable once") }
            return parts.joined(separator: ", ")
        }
    }

    public static func == (lhs: PKCS11PrivateKey, rhs: PKCS11PrivateKey) -> Bool {
        lhs.uri == rhs.uri && lhs.publicKey == rhs.publicKey
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(uri)
        hasher.combine(publicKey)
    }

    public static var defaultPEMDiscriminator: String { "PRIVATE KEY" }

    /// Always throws: the key cannot leave the token.
    public func serialize(into coder: inout DER.Serializer) throws {
        throw IssuanceError(
            .unsupportedKey,
            "The CA key lives in a hardware security module (\(uri)); it cannot be written to a file. Files that would hold it "
                + "record its PKCS#11 URI instead.")
    }

    /// The DER ECDSA-Sig-Value of a raw `r || s` signature.
    static func derECDSA(_ raw: [UInt8]) -> [UInt8] {
        let half = raw.count / 2
        func integer(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
            var value = Array(bytes.drop { $0 == 0 })
            if value.isEmpty { value = [0] }
            if value[0] & 0x80 != 0 { value.insert(0, at: 0) }
            return [0x02] + derLength(value.count) + value
        }
        let body = integer(raw[..<half]) + integer(raw[half...])
        return [0x30] + derLength(body.count) + body
    }

    static func derLength(_ count: Int) -> [UInt8] {
        if count < 0x80 { return [UInt8(count)] }
        if count < 0x100 { return [0x81, UInt8(count)] }
        return [0x82, UInt8(count >> 8), UInt8(count & 0xFF)]
    }
}

/// The object handle of a key, valid for the sessions of one epoch.
final class HandleCache: Sendable {
    private let cached: Mutex<(epoch: Int, handle: CK_OBJECT_HANDLE)?>

    init(epoch: Int, handle: CK_OBJECT_HANDLE) { cached = Mutex((epoch, handle)) }

    func handle(for epoch: Int) -> CK_OBJECT_HANDLE? {
        cached.withLock { $0.flatMap { $0.epoch == epoch ? $0.handle : nil } }
    }

    func store(_ handle: CK_OBJECT_HANDLE, epoch: Int) { cached.withLock { $0 = (epoch, handle) } }
}
