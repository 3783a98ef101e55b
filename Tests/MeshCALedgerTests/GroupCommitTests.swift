import Foundation
import MeshCALedger
import MeshCATestSupport
import Testing

@Suite("Group commit: concurrent writes share one transaction", .timeLimit(.minutes(1)))
struct GroupCommitTests {
    @Test("200 concurrent records all succeed, all rows are there, and they took fewer than 200 commits")
    func batching() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let ledger = try SQLiteLedger(path: directory.file("ledger.db"))
            let count = 200
            let outcomes = await concurrently(count) { index in
                try await ledger.record(.fixture(serial: String(format: "0c%04x", index), issuedAt: at(Double(index))))
            }

            #expect(outcomes.allSatisfy { $0.succeeded }, "\(outcomes.failures)")
            let serials = try await ledger.allIssuances().map(\.serial)
            #expect(serials == (0..<count).map { String(format: "0c%04x", $0) })
            #expect(ledger.commitCount < count)
            #expect(ledger.commitCount >= 1)
        }
    }

    @Test("A failing write in a batch fails alone; the rest of its batch commits in one transaction")
    func oneFailureInBatch() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let path = directory.file("ledger.db")
            let ledger = try SQLiteLedger(path: path)
            let existing = IssuanceRecord.fixture(serial: "0d00")
            try await ledger.record(existing)
            let commitsBefore = ledger.commitCount

            // 0d00 is already recorded, 0d07 appears twice in the batch, one write is a rejection.
            let serials = ["0d01", "0d02", "0d00", "0d03", "0d07", "0d07", "0d04"]
            let outcomes = await inOneBatch(ledger, serials.count + 1) { index in
                if index == serials.count {
                    try await ledger.record(
                        RejectionRecord(
                            occurredAt: at(9), requester: "token:ci", authMethod: "token", requestedIdentity: "",
                            reasonCode: "bad-csr", message: "The CSR signature does not verify."))
                } else {
                    // Both 0d07 writes are the same record, so either may be the one that wins.
                    let first = serials.firstIndex(of: serials[index])!
                    try await ledger.record(.fixture(serial: serials[index], issuedAt: at(Double(first + 1))))
                }
            }

            #expect(ledger.commitCount == commitsBefore + 1)
            let failures = outcomes.indices.filter { !outcomes[$0].succeeded }
            #expect(failures == [2, 4] || failures == [2, 5], "the existing serial and one of the twins fail")
            for index in failures {
                let error = try #require(outcomes[index].ledgerError)
                #expect(error.code == .duplicateSerial)
                #expect(error.message.contains(serials[index]))
            }
            #expect(try await ledger.allIssuances().map(\.serial) == ["0d00", "0d01", "0d02", "0d03", "0d07", "0d04"])
            #expect(try await ledger.allIssuances().first == existing)
            #expect(try await ledger.rejections(since: nil, limit: nil).map(\.reasonCode) == ["bad-csr"])
        }
    }

    @Test("A disk-full failure that ends the group transaction fails every write in its batch and records none")
    func diskFullFailsWholeBatch() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let path = directory.file("ledger.db")
            let earlier = (1...3).map { IssuanceRecord.fixture(serial: "0\($0)", issuedAt: at(Double($0))) }
            do {
                let ledger = try SQLiteLedger(path: path)
                for record in earlier { try await ledger.record(record) }
            }
            var configuration = SQLiteLedger.Configuration()
            // SQLite raises a limit below the current size to the current size: no room to grow at all.
            configuration.maxPageCount = 1
            let full = try SQLiteLedger(path: path, configuration: configuration)

            // Small writes before and after one that cannot fit; SQLite gives up the whole transaction on it.
            let serials = ["0e01", "0e02", "0e0f", "0e03"]
            let outcomes = await inOneBatch(full, serials.count) { index in
                let der: [UInt8] = serials[index] == "0e0f" ? Array(repeating: 0x5a, count: 64 * 1024) : [0x30, 0x00]
                try await full.record(.fixture(serial: serials[index], issuedAt: at(10), certificateDER: der))
            }

            #expect(full.commitCount == 0)
            for (serial, outcome) in zip(serials, outcomes) {
                let error = try #require(outcome.ledgerError, "\(serial) must fail with its batch")
                #expect(error.code == .diskFull)
                #expect(error.message.contains("record certificate \(serial)"), "\(error.message)")
                #expect(error.message.contains("nothing was recorded"))
            }
            #expect(try await full.allIssuances() == earlier)

            // The small writes failed only because they shared the transaction: alone, they fit.
            let retried = await inOneBatch(full, 3) { index in
                let serial = ["0e01", "0e02", "0e03"][index]
                try await full.record(.fixture(serial: serial, issuedAt: at(10), certificateDER: [0x30, 0x00]))
            }
            #expect(retried.allSatisfy { $0.succeeded }, "\(retried.failures)")
            #expect(full.commitCount == 1)
            #expect(try RawDatabase(path: path).strings("PRAGMA integrity_check") == ["ok"])
        }
    }

    @Test("A batch that cannot begin because another process holds the lock fails every write, each by name")
    func lockedBatch() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let path = directory.file("ledger.db")
            let ledger = try SQLiteLedger(path: path, configuration: .init(busyTimeout: .milliseconds(200)))
            let other = try RawDatabase(path: path)
            try other.execute("BEGIN EXCLUSIVE")

            let serials = ["0f01", "0f02", "0f03"]
            let outcomes = await inOneBatch(ledger, serials.count) { index in
                try await ledger.record(.fixture(serial: serials[index]))
            }
            for (serial, outcome) in zip(serials, outcomes) {
                let error = try #require(outcome.ledgerError)
                #expect(error.code == .locked)
                #expect(
                    error.message.contains("Could not record certificate \(serial): the ledger at \(path) is locked"))
            }
            try other.execute("COMMIT")
            #expect(try await ledger.allIssuances().isEmpty)
            #expect(ledger.commitCount == 0)
        }
    }
}
