import Foundation
import MeshCATestSupport
import Testing

/// Pages that walk a reader through commands end to end: every `meshca` command line in their shell blocks must name
/// subcommands and flags the binaries have, so a renamed flag breaks this test instead of the reader's install.
@Suite("Documentation: the commands in walk-through pages exist")
struct DocumentationCommandTests {
    static let pages = ["docs/istio.md"]

    /// One `meshca` (or `meshca-agent`) invocation found in a page.
    struct Invocation: CustomStringConvertible {
        let page: String
        let line: Int
        let binary: String
        let path: [String]
        let flags: [String]
        var description: String { "\(page):\(line): \(([binary] + path + flags).joined(separator: " "))" }
    }

    /// The invocations in the ```sh blocks of `text`: the words after `meshca` up to the first flag or argument that
    /// is not a lowercase word (the subcommand path), and every `--flag` up to the end of the command (`|`, `;`, `&&`).
    /// Lines ending in `\` continue. `meshca` after an option (`kubectl -n meshca`) is a value, not a command.
    static func invocations(in text: String, page: String) -> [Invocation] {
        var found: [Invocation] = []
        var inShell = false
        var pending = ""
        var pendingLine = 0
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("```") {
                inShell = !inShell && (line == "```sh" || line == "```bash")
                continue
            }
            guard inShell else { continue }
            if pending.isEmpty { pendingLine = index + 1 }
            let code = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            if code.hasSuffix("\\") {
                pending += code.dropLast() + " "
                continue
            }
            let words = (pending + code).split(whereSeparator: { $0 == " " || $0 == "(" || $0 == "<" }).map(String.init)
            pending = ""
            for (at, word) in words.enumerated() where word == "meshca" || word == "meshca-agent" {
                if at > 0, words[at - 1].hasPrefix("-"), words[at - 1] != "--" { continue }
                var path: [String] = []
                var flags: [String] = []
                var rest = words[(at + 1)...].makeIterator()
                var inPath = true
                while let next = rest.next(), !["|", ";", "&&", "||", ")"].contains(next) {
                    if inPath, next.allSatisfy({ $0.isLowercase || $0 == "-" }), !next.hasPrefix("-") {
                        path.append(next)
                        continue
                    }
                    inPath = false
                    if next.hasPrefix("--") { flags.append(String(next.prefix { $0 != "=" })) }
                }
                found.append(Invocation(page: page, line: pendingLine, binary: word, path: path, flags: flags))
            }
        }
        return found
    }

    @Test("Every meshca command line in docs/istio.md names a subcommand and flags that --help lists")
    func commandsExist() async throws {
        var checked = 0
        var problems: [String] = []
        for page in Self.pages {
            let text = try String(contentsOf: DocumentationTests.packageRoot.appendingPathComponent(page), encoding: .utf8)
            for invocation in Self.invocations(in: text, page: page) {
                checked += 1
                let binary = invocation.binary == "meshca" ? Command.meshcaBinary : Command.agentBinary
                let help = try await Command.run(binary, invocation.path + ["--help"])
                // --help wins over an unknown word and prints the nearest command's help, so the usage line must name the path.
                let usage = "USAGE: " + ([invocation.binary] + invocation.path).joined(separator: " ")
                guard help.status == 0, help.stdout.contains(usage + " ") || help.stdout.contains(usage + "\n") else {
                    problems.append("\(invocation): `\(invocation.binary) \(invocation.path.joined(separator: " ")) --help` is not that command's help: \(help.stdout.prefix(200))\(help.stderr)")
                    continue
                }
                for flag in invocation.flags where !help.stdout.contains(flag + " ") && !help.stdout.contains(flag + "\n") {
                    problems.append("\(invocation): \(flag) is not in `\(invocation.binary) \(invocation.path.joined(separator: " ")) --help`")
                }
            }
        }
        #expect(checked >= 6, "found only \(checked) meshca command lines; is the parser broken?")
        #expect(problems.isEmpty, "\n\(problems.joined(separator: "\n"))")
    }

    @Test("The parser: paths, flags, continued lines, pipes, and meshca as a value")
    func parser() {
        let text = """
            ```sh
            meshca root export --namespace ns --name x | kubectl apply -f -   # a comment --not-a-flag
            kubectl -n meshca exec deploy/meshca -- meshca audit list \\
              --sa web --since=24h
            meshca revoke SERIAL --reason cACompromise
            ```
            ```yaml
            args: [meshca, --ignored]
            ```
            """
        let found = Self.invocations(in: text, page: "p.md").map { "\($0.line) \($0.path) \($0.flags)" }
        #expect(found == [
            "2 [\"root\", \"export\"] [\"--namespace\", \"--name\"]", "3 [\"audit\", \"list\"] [\"--sa\", \"--since\"]",
            "5 [\"revoke\"] [\"--reason\"]",
        ])
    }
}
