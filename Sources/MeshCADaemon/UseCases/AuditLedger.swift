import Foundation
import MeshCACore
import MeshCAIO
import MeshCALedger
import SwiftASN1

/// One certificate the ledger records (``IssuanceRecord``), with its state as of the time asked.
public struct AuditEntry: Sendable {
    public let serial: String
    /// Empty for a CA serving certificate or intermediate.
    public let spiffeID: String
    public let trustDomain: String
    public let namespace: String
    public let serviceAccount: String
    public let sans: [String]
    public let notBefore: Date
    public let notAfter: Date
    public let issuedAt: Date
    public let requestedTTLSeconds: Int64?
    public let grantedTTLSeconds: Int64
    /// `valid`, `expired` or `revoked`.
    public let status: String
    public let keyType: String
    public let publicKeySHA256: String
    public let csrSHA256: String
    public let certificateSHA256: String
    public let issuerFingerprint: String
    public let requester: String
    public let authMethod: String
    public let peer: String
    public let revokedAt: Date?
    public let revocationReason: String?
    /// The certificate as one PEM block, ending in a newline.
    public let certificatePEM: String

    init(_ record: IssuanceRecord, now: Date) {
        serial = record.serial
        spiffeID = record.spiffeID
        trustDomain = record.trustDomain
        namespace = record.namespace
        serviceAccount = record.serviceAccount
        sans = record.sans
        notBefore = record.notBefore
        notAfter = record.notAfter
        issuedAt = record.issuedAt
        requestedTTLSeconds = record.requestedTTLSeconds
        grantedTTLSeconds = record.grantedTTLSeconds
        status = record.status(at: now).rawValue
        keyType = record.keyType
        publicKeySHA256 = record.publicKeySHA256
        csrSHA256 = record.csrSHA256
        certificateSHA256 = Hex.sha256(record.certificateDER)
        issuerFingerprint = record.issuerFingerprint
        requester = record.requester
        authMethod = record.authMethod
        peer = record.peer
        revokedAt = record.revokedAt
        revocationReason = record.revocationReason
        certificatePEM = PEMDocument(type: "CERTIFICATE", derBytes: record.certificateDER).pemString + "\n"
    }
}

/// One refused request the ledger records (``RejectionRecord``).
public struct RefusalEntry: Sendable {
    public let occurredAt: Date
    public let requester: String
    public let authMethod: String
    public let requestedIdentity: String
    public let reasonCode: String
    public let message: String
    public let peer: String
}

/// `meshca audit list|show|rejections`: what the ledger of the CA in a state directory says was issued and refused.
public struct AuditLedger: Sendable {
    /// Which certificates `issuances` returns; nil fields do not filter.
    public struct Filter: Sendable {
        public var namespace: String?
        public var serviceAccount: String?
        /// `valid`, `expired` or `revoked`.
        public var status: String?
        /// At most the newest this many.
        public var limit: Int?
        public var issuedSince: Date?
        /// Only valid certificates that expire within this duration.
        public var expiringWithin: Duration?
        /// Certificates whose serial starts with these lowercase hex digits.
        public var serialPrefix: String?

        public init() {}
    }

    public let directory: StateDirectory
    /// Where the ledger is (`--ledger`).
    public let ledger: LedgerLocation

    public init(directory: StateDirectory, ledger: LedgerLocation) {
        self.directory = directory
        self.ledger = ledger
    }

    /// The certificates `filter` selects, oldest first, with their state as of `now`.
    public func issuances(_ filter: Filter, now: Date) async throws -> [AuditEntry] {
        var query = IssuanceQuery(now: now)
        query.namespace = filter.namespace
        query.serviceAccount = filter.serviceAccount
        query.status = filter.status.flatMap(IssuanceStatus.init(rawValue:))
        query.limit = filter.limit
        query.issuedSince = filter.issuedSince
        query.expiringWithin = filter.expiringWithin
        query.serialPrefix = filter.serialPrefix
        let records = try await ledger.withExistingLedger(in: directory) { try await $0.issuances(matching: query) }
        return records.map { AuditEntry($0, now: now) }
    }

    /// The one certificate whose serial starts with `prefix` (lowercase hex digits), with its state as of `now`;
    /// `serial` is the text it came from, for the message.
    /// - Throws: ``DaemonError`` `unknown-serial` when none does, ``CAError`` `ambiguous-serial` when several do.
    public func issuance(serialPrefix prefix: String, given serial: String, now: Date) async throws -> AuditEntry {
        var filter = Filter()
        filter.serialPrefix = prefix
        let matches = try await issuances(filter, now: now)
        guard let entry = matches.first else {
            throw DaemonError(
                .unknownSerial, "No certificate with serial \(serial) in the ledger. List what was issued with `meshca audit list`.")
        }
        guard matches.count == 1 else {
            throw CAError(
                .ambiguousSerial,
                "\(matches.count) certificates have serials starting with \(prefix): \(matches.map(\.serial).joined(separator: ", ")). Give more digits.")
        }
        return entry
    }

    /// Refused requests since `since` (all when nil), at most the newest `limit`, oldest first.
    public func rejections(since: Date?, limit: Int?) async throws -> [RefusalEntry] {
        try await ledger.withExistingLedger(in: directory) { try await $0.rejections(since: since, limit: limit) }.map {
            RefusalEntry(
                occurredAt: $0.occurredAt, requester: $0.requester, authMethod: $0.authMethod, requestedIdentity: $0.requestedIdentity,
                reasonCode: $0.reasonCode, message: $0.message, peer: $0.peer)
        }
    }
}
