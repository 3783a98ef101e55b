import Foundation
import MeshCACore
import MeshCAIO
import SwiftASN1
import X509
import MeshCAPlatform

/// One workload's credential files, read and checked: `cert-chain.pem` (leaf, intermediates, roots),
/// `key.pem` and `root-cert.pem`, as istio-agent and `meshca issue` write them.
///
/// Loading checks only what can be checked without OpenSSL: each file exists, is readable and holds the
/// right PEM blocks. Whether `key.pem` belongs to the leaf is checked by OpenSSL itself when the
/// TLS context is built, so the raw reason is OpenSSL's.
public struct HandshakeCredentials: Sendable {
    /// `cert-chain.pem`
    public static let chainFile = CredentialFiles.chainFile
    /// `key.pem`
    public static let keyFile = CredentialFiles.keyFile
    /// `root-cert.pem`
    public static let bundleFile = CredentialFiles.bundleFile

    /// The directory the files were read from.
    public let directory: String
    /// `cert-chain.pem`, leaf first. Never empty.
    public let chain: [Certificate]
    /// The text of `key.pem`.
    let keyPEM: String
    /// `root-cert.pem`: the roots this workload trusts. Never empty.
    public let roots: [Certificate]

    /// The workload certificate.
    public var leaf: Certificate { chain[0] }

    /// The leaf's SPIFFE ID, when it has exactly one URI SAN holding a valid one.
    public var identity: SPIFFEID? {
        let uris = leaf.uriSANs
        guard uris.count == 1 else { return nil }
        return try? SPIFFEID(parsing: uris[0])
    }

    /// Reads and checks the three files in `directory`. `role` only words the messages ("the server's key.pem").
    ///
    /// Throws ``HandshakeFailure`` with ``HandshakeFailure/Code/missingFile``,
    /// ``HandshakeFailure/Code/unreadableFile`` or ``HandshakeFailure/Code/malformedFile``.
    ///
    /// A directory `meshca agent` (or the kubelet) keeps has a `..data` link to the current version; it is resolved
    /// once and the three files read from that version, so a renewal swapping versions underneath never pairs
    /// one issuance's certificate with another's key.
    public static func load(from directory: String, role: HandshakeReport.Role) throws -> HandshakeCredentials {
        let source = CredentialDirectory(path: directory).currentFiles
        let chainText = try read(chainFile, in: source, role: role)
        let keyText = try read(keyFile, in: source, role: role)
        let rootsText = try read(bundleFile, in: source, role: role)
        let chain = try certificates(in: chainText, file: chainFile, directory: directory, role: role)
        let roots = try certificates(in: rootsText, file: bundleFile, directory: directory, role: role)
        let keyPath = directory + "/" + keyFile
        let keyBlocks = (try? PEMDocument.parseMultiple(pemString: keyText)) ?? []
        guard keyBlocks.contains(where: { $0.discriminator.hasSuffix("PRIVATE KEY") }) else {
            let found =
                keyBlocks.isEmpty
                ? "no PEM block" : "only " + keyBlocks.map { "\"\($0.discriminator)\"" }.joined(separator: ", ")
            throw HandshakeFailure(
                .malformedFile, detectedBy: role,
                cause: "The \(role)'s \(keyPath) holds \(found), not a \"PRIVATE KEY\" block.",
                fix:
                    "Write the workload's private key there (PEM, as `meshca issue` writes it), or issue the \(role)'s files again.",
                rawReason: "no -----BEGIN ... PRIVATE KEY----- block in \(keyPath)"
            )
        }
        return HandshakeCredentials(directory: directory, chain: chain, keyPEM: keyText, roots: roots)
    }

    /// Reads one file with open(2)/read(2), so a failure carries the real errno.
    private static func read(_ name: String, in directory: String, role: HandshakeReport.Role) throws -> String {
        let path = directory + "/" + name
        if access(path, F_OK) != 0 && errno == ENOENT {
            let what =
                FileManager.default.fileExists(atPath: directory)
                ? "is missing" : "is missing (the directory \(directory) does not exist)"
            throw HandshakeFailure(
                .missingFile, detectedBy: role,
                cause: "The \(role)'s \(path) \(what).",
                fix:
                    "Point --\(role == .server ? "server" : "client") (or --certs) at a directory holding cert-chain.pem, key.pem and root-cert.pem, e.g. one written by `meshca issue --out DIR`.",
                rawReason: "\(path): \(OpenSSLLibrary.systemErrorText(ENOENT))"
            )
        }
        let descriptor = open(path, O_RDONLY)
        var bytes: [UInt8] = []
        var failure: Int32 = descriptor < 0 ? errno : 0
        if descriptor >= 0 {
            defer { close(descriptor) }
            var buffer = [UInt8](repeating: 0, count: 16_384)
            while true {
                let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
                if count > 0 {
                    bytes += buffer[0..<count]
                    continue
                }
                if count < 0 { failure = errno }
                break
            }
        }
        guard failure == 0 else {
            throw HandshakeFailure(
                .unreadableFile, detectedBy: role,
                cause: "The \(role)'s \(path) cannot be read: \(OpenSSLLibrary.systemErrorText(failure)).",
                fix:
                    "Make it a regular file readable by this user (e.g. `chmod 600` for key.pem and run as its owner), or issue the files again.",
                rawReason: "\(path): \(OpenSSLLibrary.systemErrorText(failure)) (errno \(failure))"
            )
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Every `CERTIFICATE` block of a file, refusing a file that has none or a block that does not parse.
    private static func certificates(in text: String, file: String, directory: String, role: HandshakeReport.Role)
        throws -> [Certificate]
    {
        let path = directory + "/" + file
        do {
            let certificates = try Certificate.parseAll(pem: text)
            if !certificates.isEmpty { return certificates }
        } catch {
            throw HandshakeFailure(
                .malformedFile, detectedBy: role,
                cause: "The \(role)'s \(path) holds a certificate that cannot be parsed.",
                fix: "Restore the file, or issue the \(role)'s files again (`meshca issue --out \(directory)`).",
                rawReason: "\(path): \(error)"
            )
        }
        throw HandshakeFailure(
            .malformedFile, detectedBy: role,
            cause:
                "The \(role)'s \(path) holds no \"CERTIFICATE\" PEM block (\(text.isEmpty ? "the file is empty" : "\(text.utf8.count) bytes of something else")).",
            fix: "Restore the file, or issue the \(role)'s files again (`meshca issue --out \(directory)`).",
            rawReason: "no -----BEGIN CERTIFICATE----- block in \(path)"
        )
    }
}
