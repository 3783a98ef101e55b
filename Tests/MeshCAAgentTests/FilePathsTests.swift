import Foundation
import Testing

@testable import MeshCAIO

@Suite("Path helpers of the agent's file code (FoundationEssentials has no NSString)")
struct FilePathsTests {
    @Test("absolute: relative paths join the current directory; ~, . and .. are resolved")
    func absolute() {
        let cwd = FileManager.default.currentDirectoryPath
        #expect(FilePaths.absolute("/etc/meshca") == "/etc/meshca")
        #expect(FilePaths.absolute("/etc//meshca/./certs/../") == "/etc/meshca")
        #expect(FilePaths.absolute("out") == (cwd == "/" ? "/out" : cwd + "/out"))
        #expect(FilePaths.absolute("/..") == "/")
        if let home = ProcessInfo.processInfo.environment["HOME"], home.hasPrefix("/") {
            #expect(FilePaths.absolute("~/certs") == FilePaths.absolute(home + "/certs"))
        }
        #expect(FilePaths.absolute("~user/x").hasSuffix("/~user/x"), "only a leading ~/ is expanded")
    }

    @Test("directory(of:) and lastComponent(of:) split at the last slash")
    func components() {
        #expect(FilePaths.directory(of: "/run/meshca/agent.sock") == "/run/meshca")
        #expect(FilePaths.directory(of: "/agent.sock") == "/")
        #expect(FilePaths.directory(of: "agent.sock") == "")
        #expect(FilePaths.lastComponent(of: "/run/meshca/agent.sock") == "agent.sock")
        #expect(FilePaths.lastComponent(of: "key.pem") == "key.pem")
    }

    @Test("reason(_:) names the errno behind a FileManager error")
    func reason() {
        #expect(throws: (any Error).self) {
            do {
                try FileManager.default.createDirectory(atPath: "/proc/meshca-test/x", withIntermediateDirectories: true)
            } catch {
                #expect(FilePaths.reason(error) == "No such file or directory" || FilePaths.reason(error) == "Permission denied")
                throw error
            }
        }
    }
}
