import GRPCCore

/// The gRPC failure of a call, for tests that assert the status a client sees.
public enum RPCResult {
    /// The `RPCError` `body` throws (its code and message), nil when it succeeds; any other error is reported as
    /// `.unknown` with the error in the message, so a test asserting a code fails with the real cause shown.
    public static func failure(_ body: () async throws -> Void) async -> RPCError? {
        do {
            try await body()
            return nil
        } catch let error as RPCError {
            return error
        } catch {
            return RPCError(code: .unknown, message: "not an RPCError: \(error)")
        }
    }

    /// The status code of ``failure(_:)``, nil when the call succeeds.
    public static func code(_ body: () async throws -> Void) async -> RPCError.Code? {
        await failure(body)?.code
    }

    /// What `body` returns, calling it again while it fails with UNAVAILABLE (`attempts` calls in all), as Istio's
    /// agent and meshca's own clients retry: UNAVAILABLE says nothing was handed out, and on a busy machine a
    /// handshake or a wait for a database connection can run out. Any other error ends the call.
    public static func retryingUnavailable<T>(attempts: Int = 5, _ body: () async throws -> T) async throws -> T {
        var attempt = 1
        while true {
            do {
                return try await body()
            } catch let error as RPCError where error.code == .unavailable && attempt < attempts {
                attempt += 1
            }
        }
    }
}
