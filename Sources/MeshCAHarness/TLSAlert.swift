/// A TLS alert received from the peer (RFC 8446 6), which is all one side learns when the *other* side
/// refused the handshake: a real server never tells its client more than this.
struct TLSAlert: Sendable, Equatable, CustomStringConvertible {
    /// The alert number, e.g. 48 for `unknown_ca`.
    let number: Int32

    /// The RFC name, e.g. `unknown_ca`.
    var name: String {
        switch number {
        case 10: "unexpected_message"
        case 20: "bad_record_mac"
        case 40: "handshake_failure"
        case 42: "bad_certificate"
        case 43: "unsupported_certificate"
        case 44: "certificate_revoked"
        case 45: "certificate_expired"
        case 46: "certificate_unknown"
        case 47: "illegal_parameter"
        case 48: "unknown_ca"
        case 49: "access_denied"
        case 50: "decode_error"
        case 51: "decrypt_error"
        case 70: "protocol_version"
        case 71: "insufficient_security"
        case 80: "internal_error"
        case 86: "inappropriate_fallback"
        case 109: "missing_extension"
        case 112: "unrecognized_name"
        case 116: "certificate_required"
        case 120: "no_application_protocol"
        default: "alert \(number)"
        }
    }

    /// `unknown_ca (48)`.
    var description: String { "\(name) (\(number))" }

    /// What a peer most likely meant by this alert when it refused our certificate, as a clause that
    /// completes "The <peer> refused the <us>'s certificate: ...".
    var meaningForOurCertificate: String {
        switch number {
        case 48:
            "it does not trust the CA that issued it (alert unknown_ca: the chain does not lead to a root in its root-cert.pem)"
        case 45: "it considers it expired (alert certificate_expired)"
        case 42, 46:
            "it could not accept it (alert \(name): a root it does not trust, a certificate not valid yet, or a SPIFFE ID it does not allow)"
        case 43: "it cannot use this kind of certificate (alert unsupported_certificate)"
        case 44: "it considers it revoked (alert certificate_revoked)"
        case 49: "it does not allow this identity (alert access_denied: an authorization policy refused the SPIFFE ID)"
        case 40: "it gave up without a specific reason (alert handshake_failure: often an identity it does not allow)"
        default: "it sent alert \(name)"
        }
    }
}
