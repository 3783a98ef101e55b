/// The three files Istio's agent and meshca write for a workload, in one directory:
/// `cert-chain.pem` (leaf, intermediates, roots), `key.pem` (the private key, 0600 by default) and
/// `root-cert.pem` (the roots only).
public enum CredentialFiles {
    /// `cert-chain.pem`
    public static let chainFile = "cert-chain.pem"
    /// `key.pem`
    public static let keyFile = "key.pem"
    /// `root-cert.pem`
    public static let bundleFile = "root-cert.pem"
}
