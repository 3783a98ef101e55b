@_exported import MeshCAErrors

/// A problem with meshca's files or its ledger, or with a listener or HTTP fetch, as seen by the commands, the
/// daemon and the agent.
///
/// `message` is the sentence a person reads: what went wrong, with the path, and what to do next.
public typealias DaemonError = CodedFailure<DaemonErrorCode>

/// The closed list of reasons for a ``DaemonError``; each `rawValue` is a stable kebab-case name.
public enum DaemonErrorCode: String, ErrorCode {
    /// No CA has been created in the state directory.
    case noCA = "no-ca"
    /// `init` was asked to create a CA where one exists.
    case caExists = "ca-exists"
    /// Some CA files exist and others are missing (an interrupted init, or files removed by hand).
    case incompleteState = "incomplete-state"
    /// The state directory cannot be created, read or written.
    case stateDirectoryUnusable = "state-directory-unusable"
    /// A file exists but cannot be read or parsed.
    case unreadableFile = "unreadable-file"
    /// A file could not be written.
    case writeFailed = "write-failed"
    /// The certificate was signed but the ledger could not record it, so it was not handed out.
    case notRecorded = "not-recorded"
    /// A root rotation step was asked for at the wrong stage (activate before prepare, ...).
    case rotationStage = "rotation-stage"
    /// A root rotation step was refused by its safety gate (identities lagging, live certificates).
    case rotationRefused = "rotation-refused"
    /// `meshca backup`/`restore` was given a destination that is not empty.
    case targetNotEmpty = "target-not-empty"
    /// `meshca restore --force` was pointed at a state directory whose ledger another process has open.
    case stateInUse = "state-in-use"
    /// `meshca revoke` was given a serial the ledger does not know.
    case unknownSerial = "unknown-serial"
    /// `meshca revoke` was given a certificate revoked before; revocations are final.
    case alreadyRevoked = "already-revoked"
    /// A backup (or the copy `meshca backup` just made) does not hold a usable CA and an intact ledger.
    case backupInvalid = "backup-invalid"
    /// The CA key in a hardware security module cannot be used (module, token, PIN or key missing or failing).
    case signerUnavailable = "signer-unavailable"
    /// `--ledger` names no ledger meshca can use (not a PostgreSQL URL, or a feature its engine lacks).
    case ledgerUnusable = "ledger-unusable"
    /// A listener could not bind its address (the port is taken, or the address is not local).
    case listenFailed = "listen-failed"
    /// The settings of `meshca serve` or `meshca agent` break their rules (``ConfigurationError``, which lists
    /// every problem).
    case invalidConfiguration = "invalid-configuration"
    /// One setting's value breaks its key's rule (``SettingProblem``, a clause of ``ConfigurationError``).
    case invalidValue = "invalid-value"
    /// A plain-HTTP GET failed: not an http:// URL, no connection, no answer in time, or a body too large.
    case fetchFailed = "fetch-failed"
}
