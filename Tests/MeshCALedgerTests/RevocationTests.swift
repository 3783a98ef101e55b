import Foundation
import MeshCALedger
import MeshCATestSupport
import Testing

@Suite("Revoking certificates", .timeLimit(.minutes(1)))
struct RevocationTests {
    @Test("A revocation is recorded once, keeps its first time and reason, and the chain still verifies", arguments: LedgerEngine.all)
    func revokeOnce(_ engine: LedgerEngine) async throws {
        try await withLedger(engine) { ledger async throws in
            try await ledger.record(.fixture(serial: "8f1a2b"))

            guard
                case .revoked(let record) = try await ledger.revoke(
                    serial: "8F:1A:2B", reason: "keyCompromise", at: at(120.7))
            else {
                Issue.record("expected .revoked")
                return
            }
            #expect(record.serial == "8f1a2b")
            #expect(record.revokedAt == at(120))
            #expect(record.revocationReason == "keyCompromise")

            guard
                case .alreadyRevoked(let again) = try await ledger.revoke(
                    serial: "8f1a2b", reason: "superseded", at: at(300))
            else {
                Issue.record("expected .alreadyRevoked")
                return
            }
            #expect(again.revokedAt == at(120))
            #expect(again.revocationReason == "keyCompromise")

            #expect(try await ledger.revoke(serial: "0badc0de", reason: "superseded", at: at(300)) == .unknownSerial)
            #expect(try await ledger.issuance(serial: "008f1a2b")?.revocationReason == "keyCompromise")

            let report = try await ledger.verifyChain()
            #expect(report.isIntact, "\(report.problems)")
            #expect(report.eventCount == 2)  // the issuance and one revocation: the refused ones appended nothing
            #expect(try await ledger.serials(IssuanceQuery(now: at(200), status: .revoked)) == ["8f1a2b"])
        }
    }

    @Test("Text that is not a serial is refused with a message that says where serials are listed", arguments: LedgerEngine.all)
    func notASerial(_ engine: LedgerEngine) async throws {
        try await withLedger(engine) { ledger async throws in
            do {
                _ = try await ledger.revoke(serial: "xyz", reason: "superseded", at: epoch)
                Issue.record("expected an error")
            } catch let error as LedgerError {
                #expect(error.message.contains("meshca audit list"))
            }
        }
    }

    @Test(
        "Serials are normalized the way the ledger stores them",
        arguments: [
            ("8F:1A:2B", "8f1a2b"), ("008f1a2b", "8f1a2b"), ("0x0A1B", "0a1b"), ("a1b", "0a1b"), ("00:80:01", "8001"),
            (" 0a 1b ", "0a1b"),
        ])
    func normalize(typed: String, stored: String) {
        #expect(SerialNumberText.normalize(typed) == stored)
    }

    @Test("Zero and non-hex text are not serials", arguments: ["", "00", "0g", "-1", "12-34"])
    func notSerials(typed: String) {
        #expect(SerialNumberText.normalize(typed) == nil)
    }

    @Test("The CRL entries are the revoked, unexpired certificates of one issuer", arguments: LedgerEngine.all)
    func crlEntries(_ engine: LedgerEngine) async throws {
        try await withLedger(engine) { ledger async throws in
            try await ledger.record(.fixture(serial: "01", notAfter: at(3600)))
            try await ledger.record(.fixture(serial: "02", notAfter: at(100)))  // expires before the CRL's time
            try await ledger.record(.fixture(serial: "03", notAfter: at(3600)))  // never revoked
            var foreign = IssuanceRecord.fixture(serial: "04", notAfter: at(3600))
            foreign.issuerFingerprint = String(repeating: "12", count: 32)
            try await ledger.record(foreign)
            for serial in ["01", "02", "04"] {
                _ = try await ledger.revoke(serial: serial, reason: "superseded", at: at(50))
            }
            let entries = try await ledger.revokedCertificates(
                issuerFingerprint: String(repeating: "EF", count: 32), notExpiredAt: at(200))
            #expect(entries.map(\.serial) == ["01"])
            #expect(entries.first?.reason == "superseded")
            #expect(entries.first?.revokedAt == at(50))
        }
    }

    @Test("The revocation poll reports revocations after a position, and nothing else", arguments: LedgerEngine.all)
    func poll(_ engine: LedgerEngine) async throws {
        try await withLedger(engine) { ledger async throws in
            let empty = try await ledger.revocations(after: 0)
            #expect(empty.head == 0 && !empty.revokedSince)
            try await ledger.record(.fixture(serial: "01"))
            let first = try await ledger.revocations(after: 0)
            #expect(first.head == 1 && !first.revokedSince)
            _ = try await ledger.revoke(serial: "01", reason: "superseded", at: at(10))
            let second = try await ledger.revocations(after: first.head)
            #expect(second.head == 2 && second.revokedSince)
            try await ledger.record(.fixture(serial: "02"))
            let third = try await ledger.revocations(after: second.head)
            #expect(third.head == 3 && !third.revokedSince)
        }
    }
}
