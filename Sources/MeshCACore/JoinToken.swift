import Crypto
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A join token: a bearer secret bound to one workload identity, that also pins the CA's root.
///
/// Text form: `mct1.<id>.<secret>.<root-sha256>`: a 12-hex-digit public id, a 256-bit secret
/// (base64url), and the SHA-256 fingerprint of the CA root, so a client holding only the token can
/// verify the server it talks to, the way a kubeadm join token pins its CA. The CA stores only the id
/// and the SHA-256 of the secret.
public struct JoinToken: Sendable, Equatable, CustomStringConvertible {
    /// The version prefix of the text form.
    public static let prefix = "mct1"

    /// The public identifier (`meshca token list`, `revoke`).
    public let id: String
    /// The secret part; never logged.
    public let secret: String
    /// Lowercase hex SHA-256 of the CA root certificate (DER).
    public let rootFingerprint: String

    /// A new token with a random id and secret.
    public static func generate(rootFingerprint: String) -> JoinToken {
        var rng = SystemRandomNumberGenerator()
        let id = Hex.encode((0..<6).map { _ in UInt8.random(in: .min ... .max, using: &rng) })
        let secretBytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &rng) }
        return JoinToken(id: id, secret: Base64URL.encode(secretBytes), rootFingerprint: rootFingerprint.lowercased())
    }

    private init(id: String, secret: String, rootFingerprint: String) {
        self.id = id
        self.secret = secret
        self.rootFingerprint = rootFingerprint
    }

    /// Parses the text form; whitespace around it (a trailing newline from a file) is ignored.
    public init(parsing text: String) throws {
        let parts = text.trimmed.split(separator: ".", omittingEmptySubsequences: false)
        func fail(_ why: String) -> IssuanceError {
            IssuanceError(.invalidToken, "This is not a meshca join token (\(why)). Tokens look like mct1.<id>.<secret>.<root-sha256>; create one with `meshca token create`.")
        }
        guard parts.count == 4, parts[0] == Self.prefix else { throw fail("it must have four parts starting with mct1") }
        guard parts[1].count == 12, parts[1].allSatisfy(\.isHexDigit) else { throw fail("the id is not 12 hex digits") }
        guard parts[2].count == 43, parts[2].allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
            throw fail("the secret is damaged")
        }
        guard parts[3].count == 64, parts[3].allSatisfy(\.isHexDigit) else { throw fail("the root fingerprint is not 64 hex digits") }
        self.init(id: parts[1].lowercased(), secret: String(parts[2]), rootFingerprint: parts[3].lowercased())
    }

    /// Whether a bearer credential is meant to be a join token (rather than a JWT).
    public static func looksLikeToken(_ credential: String) -> Bool {
        credential.hasPrefix(prefix + ".")
    }

    /// The full text form, to hand to the workload.
    public var encoded: String { "\(Self.prefix).\(id).\(secret).\(rootFingerprint)" }

    /// Lowercase hex SHA-256 of the secret: what the CA stores.
    public var secretSHA256: String { Hex.sha256(Array(secret.utf8)) }

    /// A redacted form safe for logs: `mct1.<id>.…`.
    public var description: String { "\(Self.prefix).\(id).…" }
}

/// base64url without padding (RFC 4648 section 5).
enum Base64URL {
    static func encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacing("+", with: "-")
            .replacing("/", with: "_")
            .replacing("=", with: "")
    }
}
