import Foundation
import MeshCADaemon

/// A plain HTTP GET for the CLI's status commands.
enum HTTPGet {
    /// The body of a 2xx answer; throws on connection errors and other statuses.
    static func fetch(_ url: URL) async throws -> Data {
        let (status, body) = try await HTTPFetch.get(url)
        guard (200..<300).contains(status) else {
            throw AuditError("HTTP \(status) from \(url)")
        }
        return Data(body)
    }
}
