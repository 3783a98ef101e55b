import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A plain HTTP GET for the CLI's status commands.
enum HTTPGet {
    /// The body of a 2xx answer; throws on connection errors and other statuses.
    static func fetch(_ url: URL) async throws -> Data {
        var request = URLRequest(url: url)
        request.timeoutInterval = 5
        let (data, response) = try await URLSession.shared.data(for: request)
        guard let http = response as? HTTPURLResponse, (200..<300).contains(http.statusCode) else {
            throw AuditError("HTTP \((response as? HTTPURLResponse)?.statusCode ?? 0) from \(url)")
        }
        return data
    }
}
