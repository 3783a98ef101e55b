#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SwiftASN1
import X509

/// An X.509 v2 certificate revocation list (RFC 5280 §5), signed by the CA that issued the certificates it
/// lists. swift-certificates has no CRL type, so this builds the DER with SwiftASN1 and signs it with the CA's
/// `Certificate.PrivateKey`.
///
/// Profile: version v2; signature ECDSA-SHA256 / ECDSA-SHA384 / SHA256-RSA following the CA key (as for
/// certificates); issuer = the CA certificate's subject; `thisUpdate` and `nextUpdate` as UTCTime up to 2049,
/// GeneralizedTime from 2050; one entry per revoked certificate (serial, revocationDate, and a non-critical
/// reasonCode entry extension unless the reason is `unspecified`, which RFC 5280 says to leave out); CRL
/// extensions authorityKeyIdentifier (the CA's subject key identifier) and cRLNumber, both non-critical.
/// With no revoked certificates the revokedCertificates field is absent, as RFC 5280 requires.
public struct CertificateRevocationList: Sendable, Equatable {
    /// One revoked certificate.
    public struct Entry: Sendable, Equatable {
        /// The certificate's serial number.
        public var serialNumber: Certificate.SerialNumber
        /// When it was revoked; encoded in whole seconds.
        public var revocationDate: Date
        /// Why; `.unspecified` is encoded as no reasonCode extension.
        public var reason: RevocationReason

        /// Creates an entry.
        public init(serialNumber: Certificate.SerialNumber, revocationDate: Date, reason: RevocationReason) {
            self.serialNumber = serialNumber
            self.revocationDate = revocationDate
            self.reason = reason
        }
    }

    /// The whole CRL, DER encoded (what `/crl` serves as `application/pkix-crl`).
    public let derBytes: [UInt8]
    /// The issuer's distinguished name.
    public let issuer: DistinguishedName
    /// When this CRL was signed (whole seconds).
    public let thisUpdate: Date
    /// When the next CRL will be published at the latest; relying parties treat the CRL as stale after this.
    public let nextUpdate: Date
    /// The cRLNumber extension: increases with every CRL this CA signs.
    public let number: Int64
    /// The revoked certificates, in the order given.
    public let entries: [Entry]

    /// One PEM block (`-----BEGIN X509 CRL-----`), ending in a newline, as `openssl crl` reads and writes it.
    public var pem: String { PEMDocument(type: "X509 CRL", derBytes: derBytes).pemString + "\n" }

    /// Builds and signs a CRL listing `entries` with the key of `issuer`.
    ///
    /// - Parameters:
    ///   - number: the cRLNumber; must be at least 0 and larger than that of any CRL this CA signed before
    ///     (the caller keeps it monotonic, see the daemon's `CRLPublisher`).
    ///   - thisUpdate: the signing time; `nextUpdate` must be later.
    /// - Throws: `IssuanceError` `.invalidDuration` for times in the wrong order or a negative number,
    ///   `.signingFailed` when the key cannot sign.
    public static func sign(
        entries: [Entry], issuer: SigningIdentity, number: Int64, thisUpdate: Date, nextUpdate: Date
    ) throws -> CertificateRevocationList {
        guard nextUpdate > thisUpdate else {
            throw IssuanceError(
                .invalidDuration,
                "A CRL's nextUpdate (\(nextUpdate.formatted(.iso8601))) must be after its thisUpdate "
                    + "(\(thisUpdate.formatted(.iso8601))); give it a positive validity.")
        }
        guard number >= 0 else {
            throw IssuanceError(.invalidDuration, "A CRL number cannot be negative (got \(number)).")
        }
        let algorithm = issuer.signatureAlgorithm
        let whole: [UInt8]
        do {
            var tbs = DER.Serializer()
            try tbs.appendConstructedNode(identifier: .sequence) { coder in
                try coder.serialize(Int(1))  // Version v2
                try CRLEncoding.serialize(algorithm, into: &coder)
                try coder.serialize(issuer.certificate.subject)
                try CRLEncoding.serialize(time: thisUpdate, into: &coder)
                try CRLEncoding.serialize(time: nextUpdate, into: &coder)
                if !entries.isEmpty {
                    try coder.appendConstructedNode(identifier: .sequence) { coder in
                        for entry in entries { try CRLEncoding.serialize(entry, into: &coder) }
                    }
                }
                try coder.serialize(explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific) { coder in
                    try coder.appendConstructedNode(identifier: .sequence) { coder in
                        try coder.serialize(CRLEncoding.authorityKeyIdentifier(of: issuer.certificate))
                        try coder.serialize(CRLEncoding.crlNumber(number))
                    }
                }
            }
            let signature = try issuer.privateKey.sign(bytes: tbs.serializedBytes, signatureAlgorithm: algorithm)
            var list = DER.Serializer()
            try list.appendConstructedNode(identifier: .sequence) { coder in
                coder.serializeRawBytes(tbs.serializedBytes)
                try CRLEncoding.serialize(algorithm, into: &coder)
                try coder.serialize(ASN1BitString(bytes: signature.rawRepresentation[...]))
            }
            whole = list.serializedBytes
        } catch let error as IssuanceError {
            throw error
        } catch {
            throw IssuanceError(
                .signingFailed, "Could not sign the CRL with the CA key (\(error)). This is a meshca bug; report it.")
        }
        return CertificateRevocationList(
            derBytes: whole, issuer: issuer.certificate.subject, thisUpdate: CRLEncoding.wholeSeconds(thisUpdate),
            nextUpdate: CRLEncoding.wholeSeconds(nextUpdate), number: number,
            entries: entries.map {
                Entry(
                    serialNumber: $0.serialNumber, revocationDate: CRLEncoding.wholeSeconds($0.revocationDate),
                    reason: $0.reason)
            })
    }

