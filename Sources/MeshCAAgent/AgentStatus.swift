#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization

/// What `/status` and `meshca agent status` report.
public struct AgentStatus: Sendable, Codable, Equatable {
    /// `starting`, `ok`, `renewing-failed`, `expired`.
    public var state: String = "starting"
    /// The SPIFFE ID requested.
    public var spiffeID: String
    /// The current certificate's serial and validity, once there is one.
    public var serial: String?
    public var notBefore: Date?
    public var notAfter: Date?
    /// When the next renewal (or retry) is due.
    public var nextRenewal: Date?
    /// The last error, cleared by the next success.
    public var lastError: String?
    /// When the last error happened.
    public var lastErrorAt: Date?
    /// How many certificates this agent process obtained (bootstrap included).
    public var renewals: Int = 0
    /// Consecutive failures since the last success.
    public var consecutiveFailures: Int = 0
    /// Failed rounds since the agent started, by reason.
    public var failures: [AgentFailureReason: Int] = [:]
    /// How the current certificate was obtained: `token`, `jwt`, `mtls`, or `reused` (from disk at start).
    public var obtainedBy: String?
    /// The CA address that answered last (`HOST:PORT`, with the IP address for a host name), which the next
    /// renewal asks first; nil until one answered.
    public var caAddress: String?
    /// The number and nextUpdate of the CRL held (`--crl-url`): the one from the CA that issued the certificate.
    public var crlNumber: Int64?
    public var crlNextUpdate: Date?
    /// The thisUpdate of that CRL (when the CA signed it), for the CRL's age.
    public var crlThisUpdate: Date?
    /// Why the last CRL fetch was refused or failed (an older or expired CRL, too large, not from this CA,
    /// unreachable), and when; kept after later successes, since a refused rollback is worth seeing.
    public var crlLastRefusal: String?
    public var crlLastRefusalAt: Date?

    /// How long the CA can stay down before the current certificate expires, in seconds, as of `now`.
    public func outageBudget(at now: Date) -> Int {
        guard let notAfter else { return 0 }
        return max(0, Int(notAfter.timeIntervalSince(now)))
    }

    /// The JSON document served at `/status` (snake_case keys, RFC 3339 times, `null` for what is not known
    /// yet, plus `outage_budget_seconds`).
    public func json(at now: Date) -> String {
        let document = StatusDocument(
            state: state, spiffeID: spiffeID, serial: serial,
            notBefore: notBefore?.formatted(.iso8601), notAfter: notAfter?.formatted(.iso8601),
            nextRenewal: nextRenewal?.formatted(.iso8601), lastError: lastError,
            lastErrorAt: lastErrorAt?.formatted(.iso8601), renewals: renewals,
            consecutiveFailures: consecutiveFailures, obtainedBy: obtainedBy, caAddress: caAddress, outageBudgetSeconds: outageBudget(at: now),
            crlNumber: crlNumber, crlNextUpdate: crlNextUpdate?.formatted(.iso8601), crlLastRefusal: crlLastRefusal,
            crlLastRefusalAt: crlLastRefusalAt?.formatted(.iso8601))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(document)) ?? Data()
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}

/// `/status` as sent and as `meshca agent status` reads it back.
struct StatusDocument: Codable {
    var state: String
    var spiffeID: String
    var serial: String?
    var notBefore: String?
    var notAfter: String?
    var nextRenewal: String?
    var lastError: String?
    var lastErrorAt: String?
    var renewals: Int
    var consecutiveFailures: Int
    var obtainedBy: String?
    var caAddress: String?
    var outageBudgetSeconds: Int
    var crlNumber: Int64?
    var crlNextUpdate: String?
    var crlLastRefusal: String?
    var crlLastRefusalAt: String?

    enum CodingKeys: String, CodingKey {
        case state, serial, renewals
        case spiffeID = "spiffe_id", notBefore = "not_before", notAfter = "not_after", nextRenewal = "next_renewal"
        case lastError = "last_error", lastErrorAt = "last_error_at", consecutiveFailures = "consecutive_failures"
        case obtainedBy = "obtained_by", caAddress = "ca_address", outageBudgetSeconds = "outage_budget_seconds"
        case crlNumber = "crl_number", crlNextUpdate = "crl_next_update", crlLastRefusal = "crl_last_refusal"
        case crlLastRefusalAt = "crl_last_refusal_at"
    }

    /// Every key, unknown values as `null` (the synthesized encoder would leave them out).
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(state, forKey: .state)
        try container.encode(spiffeID, forKey: .spiffeID)
        try container.encode(serial, forKey: .serial)
        try container.encode(notBefore, forKey: .notBefore)
        try container.encode(notAfter, forKey: .notAfter)
        try container.encode(nextRenewal, forKey: .nextRenewal)
        try container.encode(lastError, forKey: .lastError)
        try container.encode(lastErrorAt, forKey: .lastErrorAt)
        try container.encode(renewals, forKey: .renewals)
        try container.encode(consecutiveFailures, forKey: .consecutiveFailures)
        try container.encode(obtainedBy, forKey: .obtainedBy)
        try container.encode(caAddress, forKey: .caAddress)
        try container.encode(outageBudgetSeconds, forKey: .outageBudgetSeconds)
        try container.encode(crlNumber, forKey: .crlNumber)
        try container.encode(crlNextUpdate, forKey: .crlNextUpdate)
        try container.encode(crlLastRefusal, forKey: .crlLastRefusal)
        try container.encode(crlLastRefusalAt, forKey: .crlLastRefusalAt)
    }
}

/// The agent's status, shared between the renewal loop and the status endpoint.
public final class AgentStatusBox: Sendable {
    private let status: Mutex<AgentStatus>

    /// Starts in state `starting` for `spiffeID`.
    public init(spiffeID: String) {
        status = Mutex(AgentStatus(spiffeID: spiffeID))
    }

    /// A snapshot.
    public var current: AgentStatus { status.withLock { $0 } }

    /// Applies a change.
    public func update(_ change: (inout AgentStatus) -> Void) {
        status.withLock { change(&$0) }
    }
}
