import Foundation
import MeshCATestSupport
import Testing

/// A temporary workspace for running the built `meshca` binary: a state directory and a working directory.
struct Workspace {
    let dir: TemporaryDirectory
    var state: String { dir.file("state") }

    init() throws {
        dir = try TemporaryDirectory("cli")
    }

    /// Runs `meshca` with `--state-dir` supplied through MESHCA_STATE_DIR, in the workspace (or `cwd`).
    @discardableResult
    func meshca(_ arguments: String..., cwd: String? = nil) async throws -> Command.Result {
        try await Command.meshca(arguments, environment: ["MESHCA_STATE_DIR": state], directory: cwd ?? dir.path)
    }

    /// Runs `openssl` with `arguments` in the workspace.
    func openssl(_ arguments: String...) async throws -> Command.Result {
        try await Command.run("openssl", arguments, directory: dir.path)
    }

    /// Decodes `meshca audit ... --json` output.
    func json(_ result: Command.Result) throws -> [[String: Any]] {
        let value = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8))
        if let array = value as? [[String: Any]] { return array }
        if let object = value as? [String: Any] { return [object] }
        throw CLIError("not JSON: \(result.stdout)")
    }

    func remove() { dir.remove() }
}

struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Expects a successful run, showing stderr when it was not.
func expectSuccess(_ result: Command.Result, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(result.status == 0, "exit \(result.status): \(result.stderr)", sourceLocation: sourceLocation)
}
