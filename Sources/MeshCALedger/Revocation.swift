import Foundation

/// What `IssuanceLedger.revoke(serial:reason:at:)` found and did.
public enum RevocationOutcome: Sendable, Equatable {
    /// The certificate was not revoked before and now is; the record as it now stands.
    case revoked(IssuanceRecord)
    /// The certificate was already revoked; nothing changed. The record keeps the first revocation's time and
    /// reason.
    case alreadyRevoked(IssuanceRecord)
    /// No certificate with this serial is in the ledger; nothing changed.
    case unknownSerial
}

/// One entry of a certificate revocation list, as the ledger holds it.
public struct RevokedCertificate: Sendable, Equatable {
    /// The serial as the ledger stores it: lowercase hex without separators or leading zero bytes.
    public var serial: String
    /// The SPIFFE ID the certificate carried.
    public var spiffeID: String
    /// When it was revoked (whole seconds).
    public var revokedAt: Date
    /// The RFC 5280 CRLReason name recorded with it, e.g. "keyCompromise"; nil when none was recorded.
    public var reason: String?
    /// When the certificate expires; a CRL may drop the entry after this.
    public var notAfter: Date

    /// Creates an entry.
    public init(serial: String, spiffeID: String, revokedAt: Date, reason: String?, notAfter: Date) {
        self.serial = serial
        self.spiffeID = spiffeID
        self.revokedAt = revokedAt
        self.reason = reason
        self.notAfter = notAfter
    }
}

/// Certificate serial numbers as people type them, turned into the one spelling the ledger stores.
public enum SerialNumberText {
    /// The ledger's spelling of `text`: lowercase hex, no separators, no leading zero bytes (as
    /// swift-certificates holds a serial's magnitude, `Certificate.serialHex`).
    ///
    /// Accepts any case, `:` or space separators (as `openssl x509 -text` prints them) and leading zeros, so
    /// `00:8F:1A`, `8f1a` and `0x8f1a` all give `8f1a`; an odd number of digits is read with a leading zero
    /// (`f1a` gives `0f1a`). Returns nil when `text` holds anything but hex digits or its value is zero.
    public static func normalize(_ text: String) -> String? {
        var digits = text.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        if digits.hasPrefix("0x") { digits.removeFirst(2) }
        digits.removeAll { $0 == ":" || $0 == " " }
        guard !digits.isEmpty, digits.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
        else { return nil }
        if digits.count % 2 == 1 { digits = "0" + digits }
        while digits.hasPrefix("00") { digits.removeFirst(2) }
        return digits.isEmpty ? nil : digits
    }
}
