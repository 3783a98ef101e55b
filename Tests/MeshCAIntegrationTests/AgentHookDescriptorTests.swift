import Foundation
import MeshCATestSupport
import Testing

/// `--on-rotate` hooks start with the agent's standard streams only (issue 12, defect 6).
@Suite("meshca agent's --on-rotate hook inherits no descriptor beyond 0-2")
struct AgentHookDescriptorTests {
    @Test("While the agent listens on its status port and Workload API socket, its hook sees only fds 0, 1 and 2")
    func hookStartsWithStandardStreamsOnly() async throws {
        let daemon = try await TestDaemon.start()
        defer { daemon.stop() }
        let listing = daemon.directory.file("hook-fds")
        let socket = daemon.directory.file("run/agent.sock")
        let agent = try await TestAgent.start(
            daemonAddress: daemon.address, token: try daemon.token(), out: daemon.directory.file("was"),
            extra: ["--workload-api-socket", socket, "--on-rotate", "ls -l /proc/self/fd > \(listing).tmp && mv \(listing).tmp \(listing)"]
        )
        defer { agent.stop() }
        try await Wait.until("the --on-rotate hook wrote \(listing); agent stderr:\n\(agent.process.errorOutput)") {
            guard agent.process.isRunning else { throw BackgroundProcessError("the agent exited; stderr:\n\(agent.process.errorOutput)") }
            return FileManager.default.fileExists(atPath: listing)
        }

        // The agent does hold its listeners (and NIO's epoll) on descriptors above 2, without close-on-exec.
        let agentFDs = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(agent.process.pid)/fd")
        let agentSockets = agentFDs.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(agent.process.pid)/fd/\($0)") }
            .filter { $0.hasPrefix("socket:") }
        #expect(agentSockets.count >= 2, "\(agentFDs)")

        // `ls -l /proc/self/fd` lists ls's own descriptors: those the hook's shell passed on (0-2, with 1 redirected
        // to the file) and the one ls opens to read the directory, which is the lowest free one: 3 when nothing
        // else was inherited.
        let entries = try String(contentsOfFile: listing, encoding: .utf8).split(separator: "\n").compactMap { line in
            line.range(of: " -> ").map { arrow in
                (fd: line[..<arrow.lowerBound].split(separator: " ").last.map(String.init) ?? "", target: String(line[arrow.upperBound...]))
            }
        }
        #expect(entries.map(\.fd).sorted() == ["0", "1", "2", "3"], "\(entries)")
        #expect(entries.first { $0.fd == "1" }?.target == listing + ".tmp")
        let own = try #require(entries.first { $0.fd == "3" }?.target)
        #expect(own.hasPrefix("/proc/") && own.hasSuffix("/fd"), "fd 3 is \(own), not ls's own directory")
    }
}
