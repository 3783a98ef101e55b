import MeshCACore
import MeshCAErrors
import MeshCALedger

/// Who a request comes from, once authenticated: the identity its certificate will carry, the
/// requester the ledger records, and the join-token use to commit with the issuance, if any.
public struct AuthenticatedCaller: Sendable {
    /// The SPIFFE ID the caller proved.
    public let identity: SPIFFEID
    /// The ledger's requester (name and auth method).
    public let requester: Requester
    /// The join token to consume in the same transaction as the issuance record.
    public let tokenUse: TokenUse?

    /// Creates a caller.
    public init(identity: SPIFFEID, requester: Requester, tokenUse: TokenUse? = nil) {
        self.identity = identity
        self.requester = requester
        self.tokenUse = tokenUse
    }
}

/// Why a request could not be authenticated. The message goes to the caller (gRPC `UNAUTHENTICATED`,
/// which Istio's agent does not retry), so it names the credential and what to do, never a secret.
///
/// Not a ``CAError``: it also carries the method tried, for the ledger's rejection row.
public struct AuthenticationFailure: CodedError {
    /// `unauthenticated`, or `token-rejected` when the join token was used up as its use was recorded.
    public let code: CAError.Code
    /// Which method was tried: `token`, `jwt`, `mtls`, or `none`.
    public let method: String
    /// The sentence for the caller, with control characters escaped (it may quote the credential's claims,
    /// and it is logged and recorded as a rejection).
    public let message: String
    /// Whether the credential verified but named no identity this CA can issue for (a client certificate that is
    /// not an X509-SVID of the trust domain, a JWT naming no service account): Istio's "ID extraction" error.
    public let noIdentity: Bool

    /// Creates a failure.
    public init(_ code: CAError.Code = .unauthenticated, method: String, _ message: String, noIdentity: Bool = false) {
        self.code = code
        self.method = method
        self.message = message.escapedForLog
        self.noIdentity = noIdentity
    }
}
