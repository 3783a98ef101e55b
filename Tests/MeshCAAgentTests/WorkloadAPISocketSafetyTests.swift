import Foundation
import Logging
import MeshCAAgent
import MeshCAIO
import MeshCATestSupport
import MeshCATransport
import Synchronization
import Testing

/// The socket is created with its final mode and moved into place, and directories other users could
/// rearrange are refused (issue 12, defect 3).
@Suite("The Workload API socket and --out cannot be redirected by another user", .timeLimit(.minutes(2)))
struct WorkloadAPISocketSafetyTests {
    @Test("A symlink planted at the socket path after the bind is replaced, not followed: its target keeps its mode")
    func symlinkAfterBind() async throws {
        let fixture = try WorkloadAPIFixture()
        try fixture.publishNew()
        let victim = fixture.directory.file("victim")
        try fixture.directory.write("victim", "root's file")
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: victim)
        let socketPath = fixture.socketPath
        let socketDirectory = (socketPath as NSString).deletingLastPathComponent
        // What an attacker with write access to the directory did to the old code between bind and chmod: put a
        // symlink to a file of their choosing where the socket is (rename(2) swaps it in atomically).
        let planted = Mutex(false)
        let response = try await fixture.withServer(afterBind: {
            let temporary = socketDirectory + "/planted"
            guard symlink(victim, temporary) == 0, rename(temporary, socketPath) == 0 else { return }
            planted.withLock { $0 = true }
        }) { _, _ in
            let socket = WorkloadAPIFixture.fileInfo(socketPath)
            #expect(socket?.type == .typeSocket)
            #expect(socket?.permissions == 0o666)
            // Nothing of the private bind directory is left beside the socket.
            #expect(try FileManager.default.contentsOfDirectory(atPath: socketDirectory) == ["agent.sock"])
            return try await fixture.firstSVIDResponse()
        }
        #expect(planted.withLock { $0 })
        #expect(response?.svids.count == 1)
        #expect(WorkloadAPIFixture.fileInfo(victim)?.permissions == 0o600)
        #expect(WorkloadAPIFixture.fileInfo(victim)?.type == .typeRegular)
        #expect(try fixture.directory.read("victim") == "root's file")
        #expect(!FileManager.default.fileExists(atPath: socketPath))
    }

    @Test("A socket directory that every user can write, without the sticky bit, is refused with the chmod to run")
    func refusesWorldWritableSocketDirectory() async throws {
        let fixture = try WorkloadAPIFixture()
        let socketDirectory = (fixture.socketPath as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: socketDirectory, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: socketDirectory)
        let error = try await refusal(fixture)
        #expect(error.code == .unsafeDirectory)
        #expect(error.message.contains("\(socketDirectory) (mode 0777) can be written by every user and has no sticky bit"))
        #expect(error.message.contains("Run `chmod o-w \(socketDirectory)`"))
        #expect(!FileManager.default.fileExists(atPath: fixture.socketPath))

        // A world-writable directory above it is as bad: another user could rename the socket's directory away.
        let above = (socketDirectory as NSString).deletingLastPathComponent
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: socketDirectory)
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: above)
        let aboveError = try await refusal(fixture)
        #expect(aboveError.code == .unsafeDirectory)
        #expect(aboveError.message.contains("Run `chmod o-w \(above)`"))
        #expect(!FileManager.default.fileExists(atPath: fixture.socketPath))
        // Nothing was created in it either.
        #expect(try FileManager.default.contentsOfDirectory(atPath: socketDirectory).isEmpty)
    }

    @Test("A sticky world-writable directory, as /tmp is, is accepted for the socket and for --out")
    func acceptsStickyDirectory() async throws {
        let fixture = try WorkloadAPIFixture()
        try fixture.publishNew()
        let socketDirectory = (fixture.socketPath as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: socketDirectory, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o1777], ofItemAtPath: socketDirectory)
        let response = try await fixture.withServer { _, _ in
            #expect(WorkloadAPIFixture.fileInfo(fixture.socketPath)?.permissions == 0o666)
            return try await fixture.firstSVIDResponse()
        }
        #expect(response?.svids.count == 1)

        let out = fixture.directory.file("sticky-out")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: false)
        try FileManager.default.setAttributes([.posixPermissions: 0o1777], ofItemAtPath: out)
        try CredentialDirectory(path: out).write(chainPEM: "c", keyPEM: "k", bundlePEM: "r")
        #expect(try fixture.directory.read("sticky-out/key.pem") == "k")
    }

    @Test("meshca-agent stops at start on a world-writable --out or socket directory, and says what to change")
    func agentRefusesSharedDirectories() async throws {
        let directory = try TemporaryDirectory("shared")
        defer { directory.remove() }
        let shared = directory.file("shared")
        try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: false)
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: shared)
        // Syntactically a join token; no CA is needed, the agent stops before it has one.
        let token = "mct1." + String(repeating: "a", count: 12) + "." + String(repeating: "b", count: 43) + "."
            + String(repeating: "c", count: 64)
        let arguments = ["--ca", "127.0.0.1:1", "--sa", "was", "--token", token, "--status-addr", "off", "--log-level", "error"]

        let out = try await Command.run(Command.agentBinary, arguments + ["--out", shared])
        #expect(out.status == 1)
        #expect(out.stderr.contains("The output directory \(shared) is not safe"), "\(out.stderr)")
        #expect(out.stderr.contains("`chmod o-w \(shared)`"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: shared).isEmpty)

        let socket = try await Command.run(
            Command.agentBinary, arguments + ["--out", directory.file("out"), "--workload-api-socket", shared + "/agent.sock"])
        #expect(socket.status == 1)
        #expect(socket.stderr.contains("The Workload API socket's directory \(shared) is not safe"), "\(socket.stderr)")
        #expect(socket.stderr.contains("`chmod o-w \(shared)`"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: shared).isEmpty)
    }

    /// The error a server on the fixture's socket fails to start with.
    private func refusal(_ fixture: WorkloadAPIFixture) async throws -> AgentError {
        let server = WorkloadAPIServer(
            socketPath: fixture.socketPath, credentials: fixture.broadcast, allowedUIDs: [WorkloadAPIFixture.ownUID],
            logger: .init(label: "test"))
        do {
            try await server.run()
        } catch let error as AgentError {
            return error
        }
        throw WorkloadAPIFixtureError("the server started in an unsafe directory")
    }
}
