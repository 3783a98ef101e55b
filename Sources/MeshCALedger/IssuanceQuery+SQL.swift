import Foundation

/// Turns an `IssuanceQuery` into SQL over the `issuances` table.
///
/// Only fixed SQL fragments are concatenated; every value is a bound parameter.
extension IssuanceQuery {
    /// The full SELECT with its parameters. With a `limit` it selects the newest rows (descending), so the
    /// caller reverses them to return oldest first.
    package func statement() -> (sql: String, parameters: [SQLiteStatement.Value]) {
        var conditions: [String] = []
        var parameters: [SQLiteStatement.Value] = []
        func add(_ condition: String, _ values: SQLiteStatement.Value...) {
            conditions.append(condition)
            parameters.append(contentsOf: values)
        }

        if let namespace { add("namespace = ?", .text(namespace)) }
        if let serviceAccount { add("service_account = ?", .text(serviceAccount)) }
        if let serialPrefix, !serialPrefix.isEmpty {
            let prefix = serialPrefix.lowercased()
            add("serial >= ? AND serial < ?", .text(prefix), .text(prefix + "g"))
        }
        // Stored times are whole seconds; see UnixTime for why each bound is rounded the way it is.
        if let issuedSince { add("issued_at >= ?", .integer(UnixTime.ceiling(issuedSince))) }
        if let expiringWithin {
            let horizon = now.addingTimeInterval(UnixTime.seconds(expiringWithin))
            add("not_after >= ? AND not_after <= ?", .integer(UnixTime.ceiling(now)), .integer(UnixTime.floor(horizon)))
        }
        let notRevoked = "(revoked_at IS NULL OR revoked_at > ?)"
        switch status {
        case .revoked: add("revoked_at <= ?", .integer(UnixTime.floor(now)))
        case .expired: add("\(notRevoked) AND not_after < ?", .integer(UnixTime.floor(now)), .integer(UnixTime.ceiling(now)))
        case .valid: add("\(notRevoked) AND not_after >= ?", .integer(UnixTime.floor(now)), .integer(UnixTime.ceiling(now)))
        case nil: break
        }

        var sql = IssuanceRecord.selectSQL
        if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
        if let limit {
            sql += " ORDER BY issued_at DESC, rowid DESC LIMIT ?"
            parameters.append(.integer(Int64(max(limit, 0))))
        } else {
            sql += " ORDER BY issued_at, rowid"
        }
        return (sql, parameters)
    }
}
