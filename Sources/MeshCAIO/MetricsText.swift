/// A few metrics in the Prometheus text exposition format (version 0.0.4), for values that are rendered when
/// scraped (the agent's status, `/proc/self`) rather than kept in a registry.
public struct MetricsText: Sendable {
    /// The text so far.
    public private(set) var output = ""
    private var described: Set<String> = []

    /// An empty page.
    public init() {}

    /// One gauge sample; `# HELP` and `# TYPE` are written before the first sample of each name.
    public mutating func gauge(_ name: String, help: String, labels: [(String, String)] = [], value: Double) {
        sample(name, type: "gauge", help: help, labels: labels, value: value)
    }

    /// One counter sample (the name should end in `_total`).
    public mutating func counter(_ name: String, help: String, labels: [(String, String)] = [], value: Double) {
        sample(name, type: "counter", help: help, labels: labels, value: value)
    }

    private mutating func sample(_ name: String, type: String, help: String, labels: [(String, String)], value: Double) {
        if described.insert(name).inserted {
            output += "# HELP \(name) \(Self.escapeHelp(help))\n# TYPE \(name) \(type)\n"
        }
        let labelText = labels.isEmpty ? "" : "{" + labels.map { "\($0.0)=\"\(Self.escapeLabel($0.1))\"" }.joined(separator: ",") + "}"
        output += "\(name)\(labelText) \(Self.format(value))\n"
    }

    /// A value as Prometheus writes it: integers without a fraction, `+Inf`/`-Inf`/`NaN` spelled out.
    static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }

    /// Label values escape `\`, `"` and newlines (the format's rule).
    static func escapeLabel(_ value: String) -> String {
        var result = ""
        for character in value {
            switch character {
            case "\\": result += "\\\\"
            case "\"": result += "\\\""
            case "\n": result += "\\n"
            default: result.append(character)
            }
        }
        return result
    }

    private static func escapeHelp(_ help: String) -> String {
        help.replacing("\\", with: "\\\\").replacing("\n", with: "\\n")
    }
}
