import Foundation

/// The one table the benchmark prints, and the JSON results file with the same rows plus every detail.
struct BenchReport {
    /// One line of the table. Ratios are plain quotients: meshca ÷ cfssl and meshca ÷ bound.
    struct Row {
        var figure: String
        var unit: String
        var meshca: Double?
        var cfssl: Double?
        var bound: Double?

        var versusCFSSL: Double? { zip2(meshca, cfssl).map { $0.0 / $0.1 } }
        var versusBound: Double? { zip2(meshca, bound).map { $0.0 / $0.1 } }

        var json: [String: Any] {
            var row: [String: Any] = ["figure": figure, "unit": unit]
            let values = [("meshca", meshca), ("cfssl", cfssl), ("bound", bound), ("meshca_over_cfssl", versusCFSSL), ("meshca_over_bound", versusBound)]
            for (key, value) in values {
                if let value, value.isFinite { row[key] = value }
            }
            return row
        }
    }

    var rows: [Row] = []
    /// Sections of detail for the JSON file (per-level figures, samples, settings).
    var details: [String: Any] = [:]
    /// Notes printed under the table.
    var notes: [String] = []

    mutating func add(_ figure: String, _ unit: String, meshca: Double? = nil, cfssl: Double? = nil, bound: Double? = nil) {
        rows.append(Row(figure: figure, unit: unit, meshca: meshca, cfssl: cfssl, bound: bound))
    }

    /// The table as text.
    func render() -> String {
        let header = ["figure", "meshca", "cfssl", "bound", "meshca/cfssl", "meshca/bound"]
        let body = rows.map { row in
            ["\(row.figure) (\(row.unit))", Self.format(row.meshca), Self.format(row.cfssl), Self.format(row.bound), Self.ratio(row.versusCFSSL), Self.ratio(row.versusBound)]
        }
        let widths = header.indices.map { column in ([header] + body).map { $0[column].count }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == 0 ? cell.padding(toLength: widths[0], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[index] - cell.count) + cell
            }.joined(separator: "  ")
        }
        let rule = String(repeating: "-", count: widths.reduce(0, +) + 2 * (widths.count - 1))
        return ([line(header), rule] + body.map(line)).joined(separator: "\n") + "\n"
    }

    /// The JSON results document.
    func json(machine: [String: Any]) -> [String: Any] {
        ["machine": machine, "table": rows.map(\.json), "details": details, "notes": notes]
    }

    static func format(_ value: Double?) -> String {
        guard let value, value.isFinite else { return "-" }
        switch abs(value) {
        case 1000...: return String(format: "%.0f", value)
        case 100..<1000: return String(format: "%.1f", value)
        default: return String(format: "%.2f", value)
        }
    }

    static func ratio(_ value: Double?) -> String {
        guard let value, value.isFinite else { return "" }
        return String(format: value >= 10 ? "%.1fx" : "%.2fx", value)
    }
}
