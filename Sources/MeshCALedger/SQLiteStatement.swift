import CSQLite

/// One prepared SQL statement: values go in through `bind`, never by splicing them into the SQL text.
///
/// Not thread-safe; it lives only inside a call that holds the ledger's connection lock (it hands its compiled
/// statement back to the connection's cache when it goes away, so it must not outlive that call).
package final class SQLiteStatement: LedgerRow {
    /// A value bound to a `?` placeholder.
    package enum Value: Sendable, Equatable {
        case text(String)
        case integer(Int64)
        case blob([UInt8])
        case null

        /// Text, or NULL for nil.
        package static func text(_ value: String?) -> Value { value.map(Value.text) ?? .null }
        /// An integer, or NULL for nil.
        package static func integer(_ value: Int64?) -> Value { value.map(Value.integer) ?? .null }
    }

    private let handle: OpaquePointer
    private let connection: SQLiteConnection
    private let operation: String
    private let sql: String

    /// Compiles `sql` (or reuses the connection's idle compilation of it); `operation` names the caller's intent
    /// in any error ("query issuances").
    init(_ sql: String, on connection: SQLiteConnection, operation: String) throws {
        if let idle = connection.takeIdleStatement(sql) {
            self.handle = idle
        } else {
            var handle: OpaquePointer?
            let resultCode = sqlite3_prepare_v2(connection.handle, sql, -1, &handle, nil)
            guard resultCode == SQLITE_OK, let handle else {
                sqlite3_finalize(handle)
                throw connection.failure(resultCode, operation: operation)
            }
            self.handle = handle
        }
        self.connection = connection
        self.operation = operation
        self.sql = sql
    }

    deinit { connection.returnStatement(sql, handle) }

    /// Binds `values` to the placeholders `?1`, `?2`, ... in order.
    func bind(_ values: [Value]) throws {
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            let resultCode: Int32
            switch value {
            case .text(let string):
                // An explicit byte length keeps the whole string even if it contains NUL characters;
                // SQLITE_TRANSIENT makes SQLite copy it, because the C string dies when the closure returns.
                resultCode = string.withCString {
                    sqlite3_bind_text(handle, index, $0, Int32(string.utf8.count), csqlite_transient())
                }
            case .integer(let integer):
                resultCode = sqlite3_bind_int64(handle, index, integer)
            case .blob(let bytes) where bytes.isEmpty:
                // sqlite3_bind_blob with a nil pointer would bind NULL, which NOT NULL columns refuse.
                resultCode = sqlite3_bind_zeroblob(handle, index, 0)
            case .blob(let bytes):
                resultCode = bytes.withUnsafeBytes {
                    sqlite3_bind_blob(handle, index, $0.baseAddress, Int32($0.count), csqlite_transient())
                }
            case .null:
                resultCode = sqlite3_bind_null(handle, index)
            }
            guard resultCode == SQLITE_OK else { throw connection.failure(resultCode, operation: operation) }
        }
    }

    /// Advances to the next row; false once the statement is done.
    func step() throws -> Bool {
        switch sqlite3_step(handle) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        case let resultCode: throw connection.failure(resultCode, operation: operation)
        }
    }

    /// Runs a statement that returns no rows (INSERT, UPDATE, ...).
    func run() throws {
        while try step() {}
    }

    /// Every remaining row, each turned into a value by `read`.
    func rows<Row>(_ read: (SQLiteStatement) throws -> Row) throws -> [Row] {
        var rows: [Row] = []
        while try step() { rows.append(try read(self)) }
        return rows
    }

    /// The text in column `index` (0-based) of the current row; "" for NULL.
    package func text(_ index: Int32) -> String {
        // sqlite3_column_text must come before sqlite3_column_bytes so the length is that of the UTF-8 form.
        guard let bytes = sqlite3_column_text(handle, index) else { return "" }
        let count = Int(sqlite3_column_bytes(handle, index))
        return String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
    }

    /// The text in column `index`, or nil for NULL.
    package func optionalText(_ index: Int32) -> String? {
        isNull(index) ? nil : text(index)
    }

    /// The integer in column `index`; 0 for NULL.
    package func integer(_ index: Int32) -> Int64 {
        sqlite3_column_int64(handle, index)
    }

    /// The integer in column `index`, or nil for NULL.
    package func optionalInteger(_ index: Int32) -> Int64? {
        isNull(index) ? nil : integer(index)
    }

    /// The bytes in column `index`; empty for NULL or a zero-length blob.
    package func blob(_ index: Int32) -> [UInt8] {
        guard let bytes = sqlite3_column_blob(handle, index) else { return [] }
        let count = Int(sqlite3_column_bytes(handle, index))
        return Array(UnsafeRawBufferPointer(start: bytes, count: count))
    }

    /// Column `index` as the value it holds, whatever its type.
    func value(_ index: Int32) -> Value {
        switch sqlite3_column_type(handle, index) {
        case SQLITE_NULL: .null
        case SQLITE_INTEGER: .integer(integer(index))
        case SQLITE_BLOB: .blob(blob(index))
        default: .text(text(index))
        }
    }

    private func isNull(_ index: Int32) -> Bool {
        sqlite3_column_type(handle, index) == SQLITE_NULL
    }
}
