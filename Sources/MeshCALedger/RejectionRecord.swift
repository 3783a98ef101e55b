import Foundation

/// One request the CA refused, kept so operators can see who is misconfigured or probing.
///
/// `occurredAt` is stored as whole Unix seconds (a fraction of a second is dropped).
public struct RejectionRecord: Sendable, Equatable, Codable {
    /// The row id the ledger assigned, or nil for a rejection not yet recorded.
    public var id: Int64?
    /// When the request was refused.
    public var occurredAt: Date
    /// Who asked, in the same form as `IssuanceRecord.requester`.
    public var requester: String
    /// How the requester authenticated: "local", "token", "jwt", "mtls".
    public var authMethod: String
    /// What the request asked for (usually a SPIFFE ID); "" when it could not be read.
    public var requestedIdentity: String
    /// A stable machine-readable reason, e.g. "ttl-too-long".
    public var reasonCode: String
    /// The message the requester was given.
    public var message: String
    /// The network peer the request came from, e.g. "ipv4:127.0.0.1:53412"; "" for local CLI use and for
    /// rejections recorded before schema version 2.
    public var peer: String

    /// Creates a rejection; leave `id` nil, the ledger assigns it.
    public init(
        id: Int64? = nil,
        occurredAt: Date,
        requester: String,
        authMethod: String,
        requestedIdentity: String,
        reasonCode: String,
        message: String,
        peer: String = ""
    ) {
        self.id = id
        self.occurredAt = occurredAt
        self.requester = requester
        self.authMethod = authMethod
        self.requestedIdentity = requestedIdentity
        self.reasonCode = reasonCode
        self.message = message
        self.peer = peer
    }
}
