import Foundation
import MeshCATestSupport
import MeshCALedger

/// A whole-second instant the fixtures count from; the ledger stores whole seconds.
let epoch = Date(timeIntervalSince1970: 1_750_000_000)

/// `epoch` plus `seconds`.
func at(_ seconds: TimeInterval) -> Date { epoch.addingTimeInterval(seconds) }

extension IssuanceRecord {
    /// A plausible record; only what a test varies is a parameter.
    static func fixture(
        serial: String,
        namespace: String = "payments",
        serviceAccount: String = "api",
        issuedAt: Date = epoch,
        notAfter: Date? = nil,
        requestedTTLSeconds: Int64? = nil,
        certificateDER: [UInt8] = [0x30, 0x82, 0x01, 0x00, 0x00, 0xff],
        revokedAt: Date? = nil,
        revocationReason: String? = nil
    ) -> IssuanceRecord {
        let notAfter = notAfter ?? issuedAt.addingTimeInterval(3600)
        let spiffeID = "spiffe://mesh.example/ns/\(namespace)/sa/\(serviceAccount)"
        return IssuanceRecord(
            serial: serial,
            spiffeID: spiffeID,
            trustDomain: "mesh.example",
            namespace: namespace,
            serviceAccount: serviceAccount,
            sans: ["URI:\(spiffeID)"],
            notBefore: issuedAt.addingTimeInterval(-60),
            notAfter: notAfter,
            issuedAt: issuedAt,
            requestedTTLSeconds: requestedTTLSeconds,
            grantedTTLSeconds: Int64(notAfter.timeIntervalSince(issuedAt)),
            keyType: "ec-p256",
            publicKeySHA256: String(repeating: "ab", count: 32),
            csrSHA256: String(repeating: "cd", count: 32),
            certificateDER: certificateDER,
            issuerFingerprint: String(repeating: "ef", count: 32),
            requester: "local:root(uid 0)",
            authMethod: "local",
            revokedAt: revokedAt,
            revocationReason: revocationReason
        )
    }
}

extension IssuanceLedger {
    /// Every issuance, oldest first.
    func allIssuances() async throws -> [IssuanceRecord] {
        try await issuances(matching: IssuanceQuery())
    }

    /// The serials of the issuances matching `query`, in result order.
    func serials(_ query: IssuanceQuery) async throws -> [String] {
        try await issuances(matching: query).map(\.serial)
    }
}

/// A stand-in for the SHA-256 of a token secret: 64 lowercase hex digits. The ledger only compares them.
func secretHash(_ byte: String) -> String { String(repeating: byte, count: 32) }

extension JoinTokenRecord {
    /// A single-use token for payments/api, created at `epoch` and valid for an hour, unless told otherwise.
    static func fixture(
        id: String = "3f9a0c12",
        secretSHA256: String = secretHash("5e"),
        namespace: String = "payments",
        serviceAccount: String = "api",
        createdAt: Date = epoch,
        expiresAt: Date = at(3600),
        maxUses: Int = 1
    ) -> JoinTokenRecord {
        JoinTokenRecord(
            id: id, secretSHA256: secretSHA256, namespace: namespace, serviceAccount: serviceAccount,
            createdAt: createdAt, expiresAt: expiresAt, maxUses: maxUses, createdBy: "local:root(uid 0)")
    }

    /// A use of this token with its own secret hash, at `date`.
    func use(at date: Date) -> TokenUse {
        TokenUse(id: id, secretSHA256: secretSHA256, at: date)
    }
}

/// Runs `body(0)` ... `body(count - 1)` concurrently and returns each call's outcome, in index order.
func concurrently(
    _ count: Int, _ body: @escaping @Sendable (Int) async throws -> Void
) async -> [Result<Void, any Error>] {
    await withTaskGroup(of: (Int, Result<Void, any Error>).self) { group in
        for index in 0..<count {
            group.addTask {
                do {
                    try await body(index)
                    return (index, .success(()))
                } catch {
                    return (index, .failure(error))
                }
            }
        }
        var outcomes = [Result<Void, any Error>](repeating: .success(()), count: count)
        for await (index, outcome) in group { outcomes[index] = outcome }
        return outcomes
    }
}

/// Like `concurrently`, but holds the ledger's queue until all `count` writes are waiting, so they are committed
/// as one batch. Every `body` must make exactly one group-commit write (`record`) on `ledger`.
func inOneBatch(
    _ ledger: SQLiteLedger, _ count: Int, _ body: @escaping @Sendable (Int) async throws -> Void
) async -> [Result<Void, any Error>] {
    ledger.suspendOperations()
    async let outcomes = concurrently(count, body)
    try? await Wait.until("all \(count) writes wait on the held queue") { ledger.pendingWriteCount >= count }
    ledger.resumeOperations()
    return await outcomes
}

extension Result {
    /// The error of a failure, as a `LedgerError` when it is one.
    var ledgerError: LedgerError? {
        guard case .failure(let error) = self else { return nil }
        return error as? LedgerError
    }

    /// Whether this is a success.
    var succeeded: Bool {
        if case .success = self { return true }
        return false
    }
}

extension [Result<Void, any Error>] {
    /// How many failed and the first failure's error, for the comment of an expectation that all succeed.
    var failures: String {
        let errors = compactMap { outcome -> (any Error)? in
            if case .failure(let error) = outcome { return error }
            return nil
        }
        guard let first = errors.first else { return "no failures" }
        return "\(errors.count) of \(count) failed, the first with: \(first)"
    }
}
