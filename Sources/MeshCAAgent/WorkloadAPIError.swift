import MeshCAErrors

/// A reason the Workload API server cannot start or keep its socket.
///
/// `message` is the sentence an operator reads: the path, the rule it broke and what to do next.
public struct WorkloadAPIError: CodedError {
    /// The closed list of reasons; each `rawValue` is a stable kebab-case name.
    public enum Code: String, ErrorCode {
        /// The socket path is unusable: too long for a Unix socket, or taken by something that is not a socket.
        case badSocketPath = "bad-socket-path"
        /// The socket's directory could not be created, or the socket's mode could not be set.
        case socketSetupFailed = "socket-setup-failed"
        /// The socket's directory, or one above it, can be written by every user and has no sticky bit.
        case unsafeDirectory = "unsafe-directory"
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
