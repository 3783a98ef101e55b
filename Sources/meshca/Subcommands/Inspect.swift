import ArgumentParser
import Foundation
import MeshCACore
import MeshCADaemon
import MeshCAIO

/// `meshca inspect`: is this directory of workload credentials usable?
struct Inspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check cert-chain.pem, key.pem and root-cert.pem in a directory.",
        discussion: """
            Reports the SPIFFE ID, validity and time left, whether the chain verifies to root-cert.pem, whether \
            key.pem matches the leaf, and the file modes. Exits 1 when something is wrong.
            """
    )

    @Argument(help: "The directory holding the three files.")
    var directory: String = "."

    func run() async throws {
        let path = FilePaths.absolute(directory)
        let report = await CredentialReport.inspect(directory: path, now: Date())
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
