import Foundation
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

extension SQLiteLedger {
    /// Every issuance, oldest first.
    func allIssuances() async throws -> [IssuanceRecord] {
        try await issuances(matching: IssuanceQuery())
    }

    /// The serials of the issuances matching `query`, in result order.
    func serials(_ query: IssuanceQuery) async throws -> [String] {
        try await issuances(matching: query).map(\.serial)
    }
}
