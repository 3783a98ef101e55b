/// A SPIFFE trust domain such as `cluster.local`: the name every identity this CA issues lives under.
///
/// Validated by the SPIFFE ID rules (lowercase, at most 255 bytes) and, stricter than the spec, as a
/// DNS-style name (`a-z 0-9 - .`, no empty labels, no label starting or ending with `-`), because
/// py-spiffe and other clients reject anything else.
public struct TrustDomain: Hashable, Sendable, CustomStringConvertible {
    /// The trust domain name, e.g. `cluster.local`.
    public let name: String

    /// Validates `name`, throwing ``IssuanceErrorCode/invalidTrustDomain`` with the offending character.
    public init(_ name: String) throws {
        try Self.validate(name)
        self.name = name
    }

    /// `spiffe://<name>`: the trust domain's own SPIFFE ID, used as the bundle key in the Workload API.
    public var idString: String { "spiffe://\(name)" }
    public var description: String { name }

    private static func validate(_ name: String) throws {
        func fail(_ rule: String) -> IssuanceError {
            IssuanceError(
                .invalidTrustDomain,
                "Trust domain \"\(name)\" is not valid: \(rule). Use a lowercase DNS-style name such as cluster.local."
            )
        }
        if name.isEmpty { throw fail("it is empty") }
        if name.utf8.count > 255 { throw fail("it is \(name.utf8.count) bytes long, the limit is 255") }
        if name.hasPrefix("spiffe://") { throw fail("give the name without the spiffe:// scheme") }
        for (offset, char) in name.enumerated() {
            let ok = ("a"..."z").contains(char) || ("0"..."9").contains(char) || char == "-" || char == "."
            if !ok {
                let hint = char.isUppercase ? " (uppercase is not allowed)" : ""
                throw fail("character \"\(char)\" at position \(offset + 1) is not allowed\(hint); only a-z, 0-9, '-' and '.' are")
            }
        }
        for label in name.split(separator: ".", omittingEmptySubsequences: false) {
            if label.isEmpty { throw fail("it has an empty label (a leading, trailing or doubled '.')") }
            if label.hasPrefix("-") || label.hasSuffix("-") {
                throw fail("label \"\(label)\" starts or ends with '-'")
            }
            if label.utf8.count > 63 { throw fail("label \"\(label.prefix(16))...\" is longer than 63 characters") }
        }
    }
}
