import Foundation
import MeshCALedger
import MeshCATestSupport
import Testing

/// Each test edits the SQLite file behind the ledger's back, as someone with write access could, and checks that
/// verification names the first bad event: its sequence number, what happened, and the serial.
@Suite("Verifying the chain finds rows edited, deleted, inserted and reordered", .timeLimit(.minutes(1)))
struct LedgerChainTamperTests {
    @Test(
        "Editing any column of an issuance row is reported as that event altered",
        arguments: [
            "not_after = not_after + 86400", "requester = 'local:mallory'", "certificate_der = X'3000'",
            "requested_ttl_seconds = 60", "peer = 'ipv4:10.0.0.9:1'", "sans = '[]'",
        ])
    func alteredIssuanceColumn(assignment: String) async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let fixture = try await SixIssuances(in: directory)
            try fixture.raw.execute("UPDATE issuances SET \(assignment) WHERE serial = '0a03'")

            let problem = try await fixture.firstProblem()
            #expect(problem.kind == .altered)
            #expect(problem.sequence == 3)
            #expect(problem.eventKind == "issuance")
            #expect(problem.subject == "0a03")
            #expect(problem.message.contains("Event #3 (issuance 0a03) was altered"), "\(problem.message)")
        }
    }

    @Test("Editing a row and its event's content hash together breaks the event's own hash")
    func alteredRowAndEvent() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let fixture = try await SixIssuances(in: directory)
            try fixture.raw.execute(
                """
                UPDATE issuances SET not_after = not_after + 86400 WHERE serial = '0a04';
                UPDATE ledger_events SET content_sha256 = randomblob(32) WHERE seq = 4;
                """)

            let problem = try await fixture.firstProblem()
            #expect(problem.kind == .altered)
            #expect(problem.sequence == 4)
            #expect(problem.subject == "0a04")
            #expect(problem.message.contains("ledger_events row was edited"), "\(problem.message)")
        }
    }

    @Test("Deleting an issuance row in the middle is reported as that event deleted")
    func deletedRow() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let fixture = try await SixIssuances(in: directory)
            try fixture.raw.execute("DELETE FROM issuances WHERE serial = '0a03'")

            let problem = try await fixture.firstProblem()
            #expect(problem.kind == .deleted)
            #expect(problem.sequence == 3)
            #expect(problem.subject == "0a03")
            #expect(try await fixture.ledger.verifyChain().problems.count == 1)
        }
    }

    @Test("Deleting a row together with its event leaves a gap named by its sequence number")
    func deletedRowAndEvent() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let fixture = try await SixIssuances(in: directory)
            try fixture.raw.execute(
                "DELETE FROM issuances WHERE serial = '0a03'; DELETE FROM ledger_events WHERE seq = 3")

            let problem = try await fixture.firstProblem()
            #expect(problem.kind == .deleted)
            #expect(problem.sequence == 3)
            #expect(
                problem.message.contains("Event #3 was deleted: the chain jumps from #2 to #4"), "\(problem.message)")
        }
    }

    @Test("Deleting a row and its event and renumbering the rest is still found at the gap")
    func deletedAndRenumbered() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let fixture = try await SixIssuances(in: directory)
            try fixture.raw.execute(
                "DELETE FROM issuances WHERE serial = '0a03'; DELETE FROM ledger_events WHERE seq = 3")
            try fixture.renumber(from: 4, by: -1)

            let problem = try await fixture.firstProblem()
            #expect(problem.kind == .deleted)
            #expect(problem.sequence == 3)
            #expect(problem.subject == "0a04", "the event now at #3 is the one after the gap")
        }
    }

    @Test("A forged issuance row without an event is reported as inserted, naming its serial")
    func insertedRow() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let fixture = try await SixIssuances(in: directory)
            try fixture.raw.execute(
                """
                INSERT INTO issuances SELECT 'badbad', spiffe_id, trust_domain, namespace, service_account, sans,
                    not_before, not_after, issued_at, requested_ttl_seconds, granted_ttl_seconds, key_type,
                    public_key_sha256, csr_sha256, certificate_der, issuer_fingerprint, requester, auth_method,
                    revoked_at, revocation_reason, peer FROM issuances WHERE serial = '0a02'
                """)

            let problem = try await fixture.firstProblem()
            #expect(problem.kind == .inserted)
            #expect(problem.sequence == nil)
            #expect(problem.subject == "badbad")
            #expect(problem.message.contains("Issuance badbad was inserted"), "\(problem.message)")
        }
    }

    @Test("A forged issuance with a correctly hashed event in the middle is reported as inserted at its position")
    func insertedRowAndEvent() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let fixture = try await SixIssuances(in: directory)
            // The forger records the certificate with meshca's own code elsewhere, then copies row and event over.
            let scratchPath = directory.file("scratch.db")
            try await SQLiteLedger(path: scratchPath).record(.fixture(serial: "badbad", issuedAt: at(3.5)))
            try fixture.renumber(from: 4, by: 1)
            try fixture.raw.execute(
                """
                ATTACH '\(scratchPath)' AS scratch;
                INSERT INTO issuances SELECT * FROM scratch.issuances;
                INSERT INTO ledger_events SELECT 4, kind, subject, payload, content_sha256, NULL, NULL
                    FROM scratch.ledger_events;
                DETACH scratch;
                """)
            // Only the forged event is hashed into place; the events after it keep their recorded hashes.
            try fixture.rechain(from: 4, through: 4)

            let problem = try await fixture.firstProblem()
            #expect(problem.kind == .inserted)
            #expect(problem.sequence == 4)
            #expect(
                problem.message.contains("Event #4 was inserted: event #5 (issuance 0a04) was recorded right after #3"),
                "\(problem.message)")
        }
    }

    @Test("Swapping two events is reported as reordered at the first of them")
    func swappedEvents() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let fixture = try await SixIssuances(in: directory)
            try fixture.raw.execute(
                """
                UPDATE ledger_events SET seq = -1 WHERE seq = 3;
                UPDATE ledger_events SET seq = 3 WHERE seq = 4;
                UPDATE ledger_events SET seq = 4 WHERE seq = -1;
                """)

            let problem = try await fixture.firstProblem()
            #expect(problem.kind == .reordered)
            #expect(problem.sequence == 3)
            #expect(problem.subject == "0a04")
            #expect(problem.message.contains("it was recorded after event #4"), "\(problem.message)")
        }
    }

    @Test("Editing an event's subject to point at another row is reported as that event altered")
    func alteredEventSubject() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let fixture = try await SixIssuances(in: directory)
            try fixture.raw.execute("UPDATE ledger_events SET subject = '0a01' WHERE seq = 2")

            let problem = try await fixture.firstProblem()
            #expect(problem.kind == .altered)
            #expect(problem.sequence == 2)
        }
    }

    @Test("A row edited and the whole chain recomputed after it passes the links; the earlier checkpoint catches it")
    func rewrittenChain() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let signer = InMemoryCheckpointSigner()
            let fixture = try await SixIssuances(in: directory, signer: signer)
            try await fixture.ledger.checkpoint()
            try await fixture.ledger.record(.fixture(serial: "0a07", issuedAt: at(7)))
            // The forger re-records 0a03 elsewhere with a longer life and copies its content hash over.
            let scratchPath = directory.file("scratch.db")
            try await SQLiteLedger(path: scratchPath).record(
                .fixture(serial: "0a03", issuedAt: at(3), notAfter: at(999_999)))
            try fixture.raw.execute(
                """
                ATTACH '\(scratchPath)' AS scratch;
                UPDATE issuances SET not_after = (SELECT not_after FROM scratch.issuances),
                    granted_ttl_seconds = (SELECT granted_ttl_seconds FROM scratch.issuances) WHERE serial = '0a03';
                UPDATE ledger_events SET content_sha256 = (SELECT content_sha256 FROM scratch.ledger_events)
                    WHERE seq = 3;
                DETACH scratch;
                """)
            try fixture.rechain(from: 3)

            let report = try await fixture.ledger.verifyChain()
            #expect(report.problems.count == 1, "\(report.problems)")
            let problem = try #require(report.firstProblem)
            #expect(problem.kind == .altered)
            #expect(problem.sequence == 1)
            #expect(problem.message.contains("An event between #1 and #6 was altered"), "\(problem.message)")
        }
    }
}
