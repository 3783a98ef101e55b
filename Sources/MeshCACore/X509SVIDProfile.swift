#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SwiftASN1
import X509

/// The X509-SVID leaf profile meshca issues, and the independent check of every signed result.
///
/// Profile: version 3, random 128-bit positive serial, empty subject (an empty SEQUENCE), exactly one URI
/// SAN (critical, because the subject is empty) followed by the DNS names allowed by policy, if any, KeyUsage digitalSignature (+ keyEncipherment for RSA keys
/// only; RFC 5480 forbids it on EC keys) critical, EKU serverAuth + clientAuth, BasicConstraints CA=false
/// critical, AKI = the issuer's SKI, and an SKI of its own.
enum X509SVIDProfile {
    static func extensions(
        identity: SPIFFEID,
        dnsNames: [String] = [],
        publicKey: Certificate.PublicKey,
        isRSA: Bool,
        issuerKeyIdentifier: ArraySlice<UInt8>
    ) throws -> Certificate.Extensions {
        try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true, keyEncipherment: isRSA))
            try ExtendedKeyUsage([.serverAuth, .clientAuth])
            Critical(SubjectAlternativeNames([.uniformResourceIdentifier(identity.uri)] + dnsNames.map { .dnsName($0) }))
            AuthorityKeyIdentifier(keyIdentifier: issuerKeyIdentifier)
            SubjectKeyIdentifier(hash: publicKey)
        }
    }

    /// Re-reads a freshly signed leaf and checks it against the profile, so a template bug can never
    /// reach a workload (SPIRE's credential validator does the same).
    static func validate(_ leaf: Certificate, identity: SPIFFEID, dnsNames: [String] = [], signer: SigningIdentity) throws {
        func fail(_ what: String) -> IssuanceError {
            IssuanceError(.signingFailed, "The signed certificate failed the X509-SVID self-check (\(what)); it was not issued. This is a meshca bug; please report it.")
        }
        let reparsed = try Certificate(derEncoded: leaf.derBytes)
        guard signer.certificate.publicKey.isValidSignature(reparsed.signature, for: reparsed) else {
            throw fail("signature does not verify with the CA key")
        }
        guard reparsed.issuer == signer.certificate.subject else { throw fail("issuer name") }
        guard reparsed.uriSANs == [identity.uri], reparsed.sanStrings == ["URI:\(identity.uri)"] + dnsNames.map({ "DNS:\($0)" }) else {
            throw fail("SAN")
        }
        guard let san = reparsed.extensions[oid: .X509ExtensionID.subjectAlternativeName], san.critical else {
            throw fail("SAN not critical")
        }
        guard case .notCertificateAuthority = try reparsed.extensions.basicConstraints,
            reparsed.extensions[oid: .X509ExtensionID.basicConstraints]?.critical == true
        else { throw fail("BasicConstraints") }
        guard let usage = try reparsed.extensions.keyUsage, usage.digitalSignature, !usage.keyCertSign, !usage.cRLSign,
            reparsed.extensions[oid: .X509ExtensionID.keyUsage]?.critical == true
        else { throw fail("KeyUsage") }
        guard let eku = try reparsed.extensions.extendedKeyUsage, eku.contains(.serverAuth), eku.contains(.clientAuth) else {
            throw fail("ExtendedKeyUsage")
        }
        guard reparsed.notValidAfter <= signer.certificate.notValidAfter else { throw fail("outlives its issuer") }
        // `bytes` is the unsigned magnitude; the DER encoder adds the 0x00 that keeps the INTEGER positive.
        let serial = reparsed.serialNumber.bytes
        guard serial.contains(where: { $0 != 0 }), serial.count <= 19 else { throw fail("serial number") }
    }
}
