import Crypto
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SwiftASN1
import X509

/// Certificate signing requests for workload identities: building them (for `meshca issue` and the
/// agent) and checking the ones the CA receives.
public enum WorkloadCSR {
    /// A CSR the way istio-agent builds one: a critical SAN with the single SPIFFE URI (then `dnsNames`, which the
    /// CA grants only by its `allow-dns-sans` policy), signed with `key`. The subject is empty; the CA decides every
    /// field of the certificate anyway.
    public static func make(for identity: SPIFFEID, dnsNames: [String] = [], key: Certificate.PrivateKey) throws -> CertificateSigningRequest {
        let extensions = try Certificate.Extensions {
            Critical(SubjectAlternativeNames([.uniformResourceIdentifier(identity.uri)] + dnsNames.map { .dnsName($0) }))
        }
        return try CertificateSigningRequest(
            version: .v1,
            subject: DistinguishedName(),
            privateKey: key,
            attributes: CertificateSigningRequest.Attributes([
                try .init(ExtensionRequest(extensions: extensions))
            ]),
            signatureAlgorithm: try KeyType.signatureAlgorithm(for: key.publicKey)
        )
    }

    /// PEM text (`CERTIFICATE REQUEST`) of a CSR, ending in a newline.
    public static func pem(_ csr: CertificateSigningRequest) throws -> String {
        try csr.serializeAsPEM().pemString + "\n"
    }

    /// A parsed, signature-checked CSR together with the facts the ledger records about it.
    public struct Checked: Sendable {
        /// The request itself.
        public let request: CertificateSigningRequest
        /// SHA-256 of the CSR's DER encoding, lowercase hex.
        public let sha256: String
        /// The key type of the public key in the CSR (`ec-p256`, `rsa-2048`, ...).
        public let keyType: String
        /// The DNS SANs asked for, each allowed by a pattern, lowercased, without repeats, in the CSR's order.
        public let dnsNames: [String]
    }

    /// Parses PEM (CRLF line ends and a missing final newline are accepted), verifies the signature,
    /// checks the key type, and checks that the request asks for `identity` and nothing else.
    ///
    /// A CSR without any SAN is accepted (the certificate carries the authenticated identity, as istiod
    /// does); a CSR naming a different SPIFFE ID, several URIs, IP/e-mail SANs, a DNS SAN that no pattern in
    /// `allowedDNSNames` matches, or CA=true is refused, and so is one whose SAN or BasicConstraints extension
    /// cannot be decoded.
    public static func check(pem text: String, for identity: SPIFFEID, allowedDNSNames: [DNSNamePattern] = []) throws -> Checked {
        let normalized = normalizedPEM(text)
        guard !normalized.isEmpty else {
            throw IssuanceError(.malformedCSR, "The CSR is empty. Send a PEM-encoded PKCS#10 certificate request.")
        }
        let document: PEMDocument
        do {
            document = try PEMDocument(pemString: normalized)
        } catch {
            throw IssuanceError(
                .malformedCSR,
                "The CSR is not valid PEM (expected one \"-----BEGIN CERTIFICATE REQUEST-----\" block): \(error)."
            )
        }
        guard document.discriminator == "CERTIFICATE REQUEST" || document.discriminator == "NEW CERTIFICATE REQUEST" else {
            throw IssuanceError(
                .malformedCSR,
                "The PEM block is a \"\(document.discriminator)\", not a \"CERTIFICATE REQUEST\". Send the CSR, not a key or certificate."
            )
        }
        let csr: CertificateSigningRequest
        do {
            csr = try CertificateSigningRequest(derEncoded: document.derBytes)
        } catch {
            if let bits = CSRKeySize.rsaBits(csrDER: document.derBytes), bits < 2048 {
                throw IssuanceError(.unsupportedKey, "The CSR's key is RSA-\(bits); RSA keys must have 2048 to 8192 bits. Generate a larger key (or use ECDSA P-256).")
            }
            throw IssuanceError(.malformedCSR, "The CSR could not be parsed as PKCS#10 (\(error)).")
        }
        guard csr.publicKey.isValidSignature(csr.signature, for: csr) else {
            throw IssuanceError(
                .badCSRSignature,
                "The CSR's signature does not verify with the public key it carries; it was altered or signed with another key. Build a new CSR."
            )
        }
        guard let keyType = KeyType.of(csr.publicKey) else {
            throw IssuanceError(.unsupportedKey, "The CSR's key is not accepted: \(KeyType.refusal(for: csr.publicKey)).")
        }
        let dnsNames = try checkExtensions(of: csr, for: identity, allowedDNSNames: allowedDNSNames)
        return Checked(request: csr, sha256: Hex.encode(SHA256.hash(data: document.derBytes)), keyType: keyType, dnsNames: dnsNames)
    }

