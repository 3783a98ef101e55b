import MeshCAPlatform

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

    /// Writes the three files into `directory` (created when missing, checked as `CredentialDirectory` checks
    /// an agent's), each atomically: key first, then the chain, then the roots, as istio-agent orders them.
    /// Plain files, for `meshca issue`; the agent writes versioned directories (`CredentialDirectory.write`).
    public static func write(
        to directory: String,
        certChainPEM: String,
        keyPEM: String,
        bundlePEM: String,
        keyMode: mode_t = 0o600
    ) throws {
        try CredentialDirectory(path: directory).prepareDirectory()
        try AtomicFile.write(keyPEM, to: directory + "/" + keyFile, mode: keyMode)
        try AtomicFile.write(certChainPEM, to: directory + "/" + chainFile, mode: 0o644)
        try AtomicFile.write(bundlePEM, to: directory + "/" + bundleFile, mode: 0o644)
    }
}
