import Foundation
import Testing

/// Messages and help in Sources/ and comments in scripts/ point readers at the documentation: every page they
/// name exists, every section they name in quotes ("Ledger verification" in docs/operations.md) is a heading of
/// that page, and none points at the README, which is only the front page since the docs moved to docs/.
@Suite("Documentation references in Sources and scripts")
struct SourceDocReferencesTests {
    static let packageRoot = DocumentationTests.packageRoot

    /// Every .swift file under Sources/ and every file in scripts/, with its text.
    static func files() throws -> [(path: String, text: String)] {
        var files: [(String, String)] = []
        for (folder, suffix) in [("Sources", ".swift"), ("scripts", "")] {
            let root = packageRoot.appendingPathComponent(folder)
            let enumerator = try #require(FileManager.default.enumerator(atPath: root.path))
            for case let path as String in enumerator where path.hasSuffix(suffix) {
                let url = root.appendingPathComponent(path)
                guard let text = try? String(contentsOf: url, encoding: .utf8) else { continue }
                files.append((folder + "/" + path, text))
            }
        }
        return files
    }

    @Test("Named docs pages exist, quoted sections are headings of them, and nothing says 'see the README'")
    func referencesResolve() throws {
        var problems: [String] = []
        var pagesSeen = 0
        for (path, text) in try Self.files() {
            for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
                if line.contains("README") && !path.hasPrefix("Sources/MeshCAMigrations") {
                    problems.append("\(path): mentions the README: \(line.trimmingCharacters(in: .whitespaces))")
                }
                // Swift Regex is slow in a debug build: match only the lines that can hold a reference.
                guard line.contains("docs/") else { continue }
                for match in line.matches(of: /(?:"([^"\\]+)"|\\"([^"\\]+)\\") in (docs\/[a-z\/]+\.md)/) {
                    let section = String(match.output.1 ?? match.output.2 ?? "")
                    let page = String(match.output.3)
                    guard let body = try? String(contentsOf: Self.packageRoot.appendingPathComponent(page), encoding: .utf8) else {
                        problems.append("\(path): \(page) does not exist")
                        continue
                    }
                    let headings = body.split(separator: "\n").filter { $0.hasPrefix("#") }
                        .map { $0.drop { $0 == "#" }.trimmingCharacters(in: .whitespaces) }
                    if !headings.contains(where: { $0.hasPrefix(section) }) {
                        problems.append("\(path): \(page) has no heading \"\(section)\"")
                    }
                }
                for match in line.matches(of: /docs\/[a-z\/]+\.md/) {
                    pagesSeen += 1
                    if !FileManager.default.fileExists(atPath: Self.packageRoot.appendingPathComponent(String(match.output)).path) {
                        problems.append("\(path): \(match.output) does not exist")
                    }
                }
            }
        }
        #expect(pagesSeen > 5, "found only \(pagesSeen) references to docs/ pages")
        #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
    }
}