    /// `text` with CRLF line ends turned into LF and surrounding whitespace removed: the same result as
    /// `replacingOccurrences(of: "\r\n", with: "\n").trimmed`, computed
    /// on the UTF-8 bytes. Only when a non-ASCII character borders the text (it might be Unicode whitespace)
    /// does Foundation decide.
    static func normalizedPEM(_ text: String) -> String {
        func isASCIIWhitespace(_ byte: UInt8) -> Bool { byte == 0x20 || (0x09...0x0D).contains(byte) }
        var bytes = Array(text.utf8)
        if bytes.contains(UInt8(ascii: "\r")) {
            var joined: [UInt8] = []
            joined.reserveCapacity(bytes.count)
            for (index, byte) in bytes.enumerated() where !(byte == UInt8(ascii: "\r") && index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "\n")) {
                joined.append(byte)
            }
            bytes = joined
        }
        var start = 0
        var end = bytes.count
        while start < end, isASCIIWhitespace(bytes[start]) { start += 1 }
        while end > start, isASCIIWhitespace(bytes[end - 1]) { end -= 1 }
        if start < end, bytes[start] >= 0x80 || bytes[end - 1] >= 0x80 {
            return text.replacing("\r\n", with: "\n").trimmed
        }
        return String(decoding: bytes[start..<end], as: UTF8.self)
    }

    /// Checks the CSR's extensions and returns the DNS names it asks for (all allowed).
    private static func checkExtensions(
        of csr: CertificateSigningRequest, for identity: SPIFFEID, allowedDNSNames: [DNSNamePattern]
    ) throws -> [String] {
        let extensionRequest: ExtensionRequest?
        do {
            extensionRequest = try csr.attributes.extensionRequest
        } catch {
            throw IssuanceError(.malformedCSR, "The CSR's extension request could not be parsed (\(error)).")
        }
        guard let extensions = extensionRequest?.extensions else { return [] }
        // An extension that is present but cannot be decoded is refused, never skipped: skipping it would
        // let a request hide a CA flag or a second name from these checks.
        let basicConstraints: BasicConstraints?
        do {
            basicConstraints = try extensions.basicConstraints
        } catch {
            throw IssuanceError(
                .malformedCSR,
                "The CSR's BasicConstraints extension (2.5.29.19) could not be parsed (\(error)). Workload CSRs need "
                    + "none: build the CSR without it, or with a DER-encoded CA=false."
            )
        }
        if case .isCertificateAuthority = basicConstraints {
            throw IssuanceError(
                .caRequested,
                "The CSR asks to be a certificate authority (BasicConstraints CA=true); meshca issues workload certificates only."
            )
        }
        let subjectAlternativeNames: SubjectAlternativeNames?
        do {
            subjectAlternativeNames = try extensions.subjectAlternativeNames
        } catch {
            throw IssuanceError(
                .malformedCSR,
                "The CSR's SubjectAlternativeName extension (2.5.29.17) could not be parsed (\(error)). Build the CSR "
                    + "with a DER-encoded SAN holding only the URI \(identity.uri), or with no SAN at all."
            )
        }
        guard let names = subjectAlternativeNames else { return [] }
        var uris: [String] = []
        var dnsNames: [String] = []
        for name in names {
            if case .dnsName(let dns) = name, !allowedDNSNames.isEmpty {
                guard allowedDNSNames.contains(where: { $0.matches(dns) }) else {
                    throw IssuanceError(
                        .forbiddenSAN,
                        "The CSR asks for \(GeneralName.describe(name).escapedForLog), but \(identity.uri) may have only DNS names "
                            + "matching \(allowedDNSNames.map(\.text).joined(separator: ", ")) (the CA's allow-dns-sans). Remove "
                            + "that name from the CSR, or ask the CA's operator to allow it.")
                }
                if !dnsNames.contains(dns.lowercased()) { dnsNames.append(dns.lowercased()) }
                continue
            }
            guard case .uniformResourceIdentifier(let uri) = name else {
                throw IssuanceError(
                    .forbiddenSAN,
                    "The CSR asks for \(GeneralName.describe(name).escapedForLog), but workload certificates carry only the SPIFFE ID "
                        + "\(identity.uri). Remove DNS, IP and e-mail SANs from the CSR"
                        + (name.isDNSName ? " (a DNS name needs the CA's allow-dns-sans policy for this identity)." : ".")
                )
            }
            uris.append(uri)
        }
        if uris.count > 1 {
            throw IssuanceError(
                .forbiddenSAN,
                "The CSR asks for \(uris.count) URI SANs (\(uris.joined(separator: ", "))); an X509-SVID has exactly one. Ask for \(identity.uri) only."
            )
        }
        if let uri = uris.first, uri != identity.uri {
            throw IssuanceError(
                .identityMismatch,
                "The CSR asks for \(uri), but the caller is authenticated as \(identity.uri). A workload can only get "
                    + "a certificate for its own identity; fix the agent's namespace, service account or trust domain."
            )
        }
        return dnsNames
    }
}

extension GeneralName {
    fileprivate var isDNSName: Bool {
        if case .dnsName = self { return true }
        return false
    }
}
