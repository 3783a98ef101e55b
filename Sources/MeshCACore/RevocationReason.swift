#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Why a certificate was revoked: the RFC 5280 §5.3.1 CRLReason values meshca accepts, by their RFC names.
///
/// `certificateHold` (6) and `removeFromCRL` (8) are not accepted: a hold is a revocation that may be undone,
/// and meshca's revocations are final (the ledger records one revocation per certificate and never clears it).
/// To suspend a workload, revoke its certificate and let it bootstrap again with a new join token.
public enum RevocationReason: String, Sendable, CaseIterable, CustomStringConvertible {
    case unspecified
    case keyCompromise
    case cACompromise
    case affiliationChanged
    case superseded
    case cessationOfOperation
    case privilegeWithdrawn
    case aACompromise

    /// The CRLReason code (the ENUMERATED value in a CRL entry's reasonCode extension).
    public var code: UInt8 {
        switch self {
        case .unspecified: 0
        case .keyCompromise: 1
        case .cACompromise: 2
        case .affiliationChanged: 3
        case .superseded: 4
        case .cessationOfOperation: 5
        case .privilegeWithdrawn: 9
        case .aACompromise: 10
        }
    }

    /// The RFC name, e.g. `keyCompromise`.
    public var description: String { rawValue }

    /// Reads a reason by its RFC 5280 name, ignoring case (`keycompromise` and `keyCompromise` are the same);
    /// an unknown name throws an error listing the accepted ones.
    public init(parsing text: String) throws {
        let wanted = text.trimmed.lowercased()
        guard let reason = Self.allCases.first(where: { $0.rawValue.lowercased() == wanted }) else {
            let hold = wanted == "certificatehold" || wanted == "removefromcrl"
            throw IssuanceError(
                .invalidRevocationReason,
                "\"\(text)\" is not a revocation reason meshca accepts. Use one of: "
                    + Self.allCases.map(\.rawValue).joined(separator: ", ") + " (RFC 5280 CRLReason names)."
                    + (hold
                        ? " meshca revocations are final, so certificateHold and removeFromCRL are not offered." : ""))
        }
        self = reason
    }
}
