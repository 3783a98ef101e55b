import Foundation

/// The one way tests wait for something another process or task makes true: check a condition, and check again
/// after a short pause (1 ms, doubling to 50 ms) until it holds. The timeout is a hang guard, not a measurement:
/// it counts from the call, which a test makes once the thing it waits on is ready, and its failure names what
/// was awaited.
public enum Wait {
    /// Returns once `condition` holds; throws ``WaitError`` naming `what` after `timeout` of real time.
    public static func until(
        _ what: @autoclosure () -> String, timeout: Duration = .seconds(60),
        _ condition: () async throws -> Bool
    ) async throws {
        _ = try await value(what(), timeout: timeout) { try await condition() ? true : nil }
    }

    /// The first non-nil value `produce` returns; throws ``WaitError`` naming `what` after `timeout` of real time.
    public static func value<T>(
        _ what: @autoclosure () -> String, timeout: Duration = .seconds(60),
        _ produce: () async throws -> T?
    ) async throws -> T {
        let deadline = ContinuousClock.now + timeout
        var pause = Duration.milliseconds(1)
        while true {
            if let value = try await produce() { return value }
            guard ContinuousClock.now < deadline else {
                throw WaitError("timed out after \(timeout) waiting until \(what())")
            }
            // The only pause between checks in the test suite.
            try await Task.sleep(for: pause)
            pause = min(pause * 2, .milliseconds(50))
        }
    }
}

/// A condition that did not hold in time.
public struct WaitError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
