import CSQLite
import Foundation
import MeshCACore
import MeshCAIO
import MeshCAMigrations

/// `meshca version`: what this binary is (its version, commit, ledger schema and the C libraries it runs on), and
/// what a running daemon reports.
public struct VersionInfo: Sendable {
    public let version: String
    public let commit: String
    /// The newest ledger migration this binary carries.
    public let ledgerSchema: Int
    public let openSSL: String
    public let sqlite: String

    /// This binary, running on the OpenSSL whose version is `openSSL`.
    public static func local(openSSL: String) -> VersionInfo {
        VersionInfo(
            version: BuildInfo.version, commit: BuildInfo.commit, ledgerSchema: LedgerMigrations.latestVersion,
            openSSL: openSSL, sqlite: String(cString: sqlite3_libversion()))
    }

    /// The version and commit a running daemon reports in `meshca_build_info` on its monitoring endpoint
    /// (`address`, fetched as `url`).
    public static func ask(monitoring address: String, url: URL) async throws -> (version: String, commit: String) {
        let answer: (status: Int, body: [UInt8])
        do {
            answer = try await HTTPFetch.get(url, maximumBodyBytes: 8 * 1024 * 1024, what: "a metrics page")
        } catch {
            throw CAError(
                .versionUnavailable,
                "Cannot ask the daemon at \(address): \(error). Give --server the monitoring address of `meshca serve` "
                    + "(its --monitoring, default 127.0.0.1:15014), not the gRPC one.")
        }
        let page = String(decoding: answer.body, as: UTF8.self)
        guard answer.status == 200, let line = page.split(separator: "\n").first(where: { $0.hasPrefix("meshca_build_info{") }) else {
            throw CAError(
                .versionUnavailable,
                "The server at \(address) answered HTTP \(answer.status) without a meshca_build_info line on /metrics: it is not "
                    + "the monitoring endpoint of a meshca serve, or one too old to report its build.")
        }
        func label(_ name: String) -> String {
            guard let start = line.range(of: name + "=\"") else { return "unknown" }
            let rest = line[start.upperBound...]
            return String(rest[..<(rest.firstIndex(of: "\"") ?? rest.endIndex)]).escapedForLog
        }
        return (label("version"), label("commit"))
    }
}
