import Foundation
import MeshCAFuzzEntries
import Testing

/// Replays the fuzzers' inputs in the normal build (no sanitizer, no libFuzzer): every file under
/// Fuzz/Corpus/<target> (the seeds and what fuzzing added) and Fuzz/Crashes/<target> (inputs that once crashed a
/// parser, kept as regression inputs) goes through the same entry as `fuzz-<target>`. A crash ends the test
/// process, naming the target; the entries' own preconditions check what must hold for any input.
@Suite("Fuzz corpus replay")
struct FuzzReplayTests {
    static let fuzzDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fuzz").path

    /// The regular files in `Fuzz/<kind>/<target>`, sorted; none when the directory does not exist.
    static func inputs(_ kind: String, _ target: String) -> [String] {
        let directory = "\(fuzzDirectory)/\(kind)/\(target)"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { "\(directory)/\($0)" }
    }

    @Test("Every corpus and crash input of a target returns", arguments: FuzzTarget.all.map(\.name))
    func replay(_ name: String) async throws {
        let corpus = Self.inputs("Corpus", name)
        // The seeds are committed: an empty corpus means the directory moved, not that there is nothing to check.
        #expect(corpus.contains { URL(fileURLWithPath: $0).lastPathComponent.hasPrefix("seed-") }, "Fuzz/Corpus/\(name) has no seed file")
        let target = FuzzTarget.named(name)
        for path in corpus + Self.inputs("Crashes", name) {
            let data = try #require(FileManager.default.contents(atPath: path), "cannot read \(path)")
            await target.run(Array(data))
        }
    }

    @Test("Every target has its corpus and crash directories")
    func directories() {
        let kinds = ["Corpus", "Crashes"]
        for target in FuzzTarget.all.map(\.name) {
            for kind in kinds {
                var isDirectory: ObjCBool = false
                #expect(
                    FileManager.default.fileExists(atPath: "\(Self.fuzzDirectory)/\(kind)/\(target)", isDirectory: &isDirectory)
                        && isDirectory.boolValue, "Fuzz/\(kind)/\(target) is missing")
            }
        }
    }
}
