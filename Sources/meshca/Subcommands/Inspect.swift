import ArgumentParser
import Foundation
import MeshCADaemon

/// `meshca inspect`: is this directory of workload credentials usable?
struct Inspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Check cert-chain.pem, key.pem and root-cert.pem in a directory.",
        discussion: """
            Reports the SPIFFE ID, validity and time left, whether the chain verifies to root-cert.pem, whether \
            key.pem matches the leaf, and the file modes. Exits 1 when something is wrong.
            """
    )

    @Argument(help: "The directory holding the three files.")
    var directory: String = "."

    @Flag(help: "Print JSON (directory, spiffe_id, not_before, not_after, ok, findings).")
    var json = false

    func run() async throws {
        let path = CommandInput.absolutePath(directory)
        let report = await CredentialReport.inspect(directory: path, now: Date())
        if json {
            let object: [String: Any] = [
                "directory": path, "spiffe_id": report.spiffeID ?? NSNull(), "not_before": report.notBefore?.rfc3339 ?? NSNull(),
                "not_after": report.notAfter?.rfc3339 ?? NSNull(), "ok": !report.hasErrors,
                "findings": report.findings.map { ["severity": $0.severity.rawValue, "message": $0.message] },
            ]
            print(try JSONOutput.render(object: object))
            if report.hasErrors { throw ExitCode.failure }
            return
        }
        print(path)
        for finding in report.findings {
            let mark = switch finding.severity {
            case .ok: "ok   "
            case .warning: "warn "
            case .error: "FAIL "
            }
            print("  \(mark) \(finding.message)")
        }
        if report.hasErrors {
            throw ExitCode.failure
        }
    }
}
