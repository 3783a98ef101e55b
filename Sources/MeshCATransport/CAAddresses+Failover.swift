import GRPCCore
import MeshCACore
import MeshCAErrors
import MeshCAIO

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

extension CAAddresses {
    /// Sends one request to each endpoint in turn until one answers, and returns the answer and that endpoint.
    ///
    /// It starts at `preferred` when that endpoint is still among ``endpoints()`` (the one that answered last
    /// time: a client stays with a working CA), then goes on in order, wrapping round. Only no answer moves it on:
    /// `UNAVAILABLE` (connection refused or reset, no TLS session, name not resolved, a CA that cannot serve) and
    /// `DEADLINE_EXCEEDED`. Any other gRPC status is the CA's answer and is thrown at once, as is any other error.
    /// Repeating a `CreateCertificate` is safe: a CA recognises a CSR it already answered. `onFailover` hears
    /// each endpoint that gave no answer, before the next is tried. When no endpoint answers, throws
    /// ``CAUnreachableError`` naming each.
    public func firstAnswer<Answer: Sendable>(
        preferring preferred: CAEndpoint? = nil,
        onFailover: (_ failed: CAAttempt, _ next: CAEndpoint) -> Void = { _, _ in },
        _ send: (CAEndpoint) async throws -> Answer
    ) async throws -> (answer: Answer, endpoint: CAEndpoint) {
        let (endpoints, unresolved) = await self.endpoints()
        let start = preferred.flatMap { endpoints.firstIndex(of: $0) } ?? 0
        let order = Array(endpoints[start...] + endpoints[..<start])
        var attempts = unresolved
        for (index, endpoint) in order.enumerated() {
            do {
                return (try await send(endpoint), endpoint)
            } catch let error as RPCError where error.code == .unavailable || error.code == .deadlineExceeded {
                let attempt = CAAttempt(endpoint: endpoint, error: error)
                attempts.append(attempt)
                if index + 1 < order.count { onFailover(attempt, order[index + 1]) }
            }
        }
        throw CAUnreachableError(attempts: attempts)
    }
}

/// One endpoint that gave no answer, and what happened there.
public struct CAAttempt: Sendable, CustomStringConvertible {
    /// What kind of failure it was, for the advice that goes with it.
    public enum Kind: Sendable, Hashable {
        /// No connection: refused, reset, unreachable, timed out.
        case connection
        /// A connection but no TLS session with a CA: another service on that port, or a certificate that does not
        /// verify against the roots trusted.
        case tls
        /// No answer before the deadline.
        case deadline
        /// The CA answered `UNAVAILABLE` itself (it cannot serve now, e.g. its ledger is unreachable).
        case unavailable
        /// The host name did not resolve.
        case unresolved
    }

    /// Where.
    public let endpoint: CAEndpoint
    /// What happened, in words: "connection refused: nothing listens on that port".
    public let failure: String
    /// The kind of failure.
    public let kind: Kind

    /// An attempt that failed with `failure`.
    public init(endpoint: CAEndpoint, failure: String, kind: Kind) {
        self.endpoint = endpoint
        self.failure = failure
        self.kind = kind
    }

    /// The attempt at `endpoint` that ended in `error` (`UNAVAILABLE` or `DEADLINE_EXCEEDED`), in words.
    init(endpoint: CAEndpoint, error: RPCError) {
        let (failure, kind) = Self.words(for: error)
        self.init(endpoint: endpoint, failure: failure, kind: kind)
    }

    /// What `error` (`UNAVAILABLE` or `DEADLINE_EXCEEDED`) means, in words, and its kind.
    private static func words(for error: RPCError) -> (String, Kind) {
        var cause = error.cause
        while let rpc = cause as? RPCError { cause = rpc.cause }
        let detail = cause.map { " (\(String(describing: $0).escapedForLog))" } ?? ""
        if error.code == .deadlineExceeded {
            return ("no answer before the deadline: the host may be down, or a firewall drops the packets", .deadline)
        }
        if let words = cause.flatMap(ConnectionFailure.words(for:)) { return (words, .connection) }
        if error.message.contains("accepted the TCP connection") {
            return ("it accepted the connection but no TLS session with a CA came of it\(detail)", .tls)
        }
        // A status the CA sent itself carries no cause: it runs, but cannot serve now.
        if cause == nil { return ("the CA answered UNAVAILABLE: \(error.message.escapedForLog)", .unavailable) }
        var message = error.message
        while let last = message.last, last == "." || last == " " { message.removeLast() }
        return ("\(message.escapedForLog)\(detail)", .connection)
    }

    /// `ENDPOINT: FAILURE`.
    public var description: String { "\(endpoint): \(failure)" }
}

/// No endpoint of the CA answered: each one named with what happened there.
///
/// Not a ``CAClientError``: it keeps every attempt, so the agent and `meshca issue` can give advice for each kind.
public struct CAUnreachableError: CodedError {
    /// Every endpoint tried (and host name that did not resolve), in the order tried.
    public let attempts: [CAAttempt]

    /// Creates the error for `attempts`.
    public init(attempts: [CAAttempt]) {
        self.attempts = attempts
    }

    /// Always `ca-unreachable`.
    public var code: CAClientError.Code { .caUnreachable }

    /// "Cannot reach a CA at A: FAILURE", or with several endpoints one line each after "at any of N addresses".
    public var message: String { summary(separator: "\n  - ") }

    /// The summary with the endpoints joined by `separator` (a line break and indent for a terminal, "; " for a
    /// log line).
    public func summary(separator: String) -> String {
        if attempts.count == 1 { return "Cannot reach a CA at \(attempts[0])" }
        return "Cannot reach a CA at any of its \(attempts.count) addresses:" + separator
            + attempts.map(\.description).joined(separator: separator)
    }

    /// What to check, for the kinds of failure seen; `trust` names the roots the CA's certificate is checked
    /// against (e.g. "the token's pinned root (or --root-cert)").
    public func advice(trust: String) -> String {
        let kinds = Set(attempts.map(\.kind))
        var advice: [String] = []
        if kinds.contains(.connection) || kinds.contains(.deadline) {
            let there = attempts.count == 1 ? "there" : "at each address"
            advice.append(
                "Is `meshca serve` running \(there)? Its gRPC port is serve's --listen (default 127.0.0.1:15012).")
        }
        if kinds.contains(.tls) {
            advice.append(
                "An address that accepts the connection without a TLS session is not meshca serve's gRPC/TLS port (the "
                    + "monitoring port, default 15014, speaks plain HTTP; the gRPC port is --listen, default 15012), or its "
                    + "certificate does not verify against \(trust).")
        }
        if kinds.contains(.unavailable) {
            advice.append("A CA that answers UNAVAILABLE cannot serve now: its log says why (often its ledger).")
        }
        if kinds.contains(.unresolved) {
            advice.append("Check the spelling of the host name and the DNS records.")
        }
        return advice.joined(separator: " ")
    }
}
