/// A row of a query result, read by column position (0-based), as either engine returns it: an SQLite statement's
/// current row, or a PostgreSQL row turned into values. The record types read themselves from one, so both engines
/// share one mapping of columns to fields.
package protocol LedgerRow {
    /// The text in column `index`; "" for NULL.
    func text(_ index: Int32) -> String
    /// The text in column `index`, or nil for NULL.
    func optionalText(_ index: Int32) -> String?
    /// The integer in column `index`; 0 for NULL.
    func integer(_ index: Int32) -> Int64
    /// The integer in column `index`, or nil for NULL.
    func optionalInteger(_ index: Int32) -> Int64?
    /// The bytes in column `index`; empty for NULL.
    func blob(_ index: Int32) -> [UInt8]
}

/// A row held as values (what a PostgreSQL row is turned into), read as ``LedgerRow``.
package struct LedgerValueRow: LedgerRow, Sendable {
    /// The columns, in selection order.
    package let values: [SQLiteStatement.Value]

    package init(_ values: [SQLiteStatement.Value]) { self.values = values }

    private func value(_ index: Int32) -> SQLiteStatement.Value {
        Int(index) < values.count ? values[Int(index)] : .null
    }

    package func text(_ index: Int32) -> String { optionalText(index) ?? "" }

    package func optionalText(_ index: Int32) -> String? {
        switch value(index) {
        case .text(let text): text
        case .integer(let integer): String(integer)
        case .blob(let bytes): String(decoding: bytes, as: UTF8.self)
        case .null: nil
        }
    }

    package func integer(_ index: Int32) -> Int64 { optionalInteger(index) ?? 0 }

    package func optionalInteger(_ index: Int32) -> Int64? {
        switch value(index) {
        case .integer(let integer): integer
        case .text(let text): Int64(text) ?? 0
        case .blob, .null: nil
        }
    }

    package func blob(_ index: Int32) -> [UInt8] {
        switch value(index) {
        case .blob(let bytes): bytes
        case .text(let text): Array(text.utf8)
        case .integer, .null: []
        }
    }
}
