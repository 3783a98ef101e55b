import Foundation
import MeshCALedger
import MeshCATestSupport
import Testing

@Suite("Recording and querying issuances")
struct IssuanceQueryTests {
    /// Five certificates in two namespaces: one expires early, one is revoked. Inserted out of order so the
    /// tests see that results are sorted by issue time, not by insertion.
    static let a = IssuanceRecord.fixture(serial: "0a01", issuedAt: at(0), notAfter: at(3600))
    static let b = IssuanceRecord.fixture(serial: "0a02", serviceAccount: "worker", issuedAt: at(10), notAfter: at(7200))
    static let c = IssuanceRecord.fixture(serial: "1b03", namespace: "billing", issuedAt: at(20), notAfter: at(100))
    static let d = IssuanceRecord.fixture(
        serial: "1b04", namespace: "billing", issuedAt: at(30), notAfter: at(3600), revokedAt: at(40),
        revocationReason: "key-compromise")
    static let e = IssuanceRecord.fixture(serial: "ff05", issuedAt: at(40), notAfter: at(86_400))
    static let all = [a, b, c, d, e]

    /// Runs `body` with a ledger in a fresh directory holding `all`, recorded out of order.
    private func withPopulatedLedger<Result>(
        _ engine: LedgerEngine, _ body: (any LedgerStore) async throws -> Result
    ) async throws -> Result {
        try await withLedger(engine) { ledger async throws in
            for record in [Self.e, Self.c, Self.a, Self.d, Self.b] { try await ledger.record(record) }
            return try await body(ledger)
        }
    }

    @Test("A record read back equals the one written, field for field", arguments: LedgerEngine.all)
    func roundTrip(_ engine: LedgerEngine) async throws {
        try await withLedger(engine) { ledger async throws in
            var plain = IssuanceRecord.fixture(serial: "00ff10", requestedTTLSeconds: nil, certificateDER: [0x30, 0x00, 0x00, 0x7f, 0x80, 0xff])
            plain.sans = ["URI:spiffe://mesh.example/ns/payments/sa/api", "DNS:api.payments.svc", "DNS:ünïcode.example", "quote\"back\\slash"]
            let revoked = IssuanceRecord.fixture(
                serial: "deadbeef", namespace: "billing", issuedAt: at(5), requestedTTLSeconds: 900,
                certificateDER: [], revokedAt: at(50), revocationReason: "superseded")
            var noSANs = IssuanceRecord.fixture(serial: "01", issuedAt: at(6))
            noSANs.sans = []

            for record in [plain, revoked, noSANs] { try await ledger.record(record) }
            let read = try await ledger.allIssuances()
            #expect(read == [plain, revoked, noSANs])
            #expect(read.first?.requestedTTLSeconds == nil)
            #expect(read.first?.certificateDER == [0x30, 0x00, 0x00, 0x7f, 0x80, 0xff])
            #expect(read[1].revocationReason == "superseded")
        }
    }

    @Test("Fractions of a second are dropped when stored, rounding toward the past", arguments: LedgerEngine.all)
    func wholeSeconds(_ engine: LedgerEngine) async throws {
        try await withLedger(engine) { ledger async throws in
            try await ledger.record(IssuanceRecord.fixture(serial: "0c", issuedAt: at(0.75), notAfter: at(99.2)))
            let read = try #require(try await ledger.allIssuances().first)
            #expect(read.issuedAt == at(0))
            #expect(read.notAfter == at(99))
        }
    }

    @Test("Serials that are not lowercase hex are refused before anything is written", arguments: LedgerEngine.all)
    func serialSpelling(_ engine: LedgerEngine) async throws {
        try await withLedger(engine) { ledger async throws in
            for serial in ["0A1B", "0a:1b", "", "xyz"] {
                let error = await #expect(throws: LedgerError.self) { try await ledger.record(.fixture(serial: serial)) }
                #expect(error?.message.contains("lowercase hex") == true)
            }
            #expect(try await ledger.allIssuances().isEmpty)
        }
    }

    @Test("Namespace and service account filters match exactly", arguments: LedgerEngine.all)
    func identityFilters(_ engine: LedgerEngine) async throws {
        try await withPopulatedLedger(engine) { ledger async throws in
            #expect(try await ledger.serials(IssuanceQuery(namespace: "payments")) == ["0a01", "0a02", "ff05"])
            #expect(try await ledger.serials(IssuanceQuery(namespace: "payments", serviceAccount: "api")) == ["0a01", "ff05"])
            #expect(try await ledger.serials(IssuanceQuery(serviceAccount: "api")) == ["0a01", "1b03", "1b04", "ff05"])
            #expect(try await ledger.serials(IssuanceQuery(namespace: "nobody")).isEmpty)
            #expect(try await ledger.serials(IssuanceQuery()) == Self.all.map(\.serial))
        }
    }

    @Test("A serial prefix selects exactly the serials starting with it, in either letter case", arguments: LedgerEngine.all)
    func serialPrefix(_ engine: LedgerEngine) async throws {
        try await withPopulatedLedger(engine) { ledger async throws in
            #expect(try await ledger.serials(IssuanceQuery(serialPrefix: "0a")) == ["0a01", "0a02"])
            #expect(try await ledger.serials(IssuanceQuery(serialPrefix: "0a01")) == ["0a01"])
            #expect(try await ledger.serials(IssuanceQuery(serialPrefix: "1B")) == ["1b03", "1b04"])
            #expect(try await ledger.serials(IssuanceQuery(serialPrefix: "f")) == ["ff05"])
            #expect(try await ledger.serials(IssuanceQuery(serialPrefix: "0b")).isEmpty)
            #expect(try await ledger.serials(IssuanceQuery(serialPrefix: "")) == Self.all.map(\.serial))
        }
    }

