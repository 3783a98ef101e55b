import Crypto
import Foundation

/// Compact JWS (ES256) built by hand with swift-crypto, independent of the JWT library the daemon uses: the
/// service-account tokens tests present.
public enum JWTText {
    /// `claims` signed with `key`; the header names `kid` when given.
    public static func es256(_ claims: [String: Any], key: P256.Signing.PrivateKey, kid: String? = nil) throws -> String {
        var headerFields = ["alg": "ES256", "typ": "JWT"]
        if let kid { headerFields["kid"] = kid }
        let header = try JSONSerialization.data(withJSONObject: headerFields)
        let payload = try JSONSerialization.data(withJSONObject: claims)
        let signingInput = base64url(header) + "." + base64url(payload)
        let signature = try key.signature(for: Data(signingInput.utf8))
        return signingInput + "." + base64url(signature.rawRepresentation)
    }

    /// base64url without padding (RFC 4648 section 5).
    public static func base64url(_ data: some DataProtocol) -> String {
        Data(data).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
