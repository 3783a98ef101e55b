import Foundation
import MeshCATestSupport
import Testing

/// Runs the probe as uid/gid 65534 (`nobody`); needs root to switch users, `setpriv` and the interop venv.
private let canSwitchUsers =
    getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv")
    && FileManager.default.isExecutableFile(atPath: WorkloadAPIInteropTests.python)

@Suite(
    "Workload API admission follows the kernel's peer uid of each connection",
    .timeLimit(.minutes(2)),
    .enabled(if: canSwitchUsers, "needs root, /usr/bin/setpriv and the interop venv")
)
struct WorkloadAPIOtherUserTests {
    static let otherUID: UInt32 = 65_534

    @Test("On one socket, the agent's own uid is served while a process running as nobody is refused")
    func refusesOtherUserOnSameSocket() async throws {
        let fixture = try WorkloadAPIFixture()
        try fixture.publishNew()
        let (own, other) = try await fixture.withServer(allowedUIDs: [WorkloadAPIFixture.ownUID]) { _, _ in
            (try await probe(fixture, asOtherUser: false), try await probe(fixture, asOtherUser: true))
        }
        #expect(own == "RESULT OK spiffe://cluster.local/ns/default/sa/was uid=\(WorkloadAPIFixture.ownUID)")
        #expect(other == "RESULT PERMISSION_DENIED uid=\(Self.otherUID)")
    }

    @Test("A process running as nobody is served once its uid is allowed")
    func servesAllowedOtherUser() async throws {
        let fixture = try WorkloadAPIFixture()
        try fixture.publishNew()
        let other = try await fixture.withServer(allowedUIDs: [Self.otherUID]) { _, _ in
            try await probe(fixture, asOtherUser: true)
        }
        #expect(other == "RESULT OK spiffe://cluster.local/ns/default/sa/was uid=\(Self.otherUID)")
    }

    /// Runs interop/workload_api_uid_probe.py, as `nobody` when asked, and returns its RESULT line.
    private func probe(_ fixture: WorkloadAPIFixture, asOtherUser: Bool) async throws -> String {
        // The test's temporary directory is 0700; the socket's own directories are created 0755.
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: fixture.directory.path)
        let script = WorkloadAPIInteropTests.packageRoot + "/Tests/MeshCAAgentTests/interop/workload_api_uid_probe.py"
        let command = [WorkloadAPIInteropTests.python, script, fixture.socketPath]
        let user = ["--reuid=\(Self.otherUID)", "--regid=\(Self.otherUID)", "--clear-groups"]
        let process =
            asOtherUser
            ? try BackgroundProcess("/usr/bin/setpriv", user + command)
            : try BackgroundProcess(command[0], Array(command.dropFirst()))
        defer { process.terminate() }
        return try await process.waitForLine(containing: "RESULT ")
    }
}
