import Foundation

/// How an `IssuanceRecord` maps onto a row of the `issuances` table (see `0001_create_ledger.sql`,
/// `0002_join_tokens_and_peers.sql`).
extension IssuanceRecord {
    /// The columns in the order `parameters` binds them and `init(row:)` reads them.
    package static let columns = [
        "serial", "spiffe_id", "trust_domain", "namespace", "service_account", "sans",
        "not_before", "not_after", "issued_at", "requested_ttl_seconds", "granted_ttl_seconds",
        "key_type", "public_key_sha256", "csr_sha256", "certificate_der", "issuer_fingerprint",
        "requester", "auth_method", "revoked_at", "revocation_reason", "peer",
    ]

    /// `SELECT <columns> FROM issuances`, to be followed by a WHERE clause.
    package static let selectSQL = "SELECT \(columns.joined(separator: ", ")) FROM issuances"

    /// `INSERT INTO issuances (<columns>) VALUES (?, ...)`.
    package static let insertSQL =
        "INSERT INTO issuances (\(columns.joined(separator: ", "))) VALUES (\(columns.map { _ in "?" }.joined(separator: ", ")))"

    /// The values for `insertSQL`, in `columns` order.
    package func parameters() throws -> [SQLiteStatement.Value] {
        [
            .text(serial), .text(spiffeID), .text(trustDomain), .text(namespace), .text(serviceAccount),
            .text(try Self.encodeSANs(sans)),
            .integer(UnixTime.floor(notBefore)), .integer(UnixTime.floor(notAfter)), .integer(UnixTime.floor(issuedAt)),
            .integer(requestedTTLSeconds), .integer(grantedTTLSeconds),
            .text(keyType), .text(publicKeySHA256), .text(csrSHA256), .blob(certificateDER), .text(issuerFingerprint),
            .text(requester), .text(authMethod),
            .integer(revokedAt.map(UnixTime.floor)), .text(revocationReason), .text(peer),
        ]
    }

    /// Reads the current row of a statement that selected `columns`; `path` names the ledger in errors.
    package init(row: some LedgerRow, path: String) throws {
        let serial = row.text(0)
        self.init(
            serial: serial,
            spiffeID: row.text(1),
            trustDomain: row.text(2),
            namespace: row.text(3),
            serviceAccount: row.text(4),
            sans: try Self.decodeSANs(row.text(5), serial: serial, path: path),
            notBefore: UnixTime.date(row.integer(6)),
            notAfter: UnixTime.date(row.integer(7)),
            issuedAt: UnixTime.date(row.integer(8)),
            requestedTTLSeconds: row.optionalInteger(9),
            grantedTTLSeconds: row.integer(10),
            keyType: row.text(11),
            publicKeySHA256: row.text(12),
            csrSHA256: row.text(13),
            certificateDER: row.blob(14),
            issuerFingerprint: row.text(15),
            requester: row.text(16),
            authMethod: row.text(17),
            revokedAt: row.optionalInteger(18).map(UnixTime.date),
            revocationReason: row.optionalText(19),
            peer: row.text(20)
        )
    }

    /// Refuses serials that are not lowercase hex: prefix queries and uniqueness both depend on one spelling.
    package func validateSerial(path: String) throws {
        let isLowercaseHex = serial.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
        guard !serial.isEmpty, isLowercaseHex else {
            throw LedgerError(
                code: .other,
                message: "Could not record certificate '\(serial)' in the ledger at \(path): the serial must be "
                    + "lowercase hex without separators (e.g. '0a1b2c'). Nothing was recorded; fix the caller.")
        }
    }

    private static func encodeSANs(_ sans: [String]) throws -> String {
        let encoder = JSONEncoder()
        // SANs are mostly URIs; unescaped slashes keep the stored JSON readable in an sqlite3 shell.
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return String(decoding: try encoder.encode(sans), as: UTF8.self)
    }

    private static func decodeSANs(_ json: String, serial: String, path: String) throws -> [String] {
        do {
            return try JSONDecoder().decode([String].self, from: Data(json.utf8))
        } catch {
            throw LedgerError(
                code: .notALedger,
                message: "Could not read certificate \(serial) from the ledger at \(path): its sans column is not "
                    + "a JSON array of strings (\(error)). The ledger was edited by hand or is corrupt; restore it "
                    + "from a backup.")
        }
    }
}
