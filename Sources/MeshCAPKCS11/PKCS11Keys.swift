import CPKCS11
import Crypto
import MeshCACore
import X509
import _CryptoExtras

/// Finding and generating CA keys in a PKCS#11 token.
public enum PKCS11Keys {
    /// The key `uri` names (by `object=` label and/or `id=`), which must exist, with its public key read from the token.
    public static func open(_ uri: PKCS11URI) throws(PKCS11Error) -> PKCS11PrivateKey {
        let token = try PKCS11Token.named(uri)
        return try token.withSession { (session, epoch) throws(PKCS11Error) in
            let handle = try findPrivateKey(uri, token: token, in: session)
            return try load(uri, handle: handle, token: token, session: session, epoch: epoch)
        }
    }

    /// Generates a `keyType` key pair inside the token under the URI's label (and id; a random 16-byte CKA_ID when the
    /// URI has none): the private key sensitive and not extractable, so it never leaves the token. Refuses when a
    /// private key with that label or id is already there.
    public static func generate(_ uri: PKCS11URI, keyType: KeyType) throws(PKCS11Error) -> PKCS11PrivateKey {
        let token = try PKCS11Token.named(uri)
        let existing = try token.withSession { (session, _) throws(PKCS11Error) in try candidates(uri, in: session, module: token.module) }
        guard existing.isEmpty else {
            throw PKCS11Error(
                .keyNotFound,
                "The \(token.name) already holds a private key matching \(uri); meshca does not generate a second one with the "
                    + "same label or id. Choose another object= label, or use the existing key as it is.")
        }
        var id = uri.id ?? []
        if id.isEmpty {
            var random = SystemRandomNumberGenerator()
            id = (0..<16).map { _ in UInt8.random(in: 0...255, using: &random) }
        }
        let named = uri.with(id: id)
        let label = Array((uri.object ?? "meshca-ca").utf8)
        var publicTemplate = PKCS11Template()
        var privateTemplate = PKCS11Template()
        publicTemplate.add(CKA_TOKEN, bool: true)
        publicTemplate.add(CKA_VERIFY, bool: true)
        publicTemplate.add(CKA_LABEL, label)
        publicTemplate.add(CKA_ID, id)
        privateTemplate.add(CKA_TOKEN, bool: true)
        privateTemplate.add(CKA_PRIVATE, bool: true)
        privateTemplate.add(CKA_SIGN, bool: true)
        privateTemplate.add(CKA_SENSITIVE, bool: true)
        privateTemplate.add(CKA_EXTRACTABLE, bool: false)
        privateTemplate.add(CKA_LABEL, label)
        privateTemplate.add(CKA_ID, id)
        let mechanismType: CK_ULONG
        switch keyType {
        case .ecP256, .ecP384:
            mechanismType = CKM_EC_KEY_PAIR_GEN
            publicTemplate.add(CKA_EC_PARAMS, keyType == .ecP256 ? p256OID : p384OID)
        case .rsa2048, .rsa3072, .rsa4096:
            mechanismType = CKM_RSA_PKCS_KEY_PAIR_GEN
            let bits: CK_ULONG = keyType == .rsa2048 ? 2048 : keyType == .rsa3072 ? 3072 : 4096
            publicTemplate.add(CKA_MODULUS_BITS, ulong: bits)
            publicTemplate.add(CKA_PUBLIC_EXPONENT, [0x01, 0x00, 0x01])
        }
        let module = token.module
        try token.withReadWriteSession { (session) throws(PKCS11Error) in
            var mechanism = CK_MECHANISM(mechanism: CK_MECHANISM_TYPE(mechanismType), pParameter: nil, ulParameterLen: 0)
            var publicHandle = CK_OBJECT_HANDLE(0)
            var privateHandle = CK_OBJECT_HANDLE(0)
            try publicTemplate.withAttributes { (publicAttributes, publicCount) throws(PKCS11Error) in
                try privateTemplate.withAttributes { (privateAttributes, privateCount) throws(PKCS11Error) in
                    try module.check(
                        module.functions.pointee.C_GenerateKeyPair!(
                            session, &mechanism, publicAttributes, publicCount, privateAttributes, privateCount, &publicHandle, &privateHandle),
                        "C_GenerateKeyPair", "\(keyType) in the \(token.name)")
                }
            }
        }
        return try open(named)
    }

