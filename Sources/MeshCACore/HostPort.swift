#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import MeshCAErrors

/// A network address: a host name or IP address and a port, written `HOST:PORT` or `[IPv6]:PORT`.
///
/// The one parser for every address meshca reads: `serve --listen/--monitoring`, `agent --ca/--status-addr`,
/// `handshake --connect/--listen`, and the CA client.
public struct HostPort: Hashable, Sendable, CustomStringConvertible {
    /// The host name or address, without brackets, e.g. `127.0.0.1`, `::1` or `localhost`.
    public var host: String
    /// The port, 0 through 65535; 0 lets the system choose.
    public var port: Int

    /// Why a text is not an address, as a clause ("the port \"x\" is not a number").
    ///
    /// Not an ``IssuanceError``: a clause the caller puts into its own sentence, with the text and where it came from.
    public struct Problem: CodedError {
        /// The clause, without the text itself.
        public let why: String
        init(_ why: String) { self.why = why }
        /// Always `invalid-address`.
        public var code: IssuanceError.Code { .invalidAddress }
        /// The clause.
        public var message: String { why }
    }

    /// Creates an address from its parts, unchecked.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT` or `[IPv6]:PORT` (port 0 allowed; surrounding spaces ignored).
    public static func parse(_ text: String) throws(Problem) -> HostPort {
        let value = text.trimmed
        let hostPart: Substring
        let portPart: Substring
        if value.hasPrefix("[") {
            guard let close = value.firstIndex(of: "]") else {
                throw Problem("the \"[\" has no matching \"]\"")
            }
            hostPart = value[value.index(after: value.startIndex)..<close]
            let rest = value[value.index(after: close)...]
            guard rest.hasPrefix(":") else { throw Problem("\":PORT\" must follow \"]\"") }
            portPart = rest.dropFirst()
        } else {
            guard let colon = value.lastIndex(of: ":") else { throw Problem("it has no \":PORT\"") }
            hostPart = value[..<colon]
            portPart = value[value.index(after: colon)...]
            if hostPart.contains(":") { throw Problem("an IPv6 address must be in brackets") }
        }
        guard !hostPart.isEmpty else { throw Problem("the host is empty") }
        guard !hostPart.contains(where: \.isWhitespace) else { throw Problem("the host contains a space") }
        guard portPart.allSatisfy(\.isASCII), let port = Int(portPart) else {
            throw Problem("the port \"\(portPart)\" is not a number")
        }
        guard (0...65_535).contains(port) else { throw Problem("the port \(port) is outside 0-65535") }
        return HostPort(host: String(hostPart), port: port)
    }

    /// `HOST:PORT`, with brackets around an IPv6 address.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Whether the host is a dotted IPv4 literal such as `127.0.0.1`.
    public var isIPv4Literal: Bool { Self.ipv4Bytes(host) != nil }

    /// The four bytes of a dotted IPv4 literal, or nil for anything else.
    public static func ipv4Bytes(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        let bytes = parts.compactMap { UInt8($0) }
        return bytes.count == 4 ? bytes : nil
    }
}
