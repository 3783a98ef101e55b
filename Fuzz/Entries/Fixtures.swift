import Crypto
import Foundation
import MeshCACore
import MeshCADaemon
import X509

/// What the targets check inputs against, made once per process: a clock, a trust domain, an identity and a CA.
///
/// Keys are derived from public constants (they sign nothing real), so a crash input replays the same way in
/// every process and a JWT in the corpus verifies.
enum Fixtures {
    /// The fixed "now" of every check: 2027-01-15T08:00:00Z.
    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    static let trustDomain = try! TrustDomain("cluster.local")
    /// The caller every CSR is checked for: spiffe://cluster.local/ns/default/sa/fuzz.
    static let identity = try! SPIFFEID(trustDomain: trustDomain, namespace: "default", serviceAccount: "fuzz")

    /// A P-256 key from a constant.
    static func p256(_ label: String) -> P256.Signing.PrivateKey {
        try! P256.Signing.PrivateKey(rawRepresentation: SHA256.hash(data: Array(label.utf8)))
    }

    /// A CA for cluster.local with a root made at `now`.
    static let authority: CertificateAuthority = {
        let key = Certificate.PrivateKey(p256("meshca fuzz root"))
        let root = try! SelfSignedRoot.make(trustDomain: trustDomain, key: key, ttl: .seconds(10 * 365 * 86_400), now: now)
        let signer = try! SigningIdentity(certificate: root, privateKey: key, bundle: [root])
        return CertificateAuthority(trustDomain: trustDomain, signer: signer)
    }()

    /// A fresh file name under the temporary directory, for entries that can only read from a path.
    static func temporaryPath(_ suffix: String) -> String {
        FileManager.default.temporaryDirectory.path + "/meshca-fuzz-\(UUID().uuidString)\(suffix)"
    }
}
