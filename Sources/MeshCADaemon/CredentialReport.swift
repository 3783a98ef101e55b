import Foundation
import MeshCACore
import MeshCAIO
@_spi(FixedExpiryValidationTime) import X509

/// What `meshca inspect` finds in a directory of workload credentials: identity, validity, whether the
/// chain verifies to the bundle, whether the key matches the leaf, and the file modes.
public struct CredentialReport: Sendable {
    /// How serious a finding is.
    public enum Severity: String, Sendable {
        case ok, warning, error
    }

    /// One line of the report.
    public struct Finding: Sendable {
        /// `ok`, `warning` or `error`.
        public let severity: Severity
        /// What was checked and what was found; for problems, what to do.
        public let message: String
    }

    /// The inspected directory.
    public let directory: String
    /// The leaf's SPIFFE ID, when it could be read.
    public let spiffeID: String?
    /// The leaf's validity, when it could be read.
    public let notBefore: Date?
    public let notAfter: Date?
    /// Every check, in order.
    public let findings: [Finding]

    /// Whether any check failed.
    public var hasErrors: Bool { findings.contains { $0.severity == .error } }

    /// Inspects `directory` as of `now`.
    public static func inspect(directory: String, now: Date) async -> CredentialReport {
        var findings: [Finding] = []
        func add(_ severity: Severity, _ message: String) { findings.append(Finding(severity: severity, message: message)) }

        func load(_ name: String) -> String? {
            let path = directory + "/" + name
            guard FileManager.default.fileExists(atPath: path) else {
                add(.error, "\(name) is missing. Issue credentials into \(directory) (e.g. `meshca issue --sa NAME --out \(directory)`).")
                return nil
            }
            guard let data = FileManager.default.contents(atPath: path) else {
                add(.error, "\(name) is not readable by this user. Run as the workload's user or fix the file's owner.")
                return nil
            }
            return String(decoding: data, as: UTF8.self)
        }

        let chainText = load(CredentialFiles.chainFile)
        let keyText = load(CredentialFiles.keyFile)
        let bundleText = load(CredentialFiles.bundleFile)

        var chain: [Certificate] = []
        if let chainText {
            chain = (try? Certificate.parseAll(pem: chainText)) ?? []
            if chain.isEmpty { add(.error, "\(CredentialFiles.chainFile) holds no readable certificate.") }
        }
        var bundle: [Certificate] = []
        if let bundleText {
            bundle = (try? Certificate.parseAll(pem: bundleText)) ?? []
            if bundle.isEmpty { add(.error, "\(CredentialFiles.bundleFile) holds no readable certificate.") }
        }
        let leaf = chain.first
        var spiffeID: String?
        if let leaf {
            let uris = leaf.uriSANs
            spiffeID = uris.first
            if uris.count == 1 {
                add(.ok, "identity \(uris[0])")
            } else {
                add(.error, "the leaf has \(uris.count) URI SANs; an X509-SVID has exactly one.")
            }
            findings += validity(of: leaf, now: now).map { Finding(severity: $0.0, message: $0.1) }
        }
        if let keyText, let leaf {
            if let key = try? Certificate.PrivateKey(pemEncoded: keyText) {
                if key.publicKey == leaf.publicKey {
                    add(.ok, "key.pem matches the leaf certificate")
                } else {
                    add(.error, "key.pem does not match the leaf in cert-chain.pem (different public keys): the files come from different issuances. Issue them again together.")
                }
            } else {
                add(.error, "key.pem is not a PEM private key meshca can read.")
            }
        }
        if let leaf, !bundle.isEmpty {
            findings.append(await verifyChain(leaf: leaf, chain: Array(chain.dropFirst()), bundle: bundle, now: now))
        }
        findings += modes(in: directory)
        return CredentialReport(directory: directory, spiffeID: spiffeID, notBefore: leaf?.notValidBefore, notAfter: leaf?.notValidAfter, findings: findings)
    }

    private static func validity(of leaf: Certificate, now: Date) -> [(Severity, String)] {
        let lifetime = leaf.notValidAfter.timeIntervalSince(leaf.notValidBefore)
        let left = leaf.notValidAfter.timeIntervalSince(now)
        let period = "valid \(leaf.notValidBefore.formatted(.iso8601)) to \(leaf.notValidAfter.formatted(.iso8601))"
        if now < leaf.notValidBefore {
            return [(.error, "not yet valid: \(period); this machine's clock may be behind (now \(now.formatted(.iso8601))).")]
        }
        if left <= 0 {
            return [(.error, "expired \(HumanDuration.format(.seconds(Int64(-left)))) ago: \(period). Issue a new certificate.")]
        }
        let text = "\(period), \(HumanDuration.format(.seconds(Int64(left)))) left"
        if left < lifetime / 3 {
            return [(.warning, text + " (less than a third of its lifetime; it should have been renewed)")]
        }
        return [(.ok, text)]
    }

    private static func verifyChain(leaf: Certificate, chain: [Certificate], bundle: [Certificate], now: Date) async -> Finding {
        let trustDomain = leaf.uriSANs.first.flatMap { try? SPIFFEID(parsing: $0) }?.trustDomain
        guard let trustDomain else {
            return Finding(severity: .error, message: "chain not checked: the leaf has no valid SPIFFE ID")
        }
        // Roots repeated at the end of cert-chain.pem (Istio's layout) are not intermediates.
        let intermediates = chain.filter { !bundle.contains($0) }
        var verifier = Verifier(rootCertificates: CertificateStore(bundle)) {
            RFC5280Policy(fixedExpiryValidationTime: now)
            SPIFFEVerifierPolicy(trustDomain: trustDomain)
        }
        let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore(intermediates))
        switch result {
        case .validCertificate:
            return Finding(severity: .ok, message: "chain verifies to root-cert.pem (\(bundle.count) root\(bundle.count == 1 ? "" : "s"))")
        case .couldNotValidate(let failures):
            let reasons = failures.map { "\($0.policyFailureReason)" }
            let detail = reasons.isEmpty ? "no path to any root in root-cert.pem" : reasons.joined(separator: "; ")
            return Finding(severity: .error, message: "chain does not verify to root-cert.pem: \(detail). The certificate comes from another CA, or root-cert.pem is stale.")
        }
    }

    private static func modes(in directory: String) -> [Finding] {
        var out: [Finding] = []
        for name in [CredentialFiles.keyFile, CredentialFiles.chainFile, CredentialFiles.bundleFile] {
            guard let mode = AtomicFile.mode(of: directory + "/" + name) else { continue }
            let octal = String(mode, radix: 8)
            if name == CredentialFiles.keyFile, mode & 0o077 != 0 {
                out.append(Finding(severity: .warning, message: "key.pem mode \(octal): readable by other users; run chmod 600 \(directory)/key.pem unless a sidecar must share it"))
            } else {
                out.append(Finding(severity: .ok, message: "\(name) mode \(octal)"))
            }
        }
        return out
    }
}
