/// Validation of the Kubernetes names that make up an Istio workload identity.
///
/// Namespaces are DNS-1123 labels (`[a-z0-9-]`, at most 63, alphanumeric at both ends); service accounts
/// are DNS-1123 subdomains (`[a-z0-9.-]`, at most 253, alphanumeric at both ends of each label).
/// Every Kubernetes-valid pair fits the SPIFFE path `/ns/<ns>/sa/<sa>`.
public enum KubernetesName {
    /// Which part of the identity a name is, for the error message.
    public enum Kind: String, Sendable {
        case namespace = "Namespace"
        case serviceAccount = "Service account"
    }

    /// Throws ``IssuanceErrorCode/invalidName`` naming the first offending character and its position.
    public static func validate(_ value: String, as kind: Kind) throws {
        let maxLength = kind == .namespace ? 63 : 253
        func fail(_ rule: String) -> IssuanceError {
            let shape = kind == .namespace ? "a DNS-1123 label" : "a DNS-1123 subdomain"
            return IssuanceError(
                .invalidName,
                "\(kind.rawValue) \"\(value)\" is not valid: \(rule). It must be \(shape): lowercase letters, digits"
                    + (kind == .namespace ? " and '-'" : ", '-' and '.'")
                    + ", starting and ending with a letter or digit, at most \(maxLength) characters (e.g. \"web-api\")."
            )
        }
        if value.isEmpty { throw fail("it is empty") }
        if value.count > maxLength { throw fail("it is \(value.count) characters long") }
        for (offset, char) in value.enumerated() {
            let allowed =
                ("a"..."z").contains(char) || ("0"..."9").contains(char) || char == "-"
                || (char == "." && kind == .serviceAccount)
            if !allowed {
                let why = char.isUppercase ? "uppercase \"\(char)\"" : "character \"\(char)\""
                throw fail("\(why) at position \(offset + 1) is not allowed")
            }
        }
        let labels = kind == .namespace ? [Substring(value)] : value.split(separator: ".", omittingEmptySubsequences: false)
        for label in labels {
            guard let first = label.first, let last = label.last else {
                throw fail("it has an empty part between dots")
            }
            if !first.isLetterOrDigitASCII || !last.isLetterOrDigitASCII {
                throw fail("\"\(label)\" must start and end with a letter or digit")
            }
        }
    }
}

extension Character {
    fileprivate var isLetterOrDigitASCII: Bool { ("a"..."z").contains(self) || ("0"..."9").contains(self) }
}
