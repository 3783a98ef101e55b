/// The one shape of meshca's errors, shared by every target: a stable, machine-readable code from a closed list,
/// and a sentence for a person that names the value, the rule it broke and what to do next.
///
/// Each target has one such error type with its own ``ErrorCode`` enum. Most are ``CodedFailure`` with that enum:
/// `IssuanceError` (MeshCACore: the CA's rules), `DaemonError` (MeshCAIO: files, the state directory, listening,
/// HTTP fetches), `CAClientError` (MeshCATransport), `AgentError`, `CAError` (MeshCADaemon: its refusals, its
/// settings and the use cases' own failures) and `BenchError` (`meshca-bench`). `LedgerError`, `PKCS11Error` and
/// `HandshakeFailure` (MeshCAHarness) are structs of their own because they carry more than a sentence (the
/// database, the PKCS#11 return value, who detected a failed handshake and its fix), and so are a few types that
/// conform with a code from their target's enum: a report of several problems, a clause for a larger sentence, or
/// the attempts behind it. Codes are what the ledger stores as a rejection's reason, what metric labels and `--json`
/// carry; they are never renamed. Messages may be reworded.
///
/// A target that declares an error type re-exports this module (`@_exported import MeshCAErrors`), so code that
/// catches its errors reads `code` and `message` without importing MeshCAErrors itself.
public protocol CodedError: Error, Sendable, CustomStringConvertible {
    associatedtype Code: ErrorCode
    /// The machine-readable reason.
    var code: Code { get }
    /// The sentence for a person.
    var message: String { get }
}

extension CodedError {
    public var description: String { message }
}

/// A closed list of stable kebab-case reasons (`ttl-too-long`, `disk-full`, ...).
public protocol ErrorCode: RawRepresentable<String>, CaseIterable, Hashable, Sendable, CustomStringConvertible {
    /// The message as ``CodedFailure`` keeps it. The default keeps it as written; a list whose messages quote
    /// what a request sent escapes it here, so no caller can forget to.
    static func prepare(_ message: String) -> String
}

extension ErrorCode {
    /// The kebab-case name.
    public var description: String { rawValue }

    public static func prepare(_ message: String) -> String { message }
}

/// The error type of a target whose errors are a code and a sentence: `typealias DaemonError =
/// CodedFailure<DaemonErrorCode>`, thrown as `DaemonError(.diskFull, "...")` and caught as `DaemonError`.
public struct CodedFailure<Code: ErrorCode>: CodedError {
    /// The machine-readable reason.
    public let code: Code
    /// The sentence for a person (as ``ErrorCode/prepare(_:)`` of its code list keeps it).
    public let message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = Code.prepare(message)
    }
}
