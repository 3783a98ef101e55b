#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import MeshCAPlatform
import Logging
import Synchronization

/// How `meshca serve` and the agent write their log to stderr: `text` (swift-log's line format) or `json` (one
/// object per line for a log collector). The key is `log-format` in both.
public enum LogFormat: String, Sendable, CaseIterable {
    case text, json

    /// The handler for `label` in this format at `level`, writing to stderr.
    public func handler(label: String, level: Logger.Level) -> any LogHandler {
        switch self {
        case .text:
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        case .json:
            var handler = JSONLogHandler(label: label, write: JSONLogHandler.standardError)
            handler.logLevel = level
            return handler
        }
    }

    /// Makes this format, at `level`, the process's logging system.
    public func bootstrap(level: Logger.Level) {
        LoggingSystem.bootstrap { label in handler(label: label, level: level) }
    }
}

/// A swift-log handler writing one JSON object per line: `time` (RFC 3339, UTC, milliseconds), `level`,
/// `message`, `logger` (the label), then the event's metadata fields by name (handler, provider and call metadata,
/// the call's winning). A field named like one of the four fixed keys is written as `field_NAME`. Strings are JSON
/// escaped, so a request-derived value (already escaped for the log by the code that logs it) cannot break a line.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public var logLevel: Logger.Level = .info
    private let label: String
    private let write: @Sendable (String) -> Void

    /// A handler for `label` handing each line (with its newline) to `write`.
    public init(label: String, metadataProvider: Logger.MetadataProvider? = nil, write: @escaping @Sendable (String) -> Void) {
        self.label = label
        self.metadataProvider = metadataProvider
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields = metadata
        if let provided = metadataProvider?.get() { fields.merge(provided) { _, new in new } }
        if let given = event.metadata { fields.merge(given) { _, new in new } }
        write(Self.line(time: Date(), level: event.level, message: "\(event.message)", label: label, fields: fields))
    }

    /// The fixed keys, in the order written.
    static let fixedKeys: Set<String> = ["time", "level", "message", "logger"]

    /// One line of JSON for an event.
    public static func line(time: Date, level: Logger.Level, message: String, label: String, fields: Logger.Metadata) -> String {
        var out = "{\"time\":" + quoted(time.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
        out += ",\"level\":" + quoted(level.rawValue)
        out += ",\"message\":" + quoted(message)
        out += ",\"logger\":" + quoted(label)
        for key in fields.keys.sorted() {
            let name = fixedKeys.contains(key) ? "field_" + key : key
            out += "," + quoted(name) + ":" + json(fields[key]!)
        }
        return out + "}\n"
    }

    private static func json(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let text): return quoted(text)
        case .stringConvertible(let convertible): return quoted(convertible.description)
        case .array(let values): return "[" + values.map(json).joined(separator: ",") + "]"
        case .dictionary(let values):
            return "{" + values.keys.sorted().map { quoted($0) + ":" + json(values[$0]!) }.joined(separator: ",") + "}"
        }
    }

    /// A JSON string: `"` and `\` escaped, control characters as `\n`, `\t`, ... or `\u00XX`, and the line and
    /// paragraph separators (which some readers take as line breaks) as `\u2028`/`\u2029`.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{2028}", "\u{2029}", _ where scalar.value < 0x20 || scalar.value == 0x7f:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// Writes a line to stderr in one `write(2)` (lines of different threads do not interleave).
    public static let standardError: @Sendable (String) -> Void = { line in writeToStandardError(line) }
}

/// Writes `line` to file descriptor 2, all of it, under a lock.
private func writeToStandardError(_ line: String) {
    stderrLock.withLock { _ in
        let bytes = Array(line.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { write(2, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 && errno == EINTR { continue }
            if written <= 0 { break }
            offset += written
        }
    }
}

private let stderrLock = Mutex(())
