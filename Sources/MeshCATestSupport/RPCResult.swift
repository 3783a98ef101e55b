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
}
