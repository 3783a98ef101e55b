import Foundation
import MeshCAAgent
import MeshCACore
import MeshCAIO

/// `meshca agent`'s renewal loop (``Agent``) run in this process on a ``TestClock``, writing into a temporary
/// directory: a test waits until the loop sleeps, moves the clock to the moment under test (half-life, a retry,
/// expiry) and reads the outcome from the agent's status and files. Renewals run against a real CA (an
/// ``InProcessDaemon``) in real time; only the agent's sense of time is the test's.
public final class AgentFixture: Sendable {
    /// The clock the loop sleeps on and reads the time from.
    public let clock: TestClock
    /// What the agent reports (`/status`).
    public let status: AgentStatusBox
    /// The credentials it publishes to the Workload API.
    public let broadcast: CredentialsBroadcast
    public let log: CapturedLog
    /// Where the agent's output directory lives.
    public let directory: TemporaryDirectory
    private let task: Task<Void, any Error>

    /// The agent's output directory (`cert-chain.pem`, `key.pem`, `root-cert.pem`).
    public var outDirectory: String { directory.file("out") }

    /// Starts the loop with the configuration `configure` makes for the output directory it is given, on `clock`;
    /// every jitter and backoff draw is `random` (0.5: renewal exactly at the schedule's point, backoff at
    /// three quarters of its range; 1: the full backoff).
    public static func start(
        clock: TestClock, random: Double = 0.5, _ configure: (_ outDirectory: String) throws -> AgentConfiguration
    ) throws -> AgentFixture {
        let directory = try TemporaryDirectory("agent")
        let configuration = try configure(directory.file("out"))
        let status = AgentStatusBox(spiffeID: configuration.identity.uri)
        let broadcast = CredentialsBroadcast()
        let log = CapturedLog()
        let agent = Agent(
            configuration: configuration, broadcast: broadcast, status: status, logger: log.logger("meshca.agent.test"),
            time: ServiceTime(clock: clock, now: { clock.date }), random: { random })
        let task = Task { try await agent.run() }
        return AgentFixture(clock: clock, status: status, broadcast: broadcast, log: log, directory: directory, task: task)
    }

    private init(
        clock: TestClock, status: AgentStatusBox, broadcast: CredentialsBroadcast, log: CapturedLog,
        directory: TemporaryDirectory, task: Task<Void, any Error>
    ) {
        self.clock = clock
        self.status = status
        self.broadcast = broadcast
        self.log = log
        self.directory = directory
        self.task = task
    }

    /// The status once `condition` holds and the loop sleeps again (it has finished the round that made it hold).
    public func waitForStatus(_ what: String, _ condition: @escaping (AgentStatus) -> Bool) async throws -> AgentStatus {
        try await Wait.value("the agent's status shows \(what) (it shows \(status.current))", timeout: .seconds(60)) {
            let current = status.current
            return condition(current) && clock.sleepers >= 1 ? current : nil
        }
    }

    /// Stops the loop and removes the directory.
    public func stop() async {
        task.cancel()
        _ = try? await task.value
        directory.remove()
    }
}
