import Foundation

/// A fresh directory under the system temporary directory, removed by ``remove()``.
///
/// Every test that touches files gets its own, so tests can run in parallel.
public struct TemporaryDirectory: Sendable {
    /// The absolute path.
    public let path: String

    /// Creates `…/meshca-test-<prefix>-<uuid>` with mode 0700.
    public init(_ prefix: String = "t") throws {
        let base = FileManager.default.temporaryDirectory.path
        path = "\(base)/meshca-test-\(prefix)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    /// Runs `body` with a fresh directory and removes it afterwards, whether `body` returns or throws.
    public static func with<Result>(_ prefix: String = "t", _ body: (TemporaryDirectory) async throws -> Result) async throws -> Result {
        let directory = try TemporaryDirectory(prefix)
        defer { directory.remove() }
        return try await body(directory)
    }

    /// `path/name`.
    public func file(_ name: String) -> String { path + "/" + name }

    /// Reads a file below the directory as UTF-8.
    public func read(_ name: String) throws -> String {
        try String(contentsOfFile: file(name), encoding: .utf8)
    }

    /// Writes a file below the directory.
    public func write(_ name: String, _ contents: String) throws {
        try contents.write(toFile: file(name), atomically: false, encoding: .utf8)
    }

    /// The permission bits of a file below the directory.
    public func mode(_ name: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: file(name))
        return (attributes[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    /// Deletes the directory and everything in it.
    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}
