import GRPCCore
import MeshCACore
import Synchronization

/// The serving status the daemon publishes and ``HealthService`` answers with: one status shared by every
/// service name in ``services`` (the CA is usable or it is not; there is nothing to tell apart per service).
///
/// Starts as `NOT_SERVING` until the first ``set(serving:)``. ``shutDown()`` sets `NOT_SERVING` for good and ends
/// every `Watch` stream, so a graceful shutdown does not wait for watchers that never hang up.
public final class HealthStatusBoard: Sendable {
    /// The service names that are known: `""` (the whole server) and the ones registered with it.
    public let services: Set<String>

    private struct State {
        var serving = false
        var shutDown = false
        var nextWatcher = 0
        var watchers: [Int: AsyncStream<Bool>.Continuation] = [:]
    }
    private let state = Mutex(State())

    /// A board for `services`; `""` is always added.
    public init(services: Set<String>) {
        self.services = services.union([""])
    }

    /// Whether the server is currently serving.
    public var isServing: Bool { state.withLock { $0.serving } }

    /// Publishes the status; watchers hear of it only when it changed. Ignored after ``shutDown()``.
    public func set(serving: Bool) {
        let notify: [AsyncStream<Bool>.Continuation] = state.withLock { state in
            guard !state.shutDown, state.serving != serving else { return [] }
            state.serving = serving
            return Array(state.watchers.values)
        }
        for watcher in notify { watcher.yield(serving) }
    }

    /// Sets `NOT_SERVING` permanently, sends it to every watcher and ends their streams.
    public func shutDown() {
        let watchers: [AsyncStream<Bool>.Continuation] = state.withLock { state in
            state.shutDown = true
            state.serving = false
            defer { state.watchers = [:] }
            return Array(state.watchers.values)
        }
        for watcher in watchers {
            watcher.yield(false)
            watcher.finish()
        }
    }

    /// The current status, then every change, until ``shutDown()`` or the consumer goes away.
    func updates() -> AsyncStream<Bool> {
        let (stream, continuation) = AsyncStream<Bool>.makeStream(bufferingPolicy: .bufferingNewest(8))
        let id: Int? = state.withLock { state in
            continuation.yield(state.serving)
            guard !state.shutDown else { return nil }
            let id = state.nextWatcher
            state.nextWatcher += 1
            state.watchers[id] = continuation
            return id
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.watchers.removeValue(forKey: id) }
        }
        return stream
    }
}

/// `grpc.health.v1.Health`, the standard gRPC health checking protocol (what Kubernetes' `grpc` probes,
/// `grpc_health_probe` and grpcio's health stub call), answering from a ``HealthStatusBoard``.
///
/// - `Check` answers `SERVING` or `NOT_SERVING` for a known service name and fails with `NOT_FOUND` for any other.
/// - `Watch` sends the current status at once and then each change; for an unknown name it sends
///   `SERVICE_UNKNOWN` and stays open, as the protocol asks. The stream ends when the server shuts down.
public struct HealthService: Grpc_Health_V1_Health.SimpleServiceProtocol {
    private let board: HealthStatusBoard

    /// A health service answering from `board`.
    public init(board: HealthStatusBoard) {
        self.board = board
    }

    public func check(
        request: Grpc_Health_V1_HealthCheckRequest, context: ServerContext
    ) async throws -> Grpc_Health_V1_HealthCheckResponse {
        guard board.services.contains(request.service) else {
            throw RPCError(
                code: .notFound,
                message: "unknown service \"\(request.service.prefix(200).escapedForLog)\"; known: "
                    + board.services.sorted().map { "\"\($0)\"" }.joined(separator: ", "))
        }
        return Self.response(serving: board.isServing)
    }

    public func watch(
        request: Grpc_Health_V1_HealthCheckRequest,
        response: RPCWriter<Grpc_Health_V1_HealthCheckResponse>,
        context: ServerContext
    ) async throws {
        guard board.services.contains(request.service) else {
            var unknown = Grpc_Health_V1_HealthCheckResponse()
            unknown.status = .serviceUnknown
            try await response.write(unknown)
            // The name never becomes known in meshca; keep the call open until the client or server ends it.
            for await _ in board.updates() {}
            return
        }
        for await serving in board.updates() {
            try await response.write(Self.response(serving: serving))
        }
    }

    static func response(serving: Bool) -> Grpc_Health_V1_HealthCheckResponse {
        var response = Grpc_Health_V1_HealthCheckResponse()
        response.status = serving ? .serving : .notServing
        return response
    }
}
