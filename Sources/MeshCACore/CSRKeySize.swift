import SwiftASN1

/// Reads the RSA modulus size out of a DER CSR without trusting the rest of it.
///
/// swift-crypto refuses to load RSA keys below 2048 bits, so such a CSR fails to parse at all; this
/// lets the refusal say "RSA-1024 is too small" instead of "could not parse".
enum CSRKeySize {
    static let rsaEncryption: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 1, 1, 1]

    /// The RSA key size in bits of the CSR's public key, or `nil` when it is not RSA or unreadable.
    static func rsaBits(csrDER: [UInt8]) -> Int? {
        guard let request = try? DER.parse(csrDER),
            let info = children(request)?.first,
            let fields = children(info), fields.count >= 3,
            let spki = children(fields[2]), spki.count == 2,
            let algorithm = children(spki[0])?.first,
            let oid = try? ASN1ObjectIdentifier(derEncoded: algorithm), oid == rsaEncryption,
            let bits = try? ASN1BitString(derEncoded: spki[1]),
            let key = try? DER.parse(Array(bits.bytes)),
            let modulusNode = children(key)?.first,
            case .primitive(let modulus) = modulusNode.content
        else { return nil }
        let magnitude = modulus.drop { $0 == 0 }
        guard let top = magnitude.first else { return 0 }
        return (magnitude.count - 1) * 8 + (8 - top.leadingZeroBitCount)
    }

    private static func children(_ node: ASN1Node) -> [ASN1Node]? {
        guard case .constructed(let nodes) = node.content else { return nil }
        return Array(nodes)
    }
}
