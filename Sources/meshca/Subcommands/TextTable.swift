import Foundation
import MeshCADaemon

/// A plain left-aligned text table, columns separated by two spaces, as `kubectl get` prints them.
///
/// Cells are escaped (`CommandText.escaped`): they show what requests sent (identities, refusal messages, peers),
/// and a newline or terminal control sequence in one must not forge a row or rewrite the screen.
struct TextTable {
    private let columns: [String]
    private var rows: [[String]] = []

    init(columns: [String]) {
        self.columns = columns
    }

    mutating func add(_ row: [String]) {
        rows.append(row.map(CommandText.escaped))
    }

    func render() -> String {
        let all = [columns] + rows
        let widths = columns.indices.map { index in all.map { $0[index].count }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ") + "\n"
        }.joined()
    }
}
