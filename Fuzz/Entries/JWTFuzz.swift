import Crypto
import Foundation
import MeshCACore
import MeshCADaemon

/// Service-account JWTs as the daemon reads them from `authorization: Bearer …`: `JWTAuthenticator` with a
/// key set of one P-256 and one P-384 public key (a `--jwt-keys` file written at start), issuer
/// `https://kubernetes.default.svc`, audience `istio-ca`, at the fixed clock.
///
/// Each input is tried twice: as the token text, and as the JSON payload of a token signed with the P-256 key,
/// so the claim checks behind the signature see arbitrary claims.
enum JWTFuzz {
    static let signingKey = Fixtures.p256("meshca fuzz jwt es256")
    static let otherKey = try! P384.Signing.PrivateKey(rawRepresentation: SHA384.hash(data: Array("meshca fuzz jwt es384".utf8)))

    static func run(_ bytes: [UInt8]) async {
        let authenticator = await keys.authenticator
        _ = try? await authenticator.authenticate(String(decoding: bytes, as: UTF8.self), at: Fixtures.now)
        _ = try? await authenticator.authenticate(signed(payload: bytes), at: Fixtures.now)
    }

    /// `header.payload.signature` with an ES256 header, `payload` as given, signed with `signingKey`.
    static func signed(payload: [UInt8]) -> String {
        let input = base64URL(Array(#"{"alg":"ES256","typ":"JWT"}"#.utf8)) + "." + base64URL(payload)
        let signature = try! signingKey.signature(for: Array(input.utf8))
        return input + "." + base64URL(Array(signature.rawRepresentation))
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static let keys = Keys()

    /// The authenticator, made on first use (its init is async and reads a file).
    actor Keys {
        private var made: JWTAuthenticator?

        var authenticator: JWTAuthenticator {
            get async {
                if let made { return made }
                let path = Fixtures.temporaryPath("-jwt-keys.pem")
                let pem = signingKey.publicKey.pemRepresentation + "\n" + otherKey.publicKey.pemRepresentation + "\n"
                FileManager.default.createFile(atPath: path, contents: Data(pem.utf8))
                defer { try? FileManager.default.removeItem(atPath: path) }
                let authenticator = try! await JWTAuthenticator(
                    keysFile: path, issuer: "https://kubernetes.default.svc", audiences: ["istio-ca"],
                    trustDomain: Fixtures.trustDomain)
                made = authenticator
                return authenticator
            }
        }
    }
}
