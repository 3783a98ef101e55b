import CSQLite
import Foundation

/// A plain sqlite3 connection, independent of the code under test, for inspecting and tampering with a ledger.
final class RawDatabase {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    private let handle: OpaquePointer

    init(path: String) throws {
        var handle: OpaquePointer?
        let resultCode = sqlite3_open_v2(path, &handle, SQLITE_OPEN_READWRITE, nil)
        guard resultCode == SQLITE_OK, let handle else {
            sqlite3_close_v2(handle)
            throw Failure(description: "cannot open \(path): \(String(cString: sqlite3_errstr(resultCode)))")
        }
        sqlite3_busy_timeout(handle, 5_000)
        self.handle = handle
    }

    deinit { sqlite3_close_v2(handle) }

    /// Runs SQL that returns no rows.
    func execute(_ sql: String) throws {
        guard sqlite3_exec(handle, sql, nil, nil, nil) == SQLITE_OK else {
            throw Failure(description: "\(sql): \(String(cString: sqlite3_errmsg(handle)))")
        }
    }

    /// The first column of every row, as text.
    func strings(_ sql: String) throws -> [String] {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK else {
            throw Failure(description: "\(sql): \(String(cString: sqlite3_errmsg(handle)))")
        }
        defer { sqlite3_finalize(statement) }
        var values: [String] = []
        while true {
            switch sqlite3_step(statement) {
            case SQLITE_ROW: values.append(sqlite3_column_text(statement, 0).map { String(cString: $0) } ?? "NULL")
            case SQLITE_DONE: return values
            default: throw Failure(description: "\(sql): \(String(cString: sqlite3_errmsg(handle)))")
            }
        }
    }

    /// The first column of every row, as integers.
    func integers(_ sql: String) throws -> [Int64] {
        try strings(sql).map { Int64($0) ?? -1 }
    }
}
