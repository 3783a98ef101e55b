import X509

/// A workload's certificate chain split the way Istio's agents read a `CreateCertificate` answer:
/// element 0 is the leaf, the middle elements are intermediates (one certificate each), and the last
/// element is the root bundle (one or more roots).
public struct CredentialBundle: Sendable {
    /// The workload certificate.
    public let leaf: Certificate
    /// Intermediates, signing CA first.
    public let intermediates: [Certificate]
    /// The trust bundle.
    public let roots: [Certificate]

    /// Splits Istio's `cert_chain`; refuses an answer with fewer than two elements (pilot-agent's
    /// "invalid empty CertChain") or unreadable PEM.
    public init(istioChain elements: [String]) throws {
        guard elements.count >= 2 else {
            throw IssuanceError(.malformedCSR, "The CA answered with \(elements.count) certificate element(s); a chain needs the leaf and the root bundle.")
        }
        func parse(_ text: String, _ what: String) throws -> [Certificate] {
            let certificates = (try? Certificate.parseAll(pem: text)) ?? []
            guard !certificates.isEmpty else {
                throw IssuanceError(.malformedCSR, "The CA's answer holds an unreadable \(what).")
            }
            return certificates
        }
        leaf = try parse(elements[0], "leaf certificate")[0]
        intermediates = try elements.dropFirst().dropLast().flatMap { try parse($0, "intermediate certificate") }
        roots = try parse(elements[elements.count - 1], "root bundle")
    }

    /// `cert-chain.pem`: leaf, intermediates, roots.
    public var certChainPEM: String { ([leaf] + intermediates + roots).map(\.pem).joined() }
    /// `root-cert.pem`: the roots only.
    public var bundlePEM: String { roots.map(\.pem).joined() }
}

extension CredentialBundle {
    /// A CA's `CreateCertificate` answer, split and accepted only when a client may use it: the leaf certifies
    /// `key`, exactly `identity` and exactly the DNS names asked for (`dnsNames`, usually none), and (when the client trusts the CA through a pinned root, as with a join
    /// token) the root bundle holds the root with SHA-256 `pinnedRootSHA256`. The one check of a CA's answer, for
    /// the agent and `meshca issue --server`; `ca` names the CA in the messages.
    public static func accepted(
        istioChain: [String], from ca: String, for identity: SPIFFEID, dnsNames: [String] = [], key: Certificate.PublicKey,
        pinnedRootSHA256: String?
    ) throws -> CredentialBundle {
        let bundle = try CredentialBundle(istioChain: istioChain)
        guard bundle.leaf.publicKey == key else {
            throw IssuanceError(.unacceptableAnswer, "The CA at \(ca) returned a certificate for a different key; it was discarded.")
        }
        guard bundle.leaf.uriSANs == [identity.uri] else {
            let names = bundle.leaf.uriSANs.isEmpty ? "no SPIFFE ID" : bundle.leaf.uriSANs.joined(separator: ", ")
            throw IssuanceError(
                .unacceptableAnswer, "The CA at \(ca) returned a certificate for \(names), not \(identity.uri); it was discarded.")
        }
        guard bundle.leaf.dnsSANs == dnsNames else {
            let got = bundle.leaf.dnsSANs.isEmpty ? "no DNS names" : "DNS names " + bundle.leaf.dnsSANs.joined(separator: ", ")
            let asked = dnsNames.isEmpty ? "none" : dnsNames.joined(separator: ", ") + " (--dns-name)"
            throw IssuanceError(
                .unacceptableAnswer, "The CA at \(ca) answered with \(got), not the \(asked) asked for; it was discarded.")
        }
        if let pinned = pinnedRootSHA256, !bundle.roots.contains(where: { $0.sha256Fingerprint == pinned }) {
            throw IssuanceError(
                .unacceptableAnswer,
                "The root bundle from \(ca) does not contain the root pinned by the join token; it was discarded.")
        }
        return bundle
    }
}