    /// The key `uri` names when there is one, else a new `keyType` key generated under it (see ``generate(_:keyType:)``).
    public static func openOrGenerate(_ uri: PKCS11URI, keyType: KeyType) throws(PKCS11Error) -> (key: PKCS11PrivateKey, generated: Bool) {
        let token = try PKCS11Token.named(uri)
        let existing = try token.withSession { (session, _) throws(PKCS11Error) in try candidates(uri, in: session, module: token.module) }
        if existing.isEmpty { return (try generate(uri, keyType: keyType), true) }
        return (try open(uri), false)
    }

    /// The handle of the one private key `uri` names.
    static func findPrivateKey(_ uri: PKCS11URI, token: PKCS11Token, in session: CK_SESSION_HANDLE) throws(PKCS11Error) -> CK_OBJECT_HANDLE {
        let found = try candidates(uri, in: session, module: token.module)
        guard found.count == 1 else {
            throw PKCS11Error(
                .keyNotFound,
                found.isEmpty
                    ? "The \(token.name) holds no private key matching \(uri). Check object= (the key's label) and id= in the URI "
                        + "(list the token's keys with your HSM's tool, e.g. pkcs11-tool --list-objects), or create the key with "
                        + "`meshca init --key URI`."
                    : "More than one private key in the \(token.name) matches \(uri); add id=%xx%xx... (the key's CKA_ID) to the URI "
                        + "to say which.")
        }
        return found[0]
    }

    private static func candidates(_ uri: PKCS11URI, in session: CK_SESSION_HANDLE, module: PKCS11Module) throws(PKCS11Error) -> [CK_OBJECT_HANDLE] {
        var template = PKCS11Template()
        template.add(CKA_CLASS, ulong: CKO_PRIVATE_KEY)
        if let object = uri.object { template.add(CKA_LABEL, Array(object.utf8)) }
        if let id = uri.id { template.add(CKA_ID, id) }
        return try module.find(template, in: session)
    }

