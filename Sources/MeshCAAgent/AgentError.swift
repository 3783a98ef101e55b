@_exported import MeshCAErrors

/// Why the agent could not do something: its Workload API socket, a setting it cannot use, a refused bootstrap,
/// a CRL it will not publish, or an agent that `meshca agent status` cannot ask.
///
/// `message` is the sentence an operator reads: the value, the rule it broke and what to do next.
public typealias AgentError = CodedFailure<AgentErrorCode>

/// The closed list of reasons for an ``AgentError``; each `rawValue` is a stable kebab-case name.
public enum AgentErrorCode: String, ErrorCode {
    /// The socket path is unusable: too long for a Unix socket, or taken by something that is not a socket.
    case badSocketPath = "bad-socket-path"
    /// The socket's directory could not be created, or the socket's mode could not be set.
    case socketSetupFailed = "socket-setup-failed"
    /// The socket's directory, or one above it, can be written by every user and has no sticky bit.
    case unsafeDirectory = "unsafe-directory"
    /// A file named by a setting cannot be read or used (`--root-cert`, `--token-file`, `--jwt-file`), or no
    /// setting says how to verify the CA.
    case unusableSetting = "unusable-setting"
    /// The CA refused the current certificate and then the bootstrap credential.
    case bootstrapRefused = "bootstrap-refused"
    /// `--crl-url` answered with an HTTP status other than 200.
    case crlUnavailable = "crl-unavailable"
    /// A fetched CRL is past its nextUpdate.
    case crlExpired = "crl-expired"
    /// A fetched CRL has a lower number than the one held (an older CRL served again).
    case crlRolledBack = "crl-rolled-back"
    /// The fetched CRLs are not signed by this workload's CA.
    case crlForeign = "crl-foreign"
    /// No agent answers at `--status-addr`.
    case noAgent = "no-agent"
    /// The server at `--status-addr` answered with something that is not an agent's status.
    case notAnAgent = "not-an-agent"
}

extension CodedFailure where Code == AgentErrorCode {
    /// The `reason` label of `meshca_agent_renewal_failures_total` for a round that failed with this error.
    var failureReason: AgentFailureReason {
        switch code {
        case .bootstrapRefused: .bootstrapRefused
        case .unusableSetting: .configuration
        default: .other
        }
    }
}
