import Foundation
import MeshCALedger
import MeshCATestSupport
import Testing

/// What a root rotation asks of the ledger: which certificates of a root are still in use, and which were superseded.
@Suite("Ledger queries of a root rotation: certificates in use, superseded ones")
struct RootRotationLedgerTests {
    static let oldRoot = String(repeating: "ef", count: 32)  // the fixtures' issuer
    static let newRoot = String(repeating: "a1", count: 32)

    @Test("Certificates in use: unexpired, unrevoked and not renewed over mTLS; those renewed are counted apart", arguments: LedgerEngine.all)
    func certificatesInUse(_ engine: LedgerEngine) async throws {
        try await withLedger(engine) { ledger async throws in
            func record(_ serial: String, _ sa: String, at hours: Double, renewing: String? = nil, issuer: String = Self.oldRoot)
                async throws
            {
                var record = IssuanceRecord.fixture(
                    serial: serial, serviceAccount: sa, issuedAt: at(hours * 3600), notAfter: at(hours * 3600 + 86_400))
                record.issuerFingerprint = issuer
                if let renewing {
                    record.requester = "mtls:\(renewing)"
                    record.authMethod = "mtls"
                }
                try await ledger.record(record)
            }
            try await record("01", "web", at: 0)
            try await record("02", "web", at: 12, renewing: "01")  // renewed under the old root: 01 is replaced, 02 is not
            try await record("03", "web", at: 24, renewing: "02", issuer: Self.newRoot)  // 02 renewed onto the new root
            try await record("11", "db", at: 6)
            try await record("12", "db", at: 18, renewing: "11")
            try await record("21", "batch", at: 20)
            try await record("22", "batch", at: 21, renewing: "2100")  // a serial that merely starts like 21's
            try await record("31", "gone", at: 22)
            _ = try await ledger.revoke(serial: "31", reason: "keyCompromise", at: at(22.5 * 3600))
            try await record("41", "bridge", at: 2)

            let result = try await ledger.certificatesInUse(issuedBy: Self.oldRoot, excluding: ["41"], now: at(25 * 3600))
            // 01 expired at 24; 02 and 11 renewed; 31 revoked; 41 excluded; 03 is the new root's.
            #expect(result.inUse.map(\.serial) == ["22", "21", "12"])  // latest expiry first
            #expect(result.renewed == 2)
            #expect(result.inUse.first { $0.serial == "12" }?.requester == "mtls:11")
            #expect(result.inUse.first { $0.serial == "21" }?.issuedAt == at(20 * 3600))
        }
    }

    @Test("Revoked certificates are counted by requester and reason while unexpired", arguments: LedgerEngine.all)
    func revokedCount(_ engine: LedgerEngine) async throws {
        try await withLedger(engine) { ledger async throws in
            for (serial, hours) in [("01", 0.0), ("02", 10), ("03", 20)] {
                var record = IssuanceRecord.fixture(serial: serial, issuedAt: at(hours * 3600), notAfter: at(hours * 3600 + 86_400))
                record.requester = "meshca-serve"
                record.authMethod = "internal"
                try await ledger.record(record)
            }
            _ = try await ledger.revoke(serial: "01", reason: "superseded", at: at(10 * 3600))
            _ = try await ledger.revoke(serial: "02", reason: "superseded", at: at(20 * 3600))
            _ = try await ledger.revoke(serial: "03", reason: "keyCompromise", at: at(21 * 3600))
            func count(at hours: Double) async throws -> Int {
                try await ledger.revokedCount(
                    issuedBy: Self.oldRoot, requester: "meshca-serve", reason: "superseded", now: at(hours * 3600))
            }
            #expect(try await count(at: 22) == 2)
            #expect(try await count(at: 25) == 1)  // 01 expired at 24
        }
    }
}
