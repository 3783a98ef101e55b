import Foundation
import Logging
import MeshCAIO
import Synchronization
import Testing

/// The JSON log handler `--log-format json` installs: one object per line, fixed keys first, fields escaped.
@Suite("JSON log lines")
struct JSONLogHandlerTests {
    @Test("time (RFC 3339 UTC), level, message, logger, then the fields by name; control characters never break a line")
    func line() throws {
        let time = Date(timeIntervalSince1970: 1_800_000_000.25)
        let text = JSONLogHandler.line(
            time: time, level: .warning, message: "refused \"x\"", label: "meshca",
            fields: ["serial": "0a", "message": "a\nb\u{1b}[31m\u{2028}", "peer": .stringConvertible(42), "list": ["x", "y"]])
        #expect(text.hasSuffix("}\n"))
        #expect(text.dropLast().firstIndex(of: "\n") == nil, "one line: \(text)")
        #expect(text.hasPrefix(#"{"time":"2027-01-15T08:00:00.250Z","level":"warning","message":"refused \"x\"","logger":"meshca","#), "\(text)")
        #expect(text.contains(#""field_message":"a\nb\u001b[31m\u2028""#), "\(text)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(object["serial"] as? String == "0a")
        #expect(object["peer"] as? String == "42")
        #expect(object["list"] as? [String] == ["x", "y"])
        #expect(object["field_message"] as? String == "a\nb\u{1b}[31m\u{2028}")
    }

    @Test("The handler merges its own, the provider's and the call's metadata (the call's wins) and honours the level")
    func handler() throws {
        let lines = Mutex<[String]>([])
        var handler = JSONLogHandler(label: "meshca-agent", metadataProvider: .init { ["trace": "p", "rpc": "provider"] }) { line in
            lines.withLock { $0.append(line) }
        }
        handler.logLevel = .info
        handler[metadataKey: "rpc"] = "handler"
        var logger = Logger(label: "meshca-agent") { _ in handler }
        logger.logLevel = .info
        logger.debug("not written")
        logger.info("certificate written", metadata: ["serial": "0b", "rpc": "call"])
        let written = lines.withLock { $0 }
        #expect(written.count == 1)
        let first = try #require(written.first)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any])
        #expect(object["message"] as? String == "certificate written")
        #expect(object["level"] as? String == "info")
        #expect(object["logger"] as? String == "meshca-agent")
        #expect(object["rpc"] as? String == "call")
        #expect(object["trace"] as? String == "p")
        #expect(object["serial"] as? String == "0b")
    }
}
