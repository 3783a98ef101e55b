/// The one shape of meshca's errors, shared by every target: a stable, machine-readable code from a closed list,
/// and a sentence for a person that names the value, the rule it broke and what to do next.
///
/// Each target has one such error type with its own ``ErrorCode`` enum: `IssuanceError` (MeshCACore: the CA's
/// rules), `DaemonError` (MeshCAIO: files, the state directory, listening, HTTP fetches), `LedgerError`,
/// `CAClientError` (MeshCATransport), `PKCS11Error`, `AgentError`, `HandshakeFailure` (MeshCAHarness),
/// `CAError` (MeshCADaemon: its refusals, its settings and the use cases' own failures) and `BenchError`
/// (`meshca-bench`). A few other types conform with a code from their target's enum because they carry more than
/// a sentence: a report of several problems, a clause for a larger sentence, or the attempts behind it. Codes are
/// what the ledger stores as a rejection's reason, what metric labels and `--json` carry; they are never renamed.
/// Messages may be reworded.
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
public protocol ErrorCode: RawRepresentable<String>, CaseIterable, Hashable, Sendable, CustomStringConvertible {}

extension ErrorCode {
    /// The kebab-case name.
    public var description: String { rawValue }
}
