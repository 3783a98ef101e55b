import Foundation

/// Runs `body` with a fresh, empty directory that is removed afterwards, so no test sees another's files.
func withTemporaryDirectory<Result>(_ body: (URL) async throws -> Result) async throws -> Result {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("meshca-ledger-tests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    return try await body(directory)
}

/// The path of `ledger.db` inside `directory`.
func ledgerPath(in directory: URL) -> String {
    directory.appendingPathComponent("ledger.db").path
}
