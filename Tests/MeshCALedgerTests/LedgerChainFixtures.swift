import Foundation
import MeshCALedger
import MeshCATestSupport
import Testing

/// A ledger whose chain is events #1...#6: the issuances 0a01...0a06, in that order.
struct SixIssuances {
    let ledger: SQLiteLedger
    let path: String
    let raw: RawDatabase

    /// The serial event #`seq` covers.
    static func serial(_ seq: Int) -> String { String(format: "0a%02d", seq) }

    /// Records the six issuances in a fresh ledger in `directory`, optionally with a checkpoint signer.
    init(in directory: TemporaryDirectory, signer: (any CheckpointSigner)? = nil, interval: Int = 1000) async throws {
        path = directory.file("ledger.db")
        ledger = try SQLiteLedger(
            path: path, configuration: .init(checkpointSigner: signer, checkpointInterval: interval))
        for seq in 1...6 {
            try await ledger.record(.fixture(serial: Self.serial(seq), issuedAt: at(Double(seq))))
        }
        raw = try RawDatabase(path: path)
    }

    /// Verifies and returns the report, expecting at least one problem.
    func firstProblem(
        publicKey: CheckpointPublicKey? = nil, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> LedgerChainProblem {
        let report = try await ledger.verifyChain(publicKey: publicKey, progress: nil)
        return try #require(report.firstProblem, "the tampering went unnoticed", sourceLocation: sourceLocation)
    }

    /// Moves every event at position `from` or later up by `by` (negative: down), as an attacker renumbering
    /// around an insertion or deletion would. Negative intermediate values avoid primary key collisions.
    func renumber(from: Int, by: Int) throws {
        try raw.execute(
            """
            UPDATE ledger_events SET seq = -(seq + \(by)) WHERE seq >= \(from);
            UPDATE ledger_events SET seq = -seq WHERE seq < 0;
            """)
    }

    /// The stored hash of event `seq`, as uppercase hex (SQLite's `hex()`).
    func hash(_ seq: Int) throws -> String {
        try raw.strings("SELECT hex(hash) FROM ledger_events WHERE seq = \(seq)").first ?? ""
    }

    /// Recomputes `prev_hash` and `hash` of the events from position `start` on (through `end`), exactly as
    /// documented: what an attacker who knows the algorithm (it is public) can do after editing.
    func rechain(from start: Int, through end: Int = .max) throws {
        var previous = start == 1 ? [UInt8](repeating: 0, count: 32) : bytes(try hash(start - 1))
        let rows = try raw.strings(
            "SELECT seq || '|' || kind || '|' || subject || '|' || hex(content_sha256) FROM ledger_events "
                + "WHERE seq BETWEEN \(start) AND \(end) ORDER BY seq")
        for row in rows {
            let parts = row.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            let hash = documentedHash(
                seq: Int64(parts[0])!, previous: previous, kind: parts[1], subject: parts[2],
                contentSHA256: bytes(parts[3]))
            try raw.execute(
                "UPDATE ledger_events SET prev_hash = X'\(hex(previous))', hash = X'\(hex(hash))' "
                    + "WHERE seq = \(parts[0])"
            )
            previous = hash
        }
    }
}

/// The event hash as the README and `LedgerChain` document it, written independently of the implementation.
func documentedHash(seq: Int64, previous: [UInt8], kind: String, subject: String, contentSHA256: [UInt8]) -> [UInt8] {
    func uint32(_ value: Int) -> [UInt8] { (0..<4).reversed().map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) } }
    var bytes = Array("meshca-ledger-event-v1".utf8)
    bytes += (0..<8).reversed().map { UInt8(truncatingIfNeeded: seq >> ($0 * 8)) }
    bytes += previous
    bytes += uint32(kind.utf8.count) + Array(kind.utf8)
    bytes += uint32(subject.utf8.count) + Array(subject.utf8)
    bytes += contentSHA256
    return LedgerChainField.sha256(bytes)
}

/// Bytes from hex (either case).
func bytes(_ hex: String) -> [UInt8] {
    var result: [UInt8] = []
    var index = hex.startIndex
    while index < hex.endIndex {
        let next = hex.index(index, offsetBy: 2)
        result.append(UInt8(hex[index..<next], radix: 16)!)
        index = next
    }
    return result
}

/// Lowercase hex of `bytes`.
func hex(_ bytes: [UInt8]) -> String {
    bytes.map { String(format: "%02x", $0) }.joined()
}
