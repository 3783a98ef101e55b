import Foundation
import MeshCACore
import MeshCAIO
import MeshCAPKCS11
import SwiftASN1
import X509

/// Where a CA key lives, as the state directory records it: a PEM file (`ca-key.pem`, mode 0600), or a key in a
/// hardware security module named by a PKCS#11 URI kept in `ca-key.pkcs11` beside it (the URI only: no PIN, no key
/// material). The same pair of names is used for `next/` and `previous/` during a root rotation and in a plug-in
/// CA directory.
public enum CAKeyLocation: Sendable, Equatable, CustomStringConvertible {
    /// A PEM private key at this path.
    case file(String)
    /// A key in a PKCS#11 token; the URI is recorded in the file at `reference`.
    case pkcs11(PKCS11URI, reference: String)

    /// "file /path/ca-key.pem (0600)" or "PKCS#11 pkcs11:token=...".
    public var description: String {
        switch self {
        case .file(let path): "file \(path)"
        case .pkcs11(let uri, _): "HSM \(uri)"
        }
    }

    /// The file that records the key (the PEM, or the URI).
    public var path: String {
        switch self {
        case .file(let path): path
        case .pkcs11(_, let reference): reference
        }
    }
}

/// Reading and writing a CA key by its PEM path, following ``CAKeyLocation``.
public enum CAKeyFile {
    /// `ca-key.pkcs11` beside `ca-key.pem`.
    public static func referencePath(for pemPath: String) -> String {
        (pemPath.hasSuffix(".pem") ? String(pemPath.dropLast(4)) : pemPath) + ".pkcs11"
    }

    /// Whether a key (either form) is recorded for `pemPath`.
    public static func exists(_ pemPath: String) -> Bool {
        FileManager.default.fileExists(atPath: pemPath) || FileManager.default.fileExists(atPath: referencePath(for: pemPath))
    }

    /// Where the key recorded for `pemPath` lives, without opening it; nil when there is none.
    public static func location(_ pemPath: String) throws -> CAKeyLocation? {
        let reference = referencePath(for: pemPath)
        let hasPEM = FileManager.default.fileExists(atPath: pemPath)
        guard FileManager.default.fileExists(atPath: reference) else { return hasPEM ? .file(pemPath) : nil }
        if hasPEM {
            throw DaemonError(
                .incompleteState,
                "Both \(pemPath) and \(reference) exist, so meshca cannot tell whether the CA key is the file or the key in the "
                    + "HSM. Keep the one that matches the CA certificate (`meshca doctor` on a copy of the directory with either "
                    + "removed tells) and move the other away.")
        }
        guard let data = FileManager.default.contents(atPath: reference) else {
            throw DaemonError(.unreadableFile, "Cannot read \(reference) (permission denied?). Run meshca as the user that owns it.")
        }
        do {
            return .pkcs11(try PKCS11URI(parsing: String(decoding: data, as: UTF8.self)), reference: reference)
        } catch {
            throw DaemonError(.unreadableFile, "\(reference) does not hold a usable PKCS#11 URI: \(error.message) Fix the URI in the file.")
        }
    }

    /// The key recorded for `pemPath`, opened (for an HSM key: the module loaded, the token logged in, the key found);
    /// nil when there is none.
    public static func load(_ pemPath: String) throws -> (key: Certificate.PrivateKey, location: CAKeyLocation)? {
        guard let location = try location(pemPath) else { return nil }
        switch location {
        case .file(let path):
            guard let data = FileManager.default.contents(atPath: path) else {
                throw DaemonError(.unreadableFile, "Cannot read \(path) (permission denied?). Run meshca as the user that owns it.")
            }
            do {
                return (try Certificate.PrivateKey(pemEncoded: String(decoding: data, as: UTF8.self)), location)
            } catch {
                throw DaemonError(.unreadableFile, "\(path) is not a PEM private key meshca can read (\(error)). Restore it from a backup.")
            }
        case .pkcs11(let uri, let reference):
            do {
                return (Certificate.PrivateKey(try PKCS11Keys.open(uri)), location)
            } catch {
                throw DaemonError(.signerUnavailable, "The CA key recorded in \(reference) cannot be used: \(error.message)")
            }
        }
    }

    /// What to write to record `key`: the PEM text, or the URI for an HSM key; and the file name that goes with it.
    public static func record(of key: Certificate.PrivateKey, hsm: PKCS11PrivateKey?) throws -> Record {
        if let hsm { return Record(text: hsm.uri.description + "\n", isReference: true) }
        return Record(text: try key.serializeAsPEM().pemString + "\n", isReference: false)
    }

    /// The recorded form of a key, to copy between `ca-key.*` files.
    public struct Record: Sendable {
        /// The file's contents.
        public let text: String
        /// Whether it is a PKCS#11 URI (`ca-key.pkcs11`) rather than a PEM key (`ca-key.pem`).
        public let isReference: Bool

        /// The record of a key given by its PKCS#11 URI.
        public init(uri: PKCS11URI) { self.init(text: uri.description + "\n", isReference: true) }

        init(text: String, isReference: Bool) {
            self.text = text
            self.isReference = isReference
        }
    }

    /// The record kept for `pemPath`, as text (for moving a key between `ca-key.*` files); nil when there is none.
    public static func read(_ pemPath: String) throws -> Record? {
        guard let location = try location(pemPath) else { return nil }
        guard let data = FileManager.default.contents(atPath: location.path) else {
            throw DaemonError(.unreadableFile, "Cannot read \(location.path). Run meshca as the user that owns the state directory.")
        }
        if case .pkcs11 = location { return Record(text: String(decoding: data, as: UTF8.self), isReference: true) }
        return Record(text: String(decoding: data, as: UTF8.self), isReference: false)
    }

    /// Writes `record` for `pemPath` (mode 0600) and removes the other form, so exactly one is there.
    public static func write(_ record: Record, for pemPath: String) throws {
        let reference = referencePath(for: pemPath)
        try AtomicFile.write(record.text, to: record.isReference ? reference : pemPath, mode: 0o600)
        let other = record.isReference ? pemPath : reference
        if FileManager.default.fileExists(atPath: other) { try FileManager.default.removeItem(atPath: other) }
    }
}

extension CAState {
    /// The key recorded for the signing certificate, without opening it.
    public static func keyLocation(in directory: StateDirectory) throws -> CAKeyLocation? {
        try CAKeyFile.location(directory.caKeyPath)
    }
}
