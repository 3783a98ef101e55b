import Crypto
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SwiftASN1
import X509

extension Certificate {
    /// The DER encoding.
    public var derBytes: [UInt8] {
        var serializer = DER.Serializer()
        // Serializing a certificate that was parsed or signed cannot fail.
        try! serializer.serialize(self)
        return serializer.serializedBytes
    }

    /// One PEM block (`-----BEGIN CERTIFICATE-----`), ending in a newline.
    public var pem: String {
        PEMDocument(type: "CERTIFICATE", derBytes: derBytes).pemString + "\n"
    }

    /// Lowercase hex SHA-256 over the DER encoding: the certificate's fingerprint.
    public var sha256Fingerprint: String { Hex.encode(SHA256.hash(data: derBytes)) }

    /// The serial number as lowercase hex without separators (the ledger's key).
    public var serialHex: String { Hex.encode(serialNumber.bytes) }

    /// The key identifier of this CA certificate, which everything it signs carries as its authority key
    /// identifier: its SubjectKeyIdentifier, or the SHA-1 of its public key (RFC 5280 method 1) when it has none.
    var issuingKeyIdentifier: ArraySlice<UInt8> {
        (try? extensions.subjectKeyIdentifier)?.keyIdentifier ?? SubjectKeyIdentifier(hash: publicKey).keyIdentifier
    }

    /// The URI SANs, in order.
    public var uriSANs: [String] {
        guard let names = try? extensions.subjectAlternativeNames else { return [] }
        return names.compactMap { if case .uniformResourceIdentifier(let uri) = $0 { uri } else { nil } }
    }

    /// The DNS SANs, in order.
    public var dnsSANs: [String] {
        guard let names = try? extensions.subjectAlternativeNames else { return [] }
        return names.compactMap { if case .dnsName(let name) = $0 { name } else { nil } }
    }

    /// Every SAN as `TYPE:value` (`URI:spiffe://...`, `DNS:...`, `IP:...`, `email:...`).
    public var sanStrings: [String] {
        guard let names = try? extensions.subjectAlternativeNames else { return [] }
        return names.map(GeneralName.describe)
    }

    /// Parses every `CERTIFICATE` block in a PEM text, in order. Other block types are ignored.
    public static func parseAll(pem text: String) throws -> [Certificate] {
        try PEMDocument.parseMultiple(pemString: text)
            .filter { $0.discriminator == "CERTIFICATE" }
            .map { try Certificate(derEncoded: $0.derBytes) }
    }
}

extension Certificate.PublicKey {
    /// Lowercase hex SHA-256 over the SubjectPublicKeyInfo DER.
    public var sha256Fingerprint: String { Hex.encode(SHA256.hash(data: Array(subjectPublicKeyInfoBytes))) }
}

extension GeneralName {
    /// `URI:spiffe://...`, `DNS:name`, `IP:127.0.0.1`, `email:...`, or `other:...`.
    static func describe(_ name: GeneralName) -> String {
        switch name {
        case .uniformResourceIdentifier(let uri): return "URI:\(uri)"
        case .dnsName(let dns): return "DNS:\(dns)"
        case .rfc822Name(let mail): return "email:\(mail)"
        case .ipAddress(let octets):
            let bytes = Array(octets.bytes)
            if bytes.count == 4 { return "IP:" + bytes.map(String.init).joined(separator: ".") }
            return "IP:" + Hex.encode(bytes)
        default: return "other:\(name)"
        }
    }
}

/// Lowercase hexadecimal encoding.
public enum Hex {
    /// Encodes bytes as lowercase hex without separators.
    public static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Lowercase hex SHA-256 of `bytes`.
    public static func sha256(_ bytes: [UInt8]) -> String { encode(SHA256.hash(data: bytes)) }
}
