import Foundation
import Testing

/// The documentation is README.md (the front page) and the pages under docs/. These tests keep its links and the
/// ledger's schema table from going stale when a page is moved, a heading renamed or a migration added.
@Suite("Documentation: links resolve and the ledger's schema table lists every migration")
struct DocumentationTests {
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// README.md and every docs/**/*.md, as paths relative to the package root, sorted.
    static func markdownPages() throws -> [String] {
        var pages = ["README.md"]
        let docs = packageRoot.appendingPathComponent("docs")
        let enumerator = try #require(FileManager.default.enumerator(atPath: docs.path), "docs/ is missing")
        for case let path as String in enumerator where path.hasSuffix(".md") {
            pages.append("docs/" + path)
        }
        return pages.sorted()
    }

    @Test("Every relative link in README.md and docs/ points at an existing file, and every #anchor at a heading")
    func relativeLinksResolve() throws {
        let pages = try Self.markdownPages()
        #expect(pages.count > 1, "no pages under docs/")
        var broken: [String] = []
        var checked = 0
        for page in pages {
            let text = try String(contentsOf: Self.packageRoot.appendingPathComponent(page), encoding: .utf8)
            for link in Markdown.links(in: text) {
                checked += 1
                if let problem = Self.problem(with: link.target, on: page) {
                    broken.append("\(page):\(link.line): (\(link.target)) \(problem)")
                }
            }
        }
        #expect(checked > 10, "found only \(checked) relative links; is the link parser broken?")
        #expect(broken.isEmpty, "broken links:\n\(broken.joined(separator: "\n"))")
    }

    /// Why `target`, written on `page`, does not resolve; nil when it does (or when it is not a relative link).
    static func problem(with target: String, on page: String) -> String? {
        if target.contains("://") || target.hasPrefix("mailto:") { return nil }
        let parts = target.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)
        let path = String(parts[0])
        let anchor = parts.count > 1 ? String(parts[1]) : nil
        if path.hasPrefix("/") { return "is absolute; write it relative to \(page)" }
        guard let relative = path.isEmpty ? page : normalized(path, from: page) else { return "leaves the repository" }
        let file = packageRoot.appendingPathComponent(relative).path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory) else {
            return "\(relative) does not exist"
        }
        guard let anchor, !anchor.isEmpty else { return nil }
        guard !isDirectory.boolValue, relative.hasSuffix(".md") else { return nil }
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return "\(relative) is not readable" }
        let slugs = Markdown.headingSlugs(in: text)
        return slugs.contains(anchor) ? nil : "\(relative) has no heading with the anchor #\(anchor)"
    }

    /// `path` as written on `page`, relative to the package root; nil when it climbs out of the repository.
    static func normalized(_ path: String, from page: String) -> String? {
        var components = page.split(separator: "/").dropLast().map(String.init)
        for component in path.split(separator: "/") {
            switch component {
            case ".": continue
            case "..":
                if components.isEmpty { return nil }
                components.removeLast()
            default: components.append(String(component))
            }
        }
        return components.joined(separator: "/")
    }

    @Test("The schema table in docs/reference/ledger.md names every file in Migrations/*.sql")
    func ledgerSchemaTableListsEveryMigration() throws {
        let migrations = try FileManager.default
            .contentsOfDirectory(atPath: Self.packageRoot.appendingPathComponent("Migrations").path)
            .filter { $0.hasSuffix(".sql") }
            .sorted()
        #expect(migrations.count >= 6)
        let ledgerPage = try String(
            contentsOf: Self.packageRoot.appendingPathComponent("docs/reference/ledger.md"), encoding: .utf8)
        let tableRows = ledgerPage.split(separator: "\n").filter { $0.hasPrefix("|") }
        let missing = migrations.filter { file in !tableRows.contains { $0.contains("`\(file)`") } }
        #expect(missing.isEmpty, "docs/reference/ledger.md's schema table lacks a row for: \(missing.joined(separator: ", "))")
    }

    @Test("The link checker itself: finds links outside code, slugs headings as GitHub does, and reports a broken link")
    func checkerFindsBrokenLinks() {
        let text = """
            # Root rotation (`meshca root status | prepare | activate | retire`)
            ## What `meshca issue` writes (Istio's layout)
            ## Same
            ## Same
            See [a](other.md#x), `[not](a-link.md)`, and ![img](pic.png).
            ```
            [inside](a-fence.md)
            # not a heading
            ```
            """
        #expect(Markdown.links(in: text).map(\.target) == ["other.md#x", "pic.png"])
        #expect(Markdown.headingSlugs(in: text) == [
            "root-rotation-meshca-root-status--prepare--activate--retire",
            "what-meshca-issue-writes-istios-layout", "same", "same-1",
        ])
        #expect(Self.problem(with: "docs/no-such-page.md", on: "README.md") == "docs/no-such-page.md does not exist")
        #expect(Self.problem(with: "../README.md#no-such-heading", on: "docs/index.md")?.contains("no heading") == true)
        #expect(Self.problem(with: "../outside.md", on: "README.md") == "leaves the repository")
        #expect(Self.problem(with: "https://spiffe.io/", on: "README.md") == nil)
        #expect(Self.normalized("../reference/./files.md", from: "docs/a/page.md") == "docs/reference/files.md")
    }
}

