import Foundation
import MeshCALedger
import MeshCATestSupport
import Testing

@Suite("Expiry queries and database health (meshca doctor)")
struct LedgerExpiryTests {
    /// A 24h certificate for `sa`, issued `hoursAgo` before `epoch`.
    func daily(_ serial: String, _ sa: String, hoursAgo: Double, revokedAt: Date? = nil) -> IssuanceRecord {
        let issued = at(-hoursAgo * 3600)
        return .fixture(
            serial: serial, serviceAccount: sa, issuedAt: issued, notAfter: issued.addingTimeInterval(86_400),
            revokedAt: revokedAt)
    }

    @Test("Only an identity's newest certificate counts, and only once less than a third of its lifetime is left", arguments: LedgerEngine.all)
    func overdue(_ engine: LedgerEngine) async throws {
        try await withLedger(engine) { ledger async throws in
            try await ledger.record(daily("01", "stale", hoursAgo: 20))  // 4h of 24h left
            try await ledger.record(daily("02", "renewed", hoursAgo: 20))
            try await ledger.record(daily("03", "renewed", hoursAgo: 8))  // newest: 16h left
            try await ledger.record(daily("04", "fresh", hoursAgo: 1))
            try await ledger.record(daily("05", "revoked", hoursAgo: 20, revokedAt: at(-3600)))
            try await ledger.record(daily("06", "gone", hoursAgo: 30))  // expired 6h ago
            try await ledger.record(daily("07", "longgone", hoursAgo: 24 * 40))  // expired 39 days ago
            var serving = daily("08", "ignored", hoursAgo: 20)
            serving.spiffeID = ""
            try await ledger.record(serving)

            let (identities, total) = try await ledger.expiringIdentities(
                now: epoch, within: .seconds(30 * 86_400), limit: 10)
            #expect(identities.map(\.serial) == ["06", "01"], "soonest expiry first")
            #expect(total == 2)
            #expect(identities.last?.spiffeID == "spiffe://mesh.example/ns/payments/sa/stale")
            #expect(identities.last?.notAfter == at(4 * 3600))

            let capped = try await ledger.expiringIdentities(now: epoch, within: .seconds(30 * 86_400), limit: 1)
            #expect(capped.identities.count == 1 && capped.total == 2)
            let narrow = try await ledger.expiringIdentities(now: epoch, within: .seconds(3 * 3600), limit: 10)
            #expect(narrow.total == 0, "4h left and 6h ago are both outside a 3h window")
        }
    }

    @Test("The query reads issuances_by_spiffe_id and one row per identity, never scanning the table")
    func queryPlan() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let path = directory.file("ledger.db")
            _ = try SQLiteLedger(path: path)
            // The sqlite3 shell, independent of the code under test; unbound parameters are fine for a plan.
            let result = try await Command.run("sqlite3", [path, "EXPLAIN QUERY PLAN " + SQLiteLedger.expiringIdentitiesSQL])
            #expect(result.status == 0, "\(result.stderr)")
            let details = result.stdout.split(separator: "\n").map {
                $0.trimmingCharacters(in: CharacterSet(charactersIn: "|-` "))
            }
            #expect(details.contains("SCAN issuances USING COVERING INDEX issuances_by_spiffe_id"), "\(details)")
            #expect(
                details.contains {
                    $0.hasPrefix("SEARCH i USING INDEX issuances_by_spiffe_id (spiffe_id=? AND issued_at=?)")
                },
                "\(details)")
            #expect(!details.contains { $0.hasPrefix("SCAN") && !$0.contains("INDEX") && $0 != "SCAN n" }, "\(details)")
        }
    }

    @Test("The newest serving certificate is found by requester among certificates without a SPIFFE ID", arguments: LedgerEngine.all)
    func newestServing(_ engine: LedgerEngine) async throws {
        try await withLedger(engine) { ledger async throws in
            #expect(
                try await ledger.newestCertificateWithoutSPIFFEID(requester: "meshca-serve", authMethod: "internal")
                    == nil)
            for (serial, hoursAgo) in [("0a", 30.0), ("0b", 2.0), ("0c", 10.0)] {
                var record = daily(serial, "x", hoursAgo: hoursAgo)
                record.spiffeID = ""
                record.requester = "meshca-serve"
                record.authMethod = "internal"
                try await ledger.record(record)
            }
            try await ledger.record(daily("0d", "workload", hoursAgo: 0))
            let newest = try await ledger.newestCertificateWithoutSPIFFEID(
                requester: "meshca-serve", authMethod: "internal")
            #expect(newest?.serial == "0b")
        }
    }

    @Test("health() reports quick_check ok, the schema version and the file sizes", arguments: LedgerEngine.all)
    func health(_ engine: LedgerEngine) async throws {
        try await withLedger(engine) { ledger async throws in
            try await ledger.record(daily("01", "web", hoursAgo: 1))
            let health = try await ledger.health()
            #expect(health.isIntact)
            #expect(health.quickCheck == ["ok"])
            #expect(health.schemaVersion == health.latestSchemaVersion)
            #expect(health.databaseBytes > 0)
            if engine == .sqlite {
                #expect(health.walBytes > 0, "the ledger runs in WAL mode and has just written")
            } else {
                #expect(health.walBytes == 0, "the server's write-ahead log is not the ledger's")
            }
        }
    }
}
