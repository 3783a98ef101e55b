import Foundation
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
    /// How the current certificate was obtained: `token`, `jwt`, `mtls`, or `reused` (from disk at start).
    public var obtainedBy: String?

    /// How long the CA can stay down before the current certificate expires, in seconds, as of `now`.
    public func outageBudget(at now: Date) -> Int {
        guard let notAfter else { return 0 }
        return max(0, Int(notAfter.timeIntervalSince(now)))
    }

    /// The JSON document served at `/status` (snake_case keys, RFC 3339 times, plus `outage_budget_seconds`).
    public func json(at now: Date) -> String {
        func time(_ date: Date?) -> Any { date.map { $0.formatted(.iso8601) } ?? NSNull() }
        let object: [String: Any] = [
            "state": state, "spiffe_id": spiffeID, "serial": serial ?? NSNull(),
            "not_before": time(notBefore), "not_after": time(notAfter), "next_renewal": time(nextRenewal),
            "last_error": lastError ?? NSNull(), "last_error_at": time(lastErrorAt),
            "renewals": renewals, "consecutive_failures": consecutiveFailures,
            "obtained_by": obtainedBy ?? NSNull(), "outage_budget_seconds": outageBudget(at: now),
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self) + "\n"
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