    @Test("issuedSince includes the boundary second and excludes earlier issuances", arguments: LedgerEngine.all)
    func issuedSince(_ engine: LedgerEngine) async throws {
        try await withPopulatedLedger(engine) { ledger async throws in
            #expect(try await ledger.serials(IssuanceQuery(issuedSince: at(20))) == ["1b03", "1b04", "ff05"])
            #expect(try await ledger.serials(IssuanceQuery(issuedSince: at(19.5))) == ["1b03", "1b04", "ff05"])
            #expect(try await ledger.serials(IssuanceQuery(issuedSince: at(20.5))) == ["1b04", "ff05"])
            #expect(try await ledger.serials(IssuanceQuery(issuedSince: at(41))).isEmpty)
        }
    }

    @Test("expiringWithin selects unexpired certificates whose notAfter falls inside the window", arguments: LedgerEngine.all)
    func expiringWithin(_ engine: LedgerEngine) async throws {
        try await withPopulatedLedger(engine) { ledger async throws in
            let now = at(1000)
            #expect(try await ledger.serials(IssuanceQuery(now: now, expiringWithin: .seconds(2600))) == ["0a01", "1b04"])
            #expect(try await ledger.serials(IssuanceQuery(now: now, expiringWithin: .seconds(2599))).isEmpty)
            #expect(try await ledger.serials(IssuanceQuery(now: now, expiringWithin: .seconds(6200))) == ["0a01", "0a02", "1b04"])
            #expect(try await ledger.serials(IssuanceQuery(now: now, expiringWithin: .seconds(2600), status: .valid)) == ["0a01"])
            // c expired at 100, so it is no longer "expiring".
            #expect(try await ledger.serials(IssuanceQuery(now: at(50), expiringWithin: .seconds(100))) == ["1b03"])
            #expect(try await ledger.serials(IssuanceQuery(now: at(101), expiringWithin: .seconds(100))).isEmpty)
        }
    }

    @Test("Status filters are valid, expired and revoked at now, with revoked winning over expired", arguments: LedgerEngine.all)
    func statusFilters(_ engine: LedgerEngine) async throws {
        try await withPopulatedLedger(engine) { ledger async throws in
            let now = at(1000)
            #expect(try await ledger.serials(IssuanceQuery(now: now, status: .valid)) == ["0a01", "0a02", "ff05"])
            #expect(try await ledger.serials(IssuanceQuery(now: now, status: .expired)) == ["1b03"])
            #expect(try await ledger.serials(IssuanceQuery(now: now, status: .revoked)) == ["1b04"])
            // Long after everything expired, the revoked one still reports revoked.
            #expect(try await ledger.serials(IssuanceQuery(now: at(1_000_000), status: .revoked)) == ["1b04"])
            #expect(try await ledger.serials(IssuanceQuery(now: at(1_000_000), status: .expired)) == ["0a01", "0a02", "1b03", "ff05"])
            // Before its revocation time, d was valid.
            #expect(try await ledger.serials(IssuanceQuery(now: at(35), status: .valid)) == ["0a01", "0a02", "1b03", "1b04", "ff05"])
        }
    }

    @Test("The SQL status filter agrees with status(at:) at every instant, including fractional boundaries", arguments: LedgerEngine.all)
    func statusAgreesWithRecord(_ engine: LedgerEngine) async throws {
        try await withPopulatedLedger(engine) { ledger async throws in
            for seconds in [0, 39.5, 40, 40.5, 99.5, 100, 100.25, 101, 3599.9, 3600, 3600.5, 7200, 7200.01, 100_000] {
                let now = at(seconds)
                for status in IssuanceStatus.allCases {
                    let expected = Self.all.filter { $0.status(at: now) == status }.map(\.serial)
                    #expect(try await ledger.serials(IssuanceQuery(now: now, status: status)) == expected, "\(status) at +\(seconds)s")
                }
            }
        }
    }

    @Test("limit returns the newest N matches, still oldest first", arguments: LedgerEngine.all)
    func limit(_ engine: LedgerEngine) async throws {
        try await withPopulatedLedger(engine) { ledger async throws in
            #expect(try await ledger.serials(IssuanceQuery(limit: 2)) == ["1b04", "ff05"])
            #expect(try await ledger.serials(IssuanceQuery(namespace: "payments", limit: 2)) == ["0a02", "ff05"])
            #expect(try await ledger.serials(IssuanceQuery(limit: 50)) == Self.all.map(\.serial))
            #expect(try await ledger.serials(IssuanceQuery(now: at(1000), status: .valid, limit: 1)) == ["ff05"])
            #expect(try await ledger.serials(IssuanceQuery(limit: 0)).isEmpty)
        }
    }

    @Test("status(at:) treats notAfter as inclusive and lets revocation win")
    func recordStatus() {
        #expect(Self.a.status(at: at(3600)) == .valid)
        #expect(Self.a.status(at: at(3600.001)) == .expired)
        #expect(Self.d.status(at: at(39)) == .valid)
        #expect(Self.d.status(at: at(40)) == .revoked)
        #expect(Self.d.status(at: at(1_000_000)) == .revoked)
    }
}
