import Foundation
import MeshCACore
import MeshCAErrors

/// Which identities may ask for which DNS names as DNS SANs (`meshca serve --allow-dns-sans 'ns/sa=pattern,...'`).
/// Everything not listed keeps the X509-SVID profile of a single URI SAN, and any DNS SAN is refused.
///
/// istiod's own serving certificate in the external-CA setup is the case it exists for:
/// `istio-system/istiod=istiod.istio-system.svc`.
public struct DNSSANPolicy: Sendable, Equatable {
    /// The patterns per service account, keyed `namespace/name`.
    public private(set) var patterns: [String: [DNSNamePattern]] = [:]

    /// No DNS SANs for anyone.
    public init() {}

    /// Parses `ns/sa=pattern` items (an account may appear in several); throws a ``SettingProblem``-style message
    /// naming the first bad item.
    public init(parsing items: [String]) throws(PolicyProblem) {
        for item in items {
            guard let equals = item.firstIndex(of: "=") else {
                throw PolicyProblem("\"\(item.escapedForLog)\" is not NAMESPACE/SERVICE-ACCOUNT=PATTERN")
            }
            let account = item[..<equals].trimmingCharacters(in: .whitespaces)
            if let why = DaemonConfiguration.nodeAccountProblem(account) { throw PolicyProblem("\"\(item.escapedForLog)\": \(why)") }
            let pattern: DNSNamePattern
            do {
                pattern = try DNSNamePattern(item[item.index(after: equals)...].trimmingCharacters(in: .whitespaces))
            } catch {
                throw PolicyProblem("\"\(item.escapedForLog)\": " + Self.rule(from: error))
            }
            if !(patterns[account]?.contains(pattern) ?? false) { patterns[account, default: []].append(pattern) }
        }
    }

    /// The patterns `identity` may ask for: those of its service account when it is a workload of `trustDomain`.
    public func patterns(for identity: SPIFFEID, in trustDomain: TrustDomain) -> [DNSNamePattern] {
        guard identity.trustDomain == trustDomain, let workload = identity.workload else { return [] }
        return patterns["\(workload.namespace)/\(workload.serviceAccount)"] ?? []
    }

    /// Whether no identity may have DNS SANs.
    public var isEmpty: Bool { patterns.isEmpty }

    /// `ns/sa=pattern` items, sorted, for logs and docs.
    public var items: [String] {
        patterns.keys.sorted().flatMap { account in patterns[account, default: []].map { "\(account)=\($0.text)" } }
    }

    /// The rule in a MeshCACore message ("... is not a DNS name pattern: RULE. Write ..."), without the rest.
    private static func rule(from error: any Error) -> String {
        let message = (error as? IssuanceError)?.message ?? "\(error)"
        guard let colon = message.range(of: ": ") else { return message }
        let rest = message[colon.upperBound...]
        return String(rest[..<(rest.range(of: ". ")?.lowerBound ?? rest.endIndex)])
    }

    /// Why an `allow-dns-sans` item is not usable.
    ///
    /// Not a ``CAError``: a clause the configuration loader puts into its sentence, with the key and the source.
    public struct PolicyProblem: CodedError {
        public let why: String
        init(_ why: String) { self.why = why }
        /// Always `invalid-dns-san-rule`.
        public var code: CAError.Code { .invalidDNSSANRule }
        /// The clause.
        public var message: String { why }
        public var description: String { why }
    }
}
