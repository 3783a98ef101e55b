import Foundation

/// Who asked for a certificate and how they proved it, as recorded in the ledger.
public struct Requester: Sendable, Equatable {
    /// A readable name: `local:alice(uid 1000)`, `token:3f9a…`, `jwt:system:serviceaccount:ns:sa`, ...
    public var name: String
    /// How the caller was authenticated: `local`, `token`, `jwt` or `mtls`.
    public var authMethod: String

    /// Creates a requester.
    public init(name: String, authMethod: String) {
        self.name = name
        self.authMethod = authMethod
    }
}

extension Requester {
    /// The user running a command on the CA host, as the ledger records them: `local:<user>(uid N)`, method `local`.
    public static var localUser: Requester {
        let uid = getuid()
        let name = getpwuid(uid).flatMap { $0.pointee.pw_name.map { String(cString: $0) } } ?? "unknown"
        return Requester(name: "local:\(name)(uid \(uid))", authMethod: "local")
    }
}
