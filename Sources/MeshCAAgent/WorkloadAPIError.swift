/// A reason the Workload API server cannot start or keep its socket.
///
/// `message` is the sentence an operator reads: the path, the rule it broke and what to do next.
public struct WorkloadAPIError: Error, Sendable, CustomStringConvertible {
    /// An extensible set of reasons.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The stable kebab-case name.
        public let rawValue: String
        private init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The socket path is unusable: too long for a Unix socket, or taken by something that is not a socket.
        public static let badSocketPath = Code("bad-socket-path")
        /// The socket's directory could not be created, or the socket's mode could not be set.
        public static let socketSetupFailed = Code("socket-setup-failed")
        /// The socket's directory, or one above it, can be written by every user and has no sticky bit.
        public static let unsafeDirectory = Code("unsafe-directory")
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
