#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SwiftASN1
import X509

/// The DER pieces of a CRL that neither SwiftASN1 nor swift-certificates provide publicly: the algorithm
/// identifier, X.509 times, CRL entries and extensions, and reading a CRL back.
enum CRLEncoding {
    static let reasonCodeOID: ASN1ObjectIdentifier = [2, 5, 29, 21]
    static let crlNumberOID: ASN1ObjectIdentifier = [2, 5, 29, 20]
    static let ecdsaWithSHA256OID: ASN1ObjectIdentifier = [1, 2, 840, 10045, 4, 3, 2]
    static let ecdsaWithSHA384OID: ASN1ObjectIdentifier = [1, 2, 840, 10045, 4, 3, 3]
    static let sha256WithRSAOID: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 11]

    /// The signature algorithms a meshca CA signs with (see `KeyType.signatureAlgorithm(for:)`), and their OIDs.
    static let algorithms: [(algorithm: Certificate.SignatureAlgorithm, oid: ASN1ObjectIdentifier)] = [
        (.ecdsaWithSHA256, ecdsaWithSHA256OID), (.ecdsaWithSHA384, ecdsaWithSHA384OID),
        (.sha256WithRSAEncryption, sha256WithRSAOID),
    ]

    /// AlgorithmIdentifier: RSA carries NULL parameters, ECDSA none (RFC 5758 §3.2, RFC 4055 §5).
    static func serialize(_ algorithm: Certificate.SignatureAlgorithm, into coder: inout DER.Serializer) throws {
        guard let oid = algorithms.first(where: { $0.algorithm == algorithm })?.oid else {
            throw IssuanceError(.invalidSigner, "meshca cannot sign a CRL with \(algorithm).")
        }
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(oid)
            if oid == sha256WithRSAOID { try coder.serialize(ASN1Null()) }
        }
    }

    /// RFC 5280 §5.1.2.4: UTCTime through 2049, GeneralizedTime from 2050; whole seconds, UTC.
    static func serialize(time date: Date, into coder: inout DER.Serializer) throws {
        let parts = Calendar.utc.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        let (year, month, day) = (parts.year!, parts.month!, parts.day!)
        let (hours, minutes, seconds) = (parts.hour!, parts.minute!, parts.second!)
        if year < 2050 {
            try coder.serialize(
                UTCTime(year: year, month: month, day: day, hours: hours, minutes: minutes, seconds: seconds))
        } else {
            try coder.serialize(
                GeneralizedTime(
                    year: year, month: month, day: day, hours: hours, minutes: minutes, seconds: seconds,
                    fractionalSeconds: 0))
        }
    }

    /// A revokedCertificates entry: serial, revocationDate and, unless unspecified, the reasonCode extension.
    static func serialize(_ entry: CertificateRevocationList.Entry, into coder: inout DER.Serializer) throws {
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(entry.serialNumber.bytes)
            try serialize(time: entry.revocationDate, into: &coder)
            // RFC 5280 §5.3.1: "the reason code extension SHOULD be absent instead of using ... unspecified".
            if entry.reason != .unspecified {
                try coder.appendConstructedNode(identifier: .sequence) { coder in
                    let enumerated: [UInt8] = [0x0A, 0x01, entry.reason.code]
                    try coder.serialize(
                        Certificate.Extension(oid: reasonCodeOID, critical: false, value: enumerated[...]))
                }
            }
        }
    }

    /// authorityKeyIdentifier: the CA certificate's subject key identifier, or the RFC 5280 method 1 hash of its
    /// key when the certificate has none.
    static func authorityKeyIdentifier(of certificate: Certificate) throws -> Certificate.Extension {
        try Certificate.Extension(AuthorityKeyIdentifier(keyIdentifier: certificate.issuingKeyIdentifier), critical: false)
    }

    /// cRLNumber (non-critical, RFC 5280 §5.2.3).
    static func crlNumber(_ number: Int64) throws -> Certificate.Extension {
        var value = DER.Serializer()
        try value.serialize(Int(number))
        return Certificate.Extension(oid: crlNumberOID, critical: false, value: value.serializedBytes[...])
    }

    /// `date` with its fraction of a second dropped, as the encoding stores it.
    static func wholeSeconds(_ date: Date) -> Date {
        Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down))
    }

    /// What `parse` reads from a CRL.
    struct Parsed {
        var tbs: ArraySlice<UInt8>
        var algorithm: ASN1ObjectIdentifier
        var signature: ArraySlice<UInt8>
        var issuer: DistinguishedName
        var thisUpdate: Date
        var nextUpdate: Date
        var number: Int64
        var entries: [CertificateRevocationList.Entry]
    }

    static func parse(_ bytes: [UInt8]) throws -> Parsed {
        let root = try DER.parse(bytes)
        return try DER.sequence(root, identifier: .sequence) { nodes in
            guard let tbsNode = nodes.next(), let algorithmNode = nodes.next(), let signatureNode = nodes.next() else {
                throw IssuanceError(.malformedCRL, "A CRL is a SEQUENCE of tbsCertList, algorithm and signature.")
            }
            var parsed = try parseTBS(tbsNode)
            parsed.algorithm = try DER.sequence(algorithmNode, identifier: .sequence) { nodes in
                let oid = try ASN1ObjectIdentifier(derEncoded: &nodes)
                while nodes.next() != nil {}
                return oid
            }
            parsed.signature = try ASN1BitString(derEncoded: signatureNode).bytes
            return parsed
        }
    }

    private static func parseTBS(_ node: ASN1Node) throws -> Parsed {
        try DER.sequence(node, identifier: .sequence) { nodes in
            let version = try Int(derEncoded: &nodes)
            guard version == 1 else {
                throw IssuanceError(.malformedCRL, "Only v2 CRLs are read (version \(version)).")
            }
            _ = nodes.next()  // signature AlgorithmIdentifier; the outer one is authoritative
            guard let issuerNode = nodes.next() else {
                throw IssuanceError(.malformedCRL, "The CRL has no issuer name.")
            }
            let issuer = try DistinguishedName(derEncoded: issuerNode)
            let thisUpdate = try time(nodes.next())
            var rest: [ASN1Node] = []
            while let next = nodes.next() { rest.append(next) }
            guard let first = rest.first, first.identifier == .utcTime || first.identifier == .generalizedTime else {
                throw IssuanceError(
                    .malformedCRL, "The CRL has no nextUpdate; meshca writes and reads only CRLs with one.")
            }
            let nextUpdate = try time(first)
            rest.removeFirst()
            var entries: [CertificateRevocationList.Entry] = []
            var number: Int64 = -1
            for node in rest {
                if node.identifier == .sequence {
                    entries = try DER.sequence(node, identifier: .sequence) { nodes in
                        var entries: [CertificateRevocationList.Entry] = []
                        while let next = nodes.next() { entries.append(try entry(next)) }
                        return entries
                    }
                } else if node.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific) {
                    guard case .constructed(let inner) = node.content, let sequence = inner.first(where: { _ in true })
                    else { continue }
                    let extensions = try DER.sequence(
                        of: Certificate.Extension.self, identifier: .sequence, rootNode: sequence)
                    if let numberExtension = extensions.first(where: { $0.oid == crlNumberOID }) {
                        number = Int64(try Int(derEncoded: numberExtension.value))
                    }
                }
            }
            return Parsed(
                tbs: node.encodedBytes, algorithm: ecdsaWithSHA256OID, signature: [], issuer: issuer,
                thisUpdate: thisUpdate, nextUpdate: nextUpdate, number: number, entries: entries)
        }
    }

    private static func entry(_ node: ASN1Node) throws -> CertificateRevocationList.Entry {
        try DER.sequence(node, identifier: .sequence) { nodes in
            let serial = try ArraySlice<UInt8>(derEncoded: &nodes)
            let date = try time(nodes.next())
            var reason = RevocationReason.unspecified
            if let extensionsNode = nodes.next() {
                let extensions = try DER.sequence(
                    of: Certificate.Extension.self, identifier: .sequence, rootNode: extensionsNode)
                if let reasonCode = extensions.first(where: { $0.oid == reasonCodeOID }), reasonCode.value.count == 3 {
                    let code = reasonCode.value[reasonCode.value.startIndex + 2]
                    reason = RevocationReason.allCases.first { $0.code == code } ?? .unspecified
                }
            }
            return CertificateRevocationList.Entry(
                serialNumber: Certificate.SerialNumber(bytes: serial), revocationDate: date, reason: reason)
        }
    }

    private static func time(_ node: ASN1Node?) throws -> Date {
        guard let node else { throw IssuanceError(.malformedCRL, "A time is missing from the CRL.") }
        let parts: DateComponents
        if node.identifier == .utcTime {
            let time = try UTCTime(derEncoded: node)
            parts = DateComponents(
                year: time.year, month: time.month, day: time.day, hour: time.hours, minute: time.minutes,
                second: time.seconds)
        } else {
            let time = try GeneralizedTime(derEncoded: node)
            parts = DateComponents(
                year: time.year, month: time.month, day: time.day, hour: time.hours, minute: time.minutes,
                second: time.seconds)
        }
        guard let date = Calendar.utc.date(from: parts) else {
            throw IssuanceError(.malformedCRL, "A time in the CRL is not a valid date.")
        }
        return date
    }
}

extension Calendar {
    /// The Gregorian calendar in UTC, for X.509 times.
    ///
    /// `.gmt`, never `TimeZone(identifier: "UTC")`: the release binaries (`--static-swift-stdlib`, FoundationEssentials
    /// without ICU data) have no time zone database, and that initializer returns nil there, so the force unwrap
    /// killed `meshca-agent` with SIGILL on its first CRL fetch.
    static let utc: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = .gmt
        return calendar
    }()
}

extension CertificateRevocationList {
    /// Whether this CRL's signature verifies with `certificate`'s public key (the CA that should have signed
    /// it) and its issuer is that certificate's subject.
    public func isSigned(by certificate: Certificate) -> Bool {
        guard issuer == certificate.subject, let parsed = try? CRLEncoding.parse(derBytes),
            let algorithm = CRLEncoding.algorithms.first(where: { $0.oid == parsed.algorithm })?.algorithm
        else { return false }
        return certificate.publicKey.isValidSignature(parsed.signature, for: parsed.tbs, signatureAlgorithm: algorithm)
    }
}
