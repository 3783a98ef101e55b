/// A DNS name an identity may ask for as a DNS SAN, by policy (`meshca serve --allow-dns-sans`): either one exact
/// name (`istiod.istio-system.svc`) or `*.` before a name (`*.example.internal`), which matches exactly one more
/// label (`a.example.internal`, not `example.internal` or `a.b.example.internal`), as a TLS wildcard does.
/// Names compare without regard to case; a requested name must itself be a plain DNS name (no `*`, no IP address).
public struct DNSNamePattern: Sendable, Hashable, CustomStringConvertible {
    /// The pattern, lowercased: a DNS name, or `*.` and a DNS name of at least two labels.
    public let text: String

    /// Parses a pattern; throws ``IssuanceErrorCode/invalidName`` naming the text, the rule and an example.
    public init(_ text: String) throws {
        let lowered = text.lowercased()
        let wildcard = lowered.hasPrefix("*.")
        let base = wildcard ? String(lowered.dropFirst(2)) : lowered
        var why = Self.nameProblem(base)
        if why == nil, wildcard, !base.contains(".") {
            why = "a wildcard needs at least two labels after \"*.\" (\"*.\(base)\" would match whole top-level domains)"
        }
        if let why {
            throw IssuanceError(
                .invalidName,
                "\"\(text.escapedForLog)\" is not a DNS name pattern: \(why). Write a DNS name or *. before one, e.g. "
                    + "istiod.istio-system.svc or *.example.internal.")
        }
        self.text = lowered
    }

    /// Whether `name` (a requested DNS SAN) is this name, or one label more than the wildcard's base.
    public func matches(_ name: String) -> Bool {
        let name = name.lowercased()
        guard Self.nameProblem(name) == nil else { return false }
        guard text.hasPrefix("*.") else { return name == text }
        let suffix = text.dropFirst(1)  // ".example.internal"
        guard name.hasSuffix(suffix) else { return false }
        let label = name.dropLast(suffix.count)
        return !label.isEmpty && !label.contains(".")
    }

    public var description: String { text }

    /// Why `name` is not a lowercase DNS name meshca puts in a certificate, or nil: labels of `a-z`, `0-9` and `-`
    /// (not at either end), 1 to 63 characters, at most 253 in all, and not an IPv4 address.
    public static func nameProblem(_ name: String) -> String? {
        if name.isEmpty { return "it is empty" }
        if name.utf8.count > 253 { return "it is longer than 253 characters" }
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789-.")
        if let bad = name.first(where: { !allowed.contains($0) }) {
            return "\"\(String(bad).escapedForLog)\" is not allowed (lowercase letters, digits, \"-\" and \".\" only)"
        }
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        for label in labels {
            if label.isEmpty { return "it has an empty label" }
            if label.count > 63 { return "the label \"\(label)\" is longer than 63 characters" }
            if label.hasPrefix("-") || label.hasSuffix("-") { return "the label \"\(label)\" starts or ends with \"-\"" }
        }
        if labels.last?.allSatisfy(\.isNumber) == true { return "it looks like an IP address, not a DNS name" }
        return nil
    }
}
