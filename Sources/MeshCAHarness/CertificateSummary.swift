import Foundation
import MeshCACore
import SwiftASN1
import X509

/// The facts about one certificate that explain a handshake: who it names, who issued it, when it is
/// valid and how much time it has left.
public struct CertificateSummary: Sendable, Codable, Equatable {
    /// The subject as RFC 4514 text; empty for a workload certificate (its name is the SPIFFE ID).
    public var subject: String
    /// The issuer as RFC 4514 text (`O=cluster.local` for a meshca root).
    public var issuer: String
    /// The URI SANs (a valid X509-SVID has exactly one, its SPIFFE ID).
    public var uriSANs: [String]
    /// Whether BasicConstraints says CA=true.
    public var isCA: Bool
    /// Whether subject and issuer are the same (a root).
    public var isSelfIssued: Bool
    /// The serial number, lowercase hex.
    public var serial: String
    /// Start of validity.
    public var notBefore: Date
    /// End of validity.
    public var notAfter: Date
    /// Seconds from the report's time to notAfter; negative once expired.
    public var secondsLeft: Int64
    /// SHA-256 of the DER encoding, lowercase hex.
    public var sha256: String

    // Explicit keys where `convertToSnakeCase` would split an acronym badly ("uriSANs" -> "uri_sa_ns").
    private enum CodingKeys: String, CodingKey {
        case subject, issuer
        case uriSANs = "uri_sans"
        case isCA = "is_ca"
        case isSelfIssued = "is_self_issued"
        case serial
        case notBefore = "not_before"
        case notAfter = "not_after"
        case secondsLeft = "seconds_left"
        case sha256
    }

    /// Summarizes `certificate` as of `now`.
    public init(_ certificate: Certificate, now: Date) {
        subject = certificate.subject.description
        issuer = certificate.issuer.description
        uriSANs = certificate.uriSANs
        if case .isCertificateAuthority = try? certificate.extensions.basicConstraints {
            isCA = true
        } else {
            isCA = false
        }
        isSelfIssued = certificate.subject == certificate.issuer
        serial = certificate.serialHex
        notBefore = certificate.notValidBefore
        notAfter = certificate.notValidAfter
        secondsLeft = Int64(certificate.notValidAfter.timeIntervalSince(now).rounded(.down))
        sha256 = certificate.sha256Fingerprint
    }

    /// Summarizes a DER certificate; `nil` when swift-certificates cannot parse it.
    init?(der: [UInt8], now: Date) {
        guard let certificate = try? Certificate(derEncoded: der) else { return nil }
        self.init(certificate, now: now)
    }

    /// The SPIFFE ID when the certificate has exactly one URI SAN.
    public var spiffeID: String? { uriSANs.count == 1 ? uriSANs[0] : nil }

    /// A short name for messages: the SPIFFE ID, else the subject, else the fingerprint prefix.
    public var name: String {
        if let spiffeID { return spiffeID }
        if !subject.isEmpty { return subject }
        return "certificate sha256:\(sha256.prefix(16))"
    }

    /// `leaf`, `intermediate CA` or `root CA`, for a position in a chain.
    func kind(atDepth depth: Int) -> String {
        if depth == 0 && !isCA { return "leaf" }
        return isSelfIssued ? "root CA" : "intermediate CA"
    }

    /// Time left at the report's time, as text: `23h59m left`, `expired 2d ago` or `not valid for another 5h`.
    public var timeLeftText: String {
        let now = notAfter.addingTimeInterval(-TimeInterval(secondsLeft))
        if now < notBefore {
            return "not valid for another \(HumanDuration.format(.seconds(Int64(notBefore.timeIntervalSince(now)))))"
        }
        if secondsLeft < 0 { return "expired \(HumanDuration.format(.seconds(-secondsLeft))) ago" }
        return "\(HumanDuration.format(.seconds(secondsLeft))) left"
    }

    /// `2026-01-02T03:04:05Z`, the format every message and the JSON use.
    static func timestamp(_ date: Date) -> String { date.formatted(.iso8601) }
}
