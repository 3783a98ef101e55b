import Foundation
import MeshCACore
import X509

/// The CA's trust bundle as workloads need it outside meshca's own files (`meshca root export`): every root in
/// `root-cert.pem`, which during a root rotation holds the old and the new one.
///
/// Two shapes: a PEM bundle, and Istio's `istio-ca-root-cert` ConfigMap (data key `root-cert.pem`), which
/// istio-agent mounts at `/var/run/secrets/istio/root-cert.pem` to verify the CA and istiod.
public struct TrustBundleExport: Sendable {
    /// The trusted roots, in the order `root-cert.pem` lists them.
    public let roots: [Certificate]
    /// The trust domain of the CA.
    public let trustDomain: TrustDomain

    /// The ConfigMap name istio-agent reads by default (istiod's `PILOT_CA_CERT_CONFIGMAP`).
    public static let istioConfigMapName = "istio-ca-root-cert"
    /// The ConfigMap data key istio-agent reads.
    public static let configMapKey = "root-cert.pem"

    /// The bundle of the CA in `directory`, read under its shared lock (a rotation step is seen whole or not at all).
    public init(directory: StateDirectory) throws {
        let state = try CAState.load(from: directory)
        self.init(roots: state.signer.bundle, trustDomain: state.trustDomain)
    }

    /// A bundle from roots already loaded.
    public init(roots: [Certificate], trustDomain: TrustDomain) {
        self.roots = roots
        self.trustDomain = trustDomain
    }

    /// The roots as concatenated PEM blocks, each ending in a newline.
    public var pem: String { roots.map(\.pem).joined() }

    /// A ConfigMap named `name` holding ``pem`` under `root-cert.pem`, as YAML for `kubectl apply -f -`. Without
    /// `namespace` the object names none, so `kubectl apply -n NS` places it.
    ///
    /// Throws ``CAError`` `invalid-kubernetes-name` when `name` or `namespace` is not a Kubernetes name (an RFC 1123
    /// label for the namespace, a subdomain for the name).
    public func configMap(name: String = TrustBundleExport.istioConfigMapName, namespace: String? = nil) throws(CAError) -> String {
        if let why = Self.labelProblem(namespace ?? "default") {
            throw CAError(.invalidKubernetesName, "\"\(namespace ?? "")\" is not a Kubernetes namespace name: \(why). Example: --namespace istio-system")
        }
        if let why = Self.subdomainProblem(name) {
            throw CAError(.invalidKubernetesName, "\"\(name)\" is not a ConfigMap name: \(why). Example: --name \(Self.istioConfigMapName)")
        }
        var lines = [
            "apiVersion: v1",
            "kind: ConfigMap",
            "metadata:",
            "  name: \(name)",
        ]
        if let namespace { lines.append("  namespace: \(namespace)") }
        lines += [
            "  labels:",
            "    app.kubernetes.io/managed-by: meshca",
            "  annotations:",
            "    meshca/trust-domain: \(trustDomain.name)",
            "    meshca/root-sha256: \(roots.map(\.sha256Fingerprint).joined(separator: ","))",
            "data:",
            "  \(Self.configMapKey): |",
        ]
        // A YAML literal block: every PEM line indented, the final newline kept (`|` clips to exactly one).
        lines += pem.split(separator: "\n").map { "    " + $0 }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Why `text` is not an RFC 1123 label (namespace names), or nil.
    static func labelProblem(_ text: String) -> String? {
        if text.isEmpty { return "it is empty" }
        if text.count > 63 { return "it is longer than 63 characters" }
        return characterProblem(text)
    }

    /// Why `text` is not an RFC 1123 subdomain (ConfigMap names), or nil.
    static func subdomainProblem(_ text: String) -> String? {
        if text.isEmpty { return "it is empty" }
        if text.count > 253 { return "it is longer than 253 characters" }
        for label in text.split(separator: ".", omittingEmptySubsequences: false) {
            if label.isEmpty { return "it has an empty part between dots" }
            if let why = characterProblem(String(label)) { return why }
        }
        return nil
    }

    private static func characterProblem(_ text: String) -> String? {
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789-")
        if let bad = text.first(where: { !allowed.contains($0) }) {
            return "\"\(String(bad).escapedForLog)\" is not allowed (lowercase letters, digits and \"-\" only)"
        }
        if text.hasPrefix("-") || text.hasSuffix("-") { return "it starts or ends with \"-\"" }
        return nil
    }
}