    /// The key at `handle` with its public key: RSA's from the private key's public attributes, EC's from the public key
    /// object with the same CKA_ID.
    private static func load(
        _ uri: PKCS11URI, handle: CK_OBJECT_HANDLE, token: PKCS11Token, session: CK_SESSION_HANDLE, epoch: Int
    ) throws(PKCS11Error) -> PKCS11PrivateKey {
        let module = token.module
        let id = try module.attribute(CKA_ID, of: handle, in: session) ?? []
        let named = id.isEmpty ? uri : uri.with(id: id)
        guard let typeBytes = try module.attribute(CKA_KEY_TYPE, of: handle, in: session), typeBytes.count == MemoryLayout<CK_ULONG>.size else {
            throw PKCS11Error(.unsupportedKey, "The \(token.name) does not say what type of key \(uri) is (CKA_KEY_TYPE).")
        }
        let type = typeBytes.withUnsafeBytes { $0.loadUnaligned(as: CK_ULONG.self) }
        do {
            switch type {
            case CK_ULONG(CKK_EC):
                let params = try module.attribute(CKA_EC_PARAMS, of: handle, in: session) ?? []
                let keyType: KeyType
                switch params {
                case p256OID: keyType = .ecP256
                case p384OID: keyType = .ecP384
                default: throw PKCS11Error(.unsupportedKey, "The EC key \(uri) is on a curve meshca does not sign with; use P-256 or P-384.")
                }
                var template = PKCS11Template()
                template.add(CKA_CLASS, ulong: CKO_PUBLIC_KEY)
                if !id.isEmpty { template.add(CKA_ID, id) } else if let object = uri.object { template.add(CKA_LABEL, Array(object.utf8)) }
                guard let publicHandle = try module.find(template, in: session).first,
                    let encoded = try module.attribute(CKA_EC_POINT, of: publicHandle, in: session)
                else {
                    throw PKCS11Error(
                        .keyNotFound,
                        "The \(token.name) holds the private key \(uri) but not its public key (a CKO_PUBLIC_KEY object with the same "
                            + "CKA_ID), which meshca needs to check it against the CA certificate. Import the public key into the token "
                            + "with the same id.")
                }
                let point = unwrapOctetString(encoded)
                let publicKey =
                    keyType == .ecP256
                    ? Certificate.PublicKey(try P256.Signing.PublicKey(x963Representation: point))
                    : Certificate.PublicKey(try P384.Signing.PublicKey(x963Representation: point))
                return PKCS11PrivateKey(uri: named, publicKey: publicKey, keyType: keyType, token: token, handle: handle, epoch: epoch)
            case CK_ULONG(CKK_RSA):
                guard let modulus = try module.attribute(CKA_MODULUS, of: handle, in: session),
                    let exponent = try module.attribute(CKA_PUBLIC_EXPONENT, of: handle, in: session)
                else { throw PKCS11Error(.unsupportedKey, "The \(token.name) does not give the modulus of the RSA key \(uri).") }
                let rsa = try _RSA.Signing.PublicKey(derRepresentation: rsaPublicKeyDER(modulus: modulus, exponent: exponent))
                let keyType: KeyType
                switch rsa.keySizeInBits {
                case 2048: keyType = .rsa2048
                case 3072: keyType = .rsa3072
                case 4096: keyType = .rsa4096
                default: throw PKCS11Error(.unsupportedKey, "The RSA key \(uri) has \(rsa.keySizeInBits) bits; meshca signs with 2048, 3072 or 4096.")
                }
                return PKCS11PrivateKey(uri: named, publicKey: Certificate.PublicKey(rsa), keyType: keyType, token: token, handle: handle, epoch: epoch)
            default:
                throw PKCS11Error(.unsupportedKey, "The key \(uri) is neither EC nor RSA (CKA_KEY_TYPE 0x\(String(type, radix: 16))); meshca cannot sign with it.")
            }
        } catch let error as PKCS11Error {
            throw error
        } catch {
            throw PKCS11Error(.unsupportedKey, "The public key of \(uri) in the \(token.name) cannot be read (\(error)).")
        }
    }

    /// DER OID of P-256 (prime256v1) as CKA_EC_PARAMS.
    static let p256OID: [UInt8] = [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07]
    /// DER OID of P-384 (secp384r1) as CKA_EC_PARAMS.
    static let p384OID: [UInt8] = [0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22]

    /// CKA_EC_POINT is a DER OCTET STRING around the point for most modules, the bare point for some.
    static func unwrapOctetString(_ bytes: [UInt8]) -> [UInt8] {
        guard bytes.count > 2, bytes[0] == 0x04 else { return bytes }
        var index = 1
        var length = Int(bytes[index])
        index += 1
        if length & 0x80 != 0 {
            let octets = length & 0x7F
            guard octets <= 2, bytes.count > index + octets else { return bytes }
            length = bytes[index..<index + octets].reduce(0) { $0 << 8 | Int($1) }
            index += octets
        }
        // A bare uncompressed point also starts with 0x04; it is the wrapper only if the length matches exactly.
        return index + length == bytes.count ? Array(bytes[index...]) : bytes
    }

    /// PKCS#1 RSAPublicKey DER from big-endian modulus and exponent.
    static func rsaPublicKeyDER(modulus: [UInt8], exponent: [UInt8]) -> [UInt8] {
        func integer(_ bytes: [UInt8]) -> [UInt8] {
            var value = Array(bytes.drop { $0 == 0 })
            if value.isEmpty { value = [0] }
            if value[0] & 0x80 != 0 { value.insert(0, at: 0) }
            return [0x02] + PKCS11PrivateKey.derLength(value.count) + value
        }
        let body = integer(modulus) + integer(exponent)
        return [0x30] + PKCS11PrivateKey.derLength(body.count) + body
    }
}
