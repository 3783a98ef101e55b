@_exported import MeshCAErrors

/// Why the CA refused to do something: a bad name, a bad request, or a policy it will not break.
///
/// `code` is stable and machine-readable (it is what the ledger stores as a rejection's reason code);
/// `message` is a full sentence for a person: the value, the rule it broke, and what to do next.
public typealias IssuanceError = CodedFailure<IssuanceErrorCode>

/// The closed list of reasons for an ``IssuanceError``; each `rawValue` is a stable kebab-case name.
public enum IssuanceErrorCode: String, ErrorCode {
    /// A trust domain that breaks the SPIFFE / DNS naming rules.
    case invalidTrustDomain = "invalid-trust-domain"
    /// A string that is not a well-formed SPIFFE ID.
    case invalidSPIFFEID = "invalid-spiffe-id"
    /// A Kubernetes namespace or service account name that breaks DNS-1123.
    case invalidName = "invalid-name"
    /// A duration such as `24h` that could not be read.
    case invalidDuration = "invalid-duration"
    /// The CSR is not PEM, not a PKCS#10 request, or otherwise unreadable.
    case malformedCSR = "malformed-csr"
    /// The CSR's signature does not verify with the public key it carries.
    case badCSRSignature = "bad-csr-signature"
    /// The CSR's key type or size is not accepted (e.g. RSA below 2048 bits).
    case unsupportedKey = "unsupported-key"
    /// The CSR asks for an identity other than the one the caller authenticated as.
    case identityMismatch = "identity-mismatch"
    /// The CSR asks for a SAN this CA never issues (DNS, IP, e-mail, a second URI).
    case forbiddenSAN = "forbidden-san"
    /// The CSR asks to be a certificate authority.
    case caRequested = "ca-requested"
    /// The requested lifetime is above the policy maximum.
    case ttlTooLong = "ttl-too-long"
    /// The signing certificate has expired or is not yet valid.
    case signerNotValid = "signer-not-valid"
    /// The SPIFFE ID belongs to a trust domain this CA does not serve.
    case foreignTrustDomain = "foreign-trust-domain"
    /// The CA key cannot be used (it does not match its certificate, or is not a CA).
    case invalidSigner = "invalid-signer"
    /// A credential that is not a well-formed join token.
    case invalidToken = "invalid-token"
    /// A revocation reason that is not one of the RFC 5280 CRLReason names meshca accepts.
    case invalidRevocationReason = "invalid-revocation-reason"
    /// Data that should be an X.509 v2 CRL is not one.
    case malformedCRL = "malformed-crl"
    /// A CA's answer that a client must not use: a certificate for another key or identity, or a root bundle
    /// without the root the client pinned.
    case unacceptableAnswer = "unacceptable-answer"
    /// Signing, or the check of the signed result, failed. A bug, not a user error.
    case signingFailed = "signing-failed"
    /// The CA key cannot sign right now (its hardware security module or token is unreachable, removed or failing).
    /// Nothing was issued; a retry may succeed once the module is back.
    case signerUnavailable = "signer-unavailable"
    /// A text that is not `HOST:PORT` (``HostPort/Problem``).
    case invalidAddress = "invalid-address"

    /// The message shown to the requester and the operator, with control characters escaped (`escapedForLog`):
    /// it often quotes the request, and it goes to logs, the ledger and terminals.
    public static func prepare(_ message: String) -> String { message.escapedForLog }
}
