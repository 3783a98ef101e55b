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