/// Just enough Markdown for the checks above: inline links outside code, and GitHub's heading anchors.
enum Markdown {
    struct Link: Equatable {
        var target: String
        var line: Int
    }

    /// Lines outside fenced code blocks, with their 1-based numbers.
    static func proseLines(in text: String) -> [(number: Int, text: Substring)] {
        var result: [(Int, Substring)] = []
        var inFence = false
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if line.trimmingPrefix(while: { $0 == " " }).hasPrefix("```") {
                inFence.toggle()
                continue
            }
            if !inFence { result.append((index + 1, line)) }
        }
        return result
    }

    /// The line without its inline code spans (`...`), where a "link" is just text.
    static func withoutCodeSpans(_ line: Substring) -> String {
        var result = ""
        var inCode = false
        for character in line {
            if character == "`" {
                inCode.toggle()
            } else if !inCode {
                result.append(character)
            }
        }
        return result
    }

    /// Targets of `[text](target)` and `![alt](target)`.
    static func links(in text: String) -> [Link] {
        var links: [Link] = []
        for (number, line) in proseLines(in: text) {
            let prose = withoutCodeSpans(line)
            var rest = prose[...]
            while let open = rest.range(of: "](") {
                let after = rest[open.upperBound...]
                guard let close = after.firstIndex(of: ")") else { break }
                let target = after[..<close].split(separator: " ", maxSplits: 1).first.map(String.init) ?? ""
                if !target.isEmpty { links.append(Link(target: target, line: number)) }
                rest = after[close...]
            }
        }
        return links
    }

    /// GitHub's anchors for the headings (`#` to `######`): lowercase; letters, digits, '-' and '_' kept; each space
    /// becomes '-'; everything else dropped; a repeated anchor gets -1, -2, ...
    static func headingSlugs(in text: String) -> [String] {
        var slugs: [String] = []
        var seen: [String: Int] = [:]
        for (_, line) in proseLines(in: text) {
            let hashes = line.prefix { $0 == "#" }.count
            guard (1...6).contains(hashes), line.dropFirst(hashes).first == " " else { continue }
            let title = line.dropFirst(hashes + 1).trimmingCharacters(in: .whitespaces).lowercased()
            var slug = ""
            for character in title {
                if character == " " {
                    slug.append("-")
                } else if character.isLetter || character.isNumber || character == "-" || character == "_" {
                    slug.append(character)
                }
            }
            if let count = seen[slug] {
                seen[slug] = count + 1
                slugs.append("\(slug)-\(count + 1)")
            } else {
                seen[slug] = 0
                slugs.append(slug)
            }
        }
        return slugs
    }
}
