/// A SPIFFE ID, `spiffe://<trust-domain>/<path>`, validated by the SPIFFE-ID standard.
///
/// Workload identities issued by meshca have Istio's shape `spiffe://<td>/ns/<namespace>/sa/<service-account>`;
/// ``workload`` returns those two names when the path has that shape.
public struct SPIFFEID: Hashable, Sendable, CustomStringConvertible {
    /// The trust domain part.
    public let trustDomain: TrustDomain
    /// The path, starting with `/`, or empty for the trust domain's own ID.
    public let path: String

    /// The Istio identity for a Kubernetes service account. Both names are validated (DNS-1123).
    public init(trustDomain: TrustDomain, namespace: String, serviceAccount: String) throws {
        try KubernetesName.validate(namespace, as: .namespace)
        try KubernetesName.validate(serviceAccount, as: .serviceAccount)
        self.trustDomain = trustDomain
        self.path = "/ns/\(namespace)/sa/\(serviceAccount)"
    }

    /// Parses and validates a SPIFFE ID string; throws ``IssuanceErrorCode/invalidSPIFFEID`` saying what is wrong.
    public init(parsing string: String) throws {
        func fail(_ rule: String) -> IssuanceError {
            IssuanceError(.invalidSPIFFEID, "\"\(string)\" is not a valid SPIFFE ID: \(rule).")
        }
        let scheme = "spiffe://"
        guard string.lowercased().hasPrefix(scheme) else { throw fail("it must start with spiffe://") }
        if string.utf8.count > 2048 { throw fail("it is longer than 2048 bytes") }
        let rest = string.dropFirst(scheme.count)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let domain = String(rest[..<slash])
        if domain.contains(where: { "@:?#%".contains($0) }) {
            throw fail("the trust domain may not contain a port, user info, query, fragment or percent-encoding")
        }
        do {
            self.trustDomain = try TrustDomain(domain)
        } catch let error as IssuanceError {
            throw fail(error.message)
        }
        let path = String(rest[slash...])
        if !path.isEmpty {
            if path.hasSuffix("/") { throw fail("the path may not end with '/'") }
            for segment in path.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
                if segment.isEmpty { throw fail("the path has an empty segment") }
                if segment == "." || segment == ".." { throw fail("the path may not contain '.' or '..' segments") }
                if let bad = segment.first(where: { !($0.isASCII && ($0.isLetter || $0.isNumber || "-._".contains($0))) }) {
                    throw fail("character \"\(bad)\" is not allowed in the path; only a-z, A-Z, 0-9, '-', '.' and '_' are")
                }
            }
        }
        self.path = path
    }

    /// The namespace and service account when the path is exactly `/ns/<ns>/sa/<sa>` with valid names.
    public var workload: (namespace: String, serviceAccount: String)? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0].isEmpty, parts[1] == "ns", parts[3] == "sa" else { return nil }
        let namespace = String(parts[2])
        let serviceAccount = String(parts[4])
        guard (try? KubernetesName.validate(namespace, as: .namespace)) != nil,
            (try? KubernetesName.validate(serviceAccount, as: .serviceAccount)) != nil
        else { return nil }
        return (namespace, serviceAccount)
    }

    /// The URI form, `spiffe://td/path`.
    public var uri: String { "spiffe://\(trustDomain.name)\(path)" }
    public var description: String { uri }
}
