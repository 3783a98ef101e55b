import SwiftASN1
import X509

/// A swift-certificates verifier policy for X509-SVID leaves (X509-SVID standard, section 4 and 5).
///
/// It claims the SubjectAlternativeName extension, which an SVID with an empty subject must mark
/// critical and which `RFC5280Policy` does not claim, so a chain with a critical SAN can validate. It
/// then requires exactly one URI SAN in the leaf, a SPIFFE ID in `trustDomain` with a non-root path,
/// CA=false, and KeyUsage with digitalSignature but neither keyCertSign nor cRLSign.
public struct SPIFFEVerifierPolicy: VerifierPolicy {
    /// The trust domain the leaf must belong to (the bundle's trust domain).
    public let trustDomain: TrustDomain
    /// When set, the only SPIFFE ID accepted.
    public let expectedID: SPIFFEID?

    public let verifyingCriticalExtensions: [ASN1ObjectIdentifier] = [.X509ExtensionID.subjectAlternativeName]

    /// A policy accepting any workload of `trustDomain`, or only `expectedID` when given.
    public init(trustDomain: TrustDomain, expectedID: SPIFFEID? = nil) {
        self.trustDomain = trustDomain
        self.expectedID = expectedID
    }

    public mutating func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) async -> PolicyEvaluationResult {
        Self.evaluate(leaf: chain.leaf, trustDomain: trustDomain, expectedID: expectedID)
    }

    /// The leaf checks alone, for callers that already validated the path.
    public static func evaluate(leaf: Certificate, trustDomain: TrustDomain, expectedID: SPIFFEID?) -> PolicyEvaluationResult {
        let uris = leaf.uriSANs
        guard uris.count == 1, let uri = uris.first else {
            return .failsToMeetPolicy(reason: "an X509-SVID has exactly one URI SAN, this leaf has \(uris.count)")
        }
        guard let id = try? SPIFFEID(parsing: uri) else {
            return .failsToMeetPolicy(reason: "the URI SAN \(uri) is not a valid SPIFFE ID")
        }
        guard id.trustDomain == trustDomain else {
            return .failsToMeetPolicy(
                reason: "the leaf is in trust domain \(id.trustDomain.name), the bundle is for \(trustDomain.name)"
            )
        }
        guard !id.path.isEmpty else {
            return .failsToMeetPolicy(reason: "the leaf's SPIFFE ID \(uri) has no path")
        }
        if let expectedID, expectedID != id {
            return .failsToMeetPolicy(reason: "the peer is \(id.uri), expected \(expectedID.uri)")
        }
        if case .isCertificateAuthority = try? leaf.extensions.basicConstraints {
            return .failsToMeetPolicy(reason: "the leaf is a CA certificate")
        }
        guard let usage = try? leaf.extensions.keyUsage, usage.digitalSignature, !usage.keyCertSign, !usage.cRLSign else {
            return .failsToMeetPolicy(reason: "the leaf's KeyUsage must include digitalSignature and not keyCertSign/cRLSign")
        }
        return .meetsPolicy
    }
}
