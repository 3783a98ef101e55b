import Foundation
import MeshCACore
import MeshCAIO
import MeshCAPKCS11
import SwiftASN1
import X509

/// A plug-in CA in Istio's `cacerts` layout: `ca-cert.pem` (the signing CA), `ca-key.pem` (its key),
/// `cert-chain.pem` (from the signing CA up, as Istio's tooling writes it: ca-cert then root) and
/// `root-cert.pem` (the roots workloads trust).
///
/// Checked the way istiod checks it at start: all four files (a partial set is an error listing what is
/// missing), ca-cert is a CA allowed to sign, the key matches it, and it chains to root-cert.pem
/// through cert-chain.pem.
public enum PluginCA {
    /// The four file names.
    public static let files = ["ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem"]

    /// Reads and checks the directory; returns the signing identity (intermediates exclude the signing
    /// certificate and the roots).
    public static func load(from directory: String, now: Date) async throws -> SigningIdentity {
        try await load(from: directory, key: nil, now: now).signer
    }

    /// ``load(from:now:)`` with the key taken from a hardware security module: `key` when given (the directory then
    /// needs no `ca-key.pem`), else `ca-key.pkcs11` in the directory when it holds a PKCS#11 URI instead of
    /// `ca-key.pem`. Returns, beside the identity, what to record as the state directory's key.
    public static func load(from directory: String, key hsmKey: PKCS11URI?, now: Date) async throws -> (signer: SigningIdentity, key: CAKeyFile.Record) {
        let keyPath = directory + "/ca-key.pem"
        let keyInHSM = hsmKey != nil || (!FileManager.default.fileExists(atPath: keyPath) && CAKeyFile.exists(keyPath))
        let missing = files.filter { !(keyInHSM && $0 == "ca-key.pem") && !FileManager.default.fileExists(atPath: directory + "/" + $0) }
        guard missing.isEmpty else {
            throw DaemonError(
                .incompleteState,
                "The plug-in CA in \(directory) is incomplete: \(missing.joined(separator: ", ")) \(missing.count == 1 ? "is" : "are") missing. "
                    + "It needs all of \(files.joined(separator: ", ")) (Istio's cacerts layout; `meshca intermediate create --out DIR` makes one)"
                    + (missing.contains("ca-key.pem")
                        ? "; a key in a hardware security module is given with --key PKCS11-URI, or by a ca-key.pkcs11 file holding its URI."
                        : ".")
            )
        }
        func text(_ name: String) throws -> String {
            guard let data = FileManager.default.contents(atPath: directory + "/" + name) else {
                throw DaemonError(.unreadableFile, "Cannot read \(directory)/\(name); check its permissions.")
            }
            return String(decoding: data, as: UTF8.self)
        }
        func certificates(_ name: String) throws -> [Certificate] {
            let parsed = (try? Certificate.parseAll(pem: try text(name))) ?? []
            guard !parsed.isEmpty else { throw DaemonError(.unreadableFile, "\(directory)/\(name) holds no readable PEM certificate.") }
            return parsed
        }
        let caCert = try certificates("ca-cert.pem")[0]
        let roots = try certificates("root-cert.pem")
        let chain = try certificates("cert-chain.pem")
        let key: Certificate.PrivateKey
        let record: CAKeyFile.Record
        if let hsmKey {
            do {
                key = Certificate.PrivateKey(try PKCS11Keys.open(hsmKey))
            } catch {
                throw DaemonError(.signerUnavailable, "The plug-in CA's key (--key) cannot be used: \(error.message)")
            }
            record = CAKeyFile.Record(uri: hsmKey)
        } else if keyInHSM, let loaded = try CAKeyFile.load(keyPath), case .pkcs11(let uri, _) = loaded.location {
            key = loaded.key
            record = CAKeyFile.Record(uri: uri)
        } else {
            do {
                key = try Certificate.PrivateKey(pemEncoded: try text("ca-key.pem"))
            } catch let error as DaemonError {
                throw error
            } catch {
                throw DaemonError(.unreadableFile, "\(directory)/ca-key.pem is not a PEM private key meshca can read (RSA, EC or PKCS#8): \(error).")
            }
            record = try CAKeyFile.record(of: key, hsm: nil)
        }
        let intermediates = chain.filter { $0 != caCert && !roots.contains($0) }
        let identity: SigningIdentity
        do {
            identity = try SigningIdentity(certificate: caCert, privateKey: key, intermediates: intermediates, bundle: roots)
        } catch let error as IssuanceError {
            throw DaemonError(.unreadableFile, "The plug-in CA in \(directory) cannot sign: \(error.message)")
        }
        var verifier = Verifier(rootCertificates: CertificateStore(roots)) {
            RFC5280Policy()
        }
        guard case .validCertificate = await verifier.validate(leaf: caCert, intermediates: CertificateStore(intermediates)) else {
            throw DaemonError(
                .unreadableFile,
                "\(directory)/ca-cert.pem does not chain to \(directory)/root-cert.pem through cert-chain.pem (or one of them has expired). "
                    + "cert-chain.pem must hold the certificates from ca-cert up to the root."
            )
        }
        return (identity, record)
    }
}
