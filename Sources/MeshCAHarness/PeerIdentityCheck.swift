import MeshCACore
import X509

/// The SPIFFE rules one side applies to its peer's leaf after OpenSSL validated the path (X509-SVID
/// standard, section 5): exactly one URI SAN holding a SPIFFE ID, in the trust domain of the verifying
/// side's bundle, equal to the expected ID when one is given, and the leaf profile (CA=false, KeyUsage).
struct PeerIdentityCheck: Sendable {
    /// The side doing the checking.
    let verifier: HandshakeReport.Role
    /// The trust domain the peer must belong to; `nil` when the verifying side has no identity to take it from.
    let trustDomain: TrustDomain?
    /// Where ``trustDomain`` came from, for messages ("its own SPIFFE ID spiffe://...").
    let trustDomainSource: String
    /// The only SPIFFE ID accepted, when set.
    let expectedID: SPIFFEID?

    /// The flag that sets ``expectedID``: the client checks the server and vice versa.
    private var expectationFlag: String { verifier == .client ? "--expect-server-id" : "--expect-client-id" }
    private var peer: HandshakeReport.Role { verifier.peer }

    /// The peer's SPIFFE ID, or the failure naming the rule it broke.
    func evaluate(_ leaf: Certificate) -> Result<SPIFFEID, HandshakeFailure> {
        let uris = leaf.uriSANs
        guard uris.count == 1 else {
            let listed = uris.isEmpty ? "" : " (\(uris.joined(separator: ", ")))"
            return .failure(
                notAnSVID(
                    "The \(peer)'s certificate has \(uris.count) URI SANs\(listed); an X509-SVID carries exactly one, its SPIFFE ID, so the \(verifier) cannot tell who the \(peer) is.",
                    raw: "URI SAN count \(uris.count), expected 1"
                ))
        }
        guard let id = try? SPIFFEID(parsing: uris[0]) else {
            return .failure(
                notAnSVID(
                    "The \(peer)'s certificate names \(uris[0]), which is not a valid SPIFFE ID.",
                    raw: "URI SAN \(uris[0]) is not spiffe://<trust-domain>/<path>"
                ))
        }
        if let trustDomain, id.trustDomain != trustDomain {
            return .failure(
                HandshakeFailure(
                    .wrongTrustDomain, detectedBy: verifier,
                    cause:
                        "The \(peer) is \(id.uri), in trust domain \(id.trustDomain.name), but the \(verifier) accepts only trust domain \(trustDomain.name) (from \(trustDomainSource)).",
                    fix:
                        "Issue the \(peer)'s certificate from the \(trustDomain.name) CA (`meshca issue` with that CA's state), or, if \(id.trustDomain.name) is meant to be trusted, federate the two trust domains explicitly instead of mixing roots.",
                    rawReason:
                        "SPIFFE check: trust domain \(id.trustDomain.name) != \(trustDomain.name) (chain verified: OpenSSL accepted the path)"
                ))
        }
        if let expectedID, expectedID != id {
            return .failure(
                HandshakeFailure(
                    .unexpectedPeerID, detectedBy: verifier,
                    cause:
                        "The \(peer) is \(id.uri), but the \(verifier) expects \(expectedID.uri) (\(expectationFlag)).",
                    fix:
                        "Connect to the workload that runs as \(expectedID.uri), or correct \(expectationFlag) (in Istio, the subjectAltNames or principals that name this service account).",
                    rawReason: "SPIFFE check: peer ID \(id.uri) != expected \(expectedID.uri)"
                ))
        }
        if case .failsToMeetPolicy(let reason) = SPIFFEVerifierPolicy.evaluate(
            leaf: leaf, trustDomain: id.trustDomain, expectedID: nil)
        {
            return .failure(
                notAnSVID(
                    "The \(peer)'s certificate \(id.uri) is not a valid X509-SVID leaf: \(reason).",
                    raw: "SPIFFE check: \(reason)"
                ))
        }
        return .success(id)
    }

    private func notAnSVID(_ cause: String, raw: String) -> HandshakeFailure {
        HandshakeFailure(
            .notAnSVID, detectedBy: verifier, cause: cause,
            fix: "Issue the \(peer)'s certificate from a SPIFFE CA (`meshca issue`), not a plain TLS certificate.",
            rawReason: raw
        )
    }
}
