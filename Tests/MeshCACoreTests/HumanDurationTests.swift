import MeshCACore
import Testing

@Suite("Durations typed on the command line")
struct HumanDurationTests {
    @Test(
        "Units and combinations parse to seconds",
        arguments: [("90s", 90), ("30m", 1800), ("24h", 86_400), ("7d", 604_800), ("1h30m", 5400), ("87600h", 315_360_000)]
    )
    func parses(text: String, seconds: Int64) throws {
        #expect(try HumanDuration.parse(text) == .seconds(seconds))
    }

    @Test("Unreadable durations are refused with an example", arguments: ["", "24", "h", "24x", "-5m", "0s", "1.5h", "999999999d"])
    func refuses(text: String) {
        let error = issuanceError { _ = try HumanDuration.parse(text) }
        #expect(error?.code == .invalidDuration)
        #expect(error?.message.contains("e.g. 90s, 30m, 24h, 7d") == true)
    }

    @Test("Formatting picks the largest units", arguments: [(86_400, "1d"), (90_000, "1d1h"), (5400, "1h30m"), (59, "59s"), (-300, "-5m")])
    func formats(seconds: Int64, text: String) {
        #expect(HumanDuration.format(.seconds(seconds)) == text)
    }
}
