/// A problem with meshca's files or its ledger, as seen by the commands and the daemon.
///
/// `message` is the sentence a person reads: what went wrong, with the path, and what to do next.
public struct DaemonError: Error, Sendable, CustomStringConvertible {
    /// An extensible set of reasons.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The stable kebab-case name.
        public let rawValue: String
        private init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// No CA has been created in the state directory.
        public static let noCA = Code("no-ca")
        /// `init` was asked to create a CA where one exists.
        public static let caExists = Code("ca-exists")
        /// Some CA files exist and others are missing (an interrupted init, or files removed by hand).
        public static let incompleteState = Code("incomplete-state")
        /// The state directory cannot be created, read or written.
        public static let stateDirectoryUnusable = Code("state-directory-unusable")
        /// A file exists but cannot be read or parsed.
        public static let unreadableFile = Code("unreadable-file")
        /// A file could not be written.
        public static let writeFailed = Code("write-failed")
        /// The certificate was signed but the ledger could not record it, so it was not handed out.
        public static let notRecorded = Code("not-recorded")
        /// A root rotation step was asked for at the wrong stage (activate before prepare, ...).
        public static let rotationStage = Code("rotation-stage")
        /// A root rotation step was refused by its safety gate (identities lagging, live certificates).
        public static let rotationRefused = Code("rotation-refused")
        /// `meshca backup`/`restore` was given a destination that is not empty.
        public static let targetNotEmpty = Code("target-not-empty")
        /// `meshca restore --force` was pointed at a state directory whose ledger another process has open.
        public static let stateInUse = Code("state-in-use")
        /// `meshca revoke` was given a serial the ledger does not know.
        public static let unknownSerial = Code("unknown-serial")
        /// `meshca revoke` was given a certificate revoked before; revocations are final.
        public static let alreadyRevoked = Code("already-revoked")
        /// A backup (or the copy `meshca backup` just made) does not hold a usable CA and an intact ledger.
        public static let backupInvalid = Code("backup-invalid")
        /// The CA key in a hardware security module cannot be used (module, token, PIN or key missing or failing).
        public static let signerUnavailable = Code("signer-unavailable")
    }

    /// The machine-readable reason.
    public let code: Code
    /// The sentence for a person.
    public let message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