    /// Reads a DER CRL back (fields only; the signature is not checked here, see `isSignedBy(_:)`).
    ///
    /// Entries whose reasonCode is not one of `RevocationReason` (e.g. certificateHold from another CA) read as
    /// `.unspecified`. Throws `IssuanceError` `.malformedCRL` for anything that is not a v2 CRL.
    public init(derEncoded bytes: [UInt8]) throws {
        do {
            let parsed = try CRLEncoding.parse(bytes)
            self.init(
                derBytes: bytes, issuer: parsed.issuer, thisUpdate: parsed.thisUpdate, nextUpdate: parsed.nextUpdate,
                number: parsed.number, entries: parsed.entries)
        } catch let error as IssuanceError {
            throw error
        } catch {
            throw IssuanceError(.malformedCRL, "The data is not a DER X.509 v2 CRL (\(error)).")
        }
    }

    /// Reads the first `X509 CRL` block of a PEM text.
    public init(pemEncoded text: String) throws {
        guard
            let document = try? PEMDocument.parseMultiple(pemString: text).first(where: {
                $0.discriminator == "X509 CRL"
            })
        else {
            throw IssuanceError(.malformedCRL, "The text holds no PEM block `-----BEGIN X509 CRL-----`.")
        }
        try self.init(derEncoded: document.derBytes)
    }

    /// Every CRL in `bytes`: each `X509 CRL` block of a PEM text (a `crl.pem` holds one per root during a root
    /// rotation), or else one DER CRL. Throws `IssuanceError` `.malformedCRL` when a CRL does not parse.
    public static func all(in bytes: [UInt8]) throws -> [CertificateRevocationList] {
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.contains("-----BEGIN X509 CRL-----") else { return [try CertificateRevocationList(derEncoded: bytes)] }
        let blocks: [PEMDocument]
        do {
            blocks = try PEMDocument.parseMultiple(pemString: text)
        } catch {
            throw IssuanceError(.malformedCRL, "The PEM text does not parse (\(error)).")
        }
        return try blocks.filter { $0.discriminator == "X509 CRL" }.map { try CertificateRevocationList(derEncoded: $0.derBytes) }
    }

    private init(
        derBytes: [UInt8], issuer: DistinguishedName, thisUpdate: Date, nextUpdate: Date, number: Int64,
        entries: [Entry]
    ) {
        self.derBytes = derBytes
        self.issuer = issuer
        self.thisUpdate = thisUpdate
        self.nextUpdate = nextUpdate
        self.number = number
        self.entries = entries
    }

    /// The entry for `serialNumber`, or nil when this CRL does not list it.
    public func entry(for serialNumber: Certificate.SerialNumber) -> Entry? {
        entries.first { $0.serialNumber == serialNumber }
    }
}

extension Certificate.SerialNumber {
    /// The serial spelled as hex digits (the ledger's form, `Certificate.serialHex`); nil for an odd number of
    /// digits or a non-hex character.
    public init?(hex: String) {
        let digits = Array(hex.utf8)
        guard !digits.isEmpty, digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let byte = UInt8(String(decoding: digits[index..<index + 2], as: UTF8.self), radix: 16) else {
                return nil
            }
            bytes.append(byte)
        }
        self.init(bytes: bytes)
    }
}
