import Foundation
import MeshCACore
import MeshCAIO
import MeshCAPKCS11
import SwiftASN1
import X509

/// A CA as stored in a ``StateDirectory``: its trust domain and signing identity.
public struct CAState: Sendable {
    /// The trust domain the CA issues under.
    public let trustDomain: TrustDomain
    /// The certificate, key, and bundle the CA signs with.
    public let signer: SigningIdentity
    /// Things that work but should be fixed (e.g. a CA key readable by other users).
    public let warnings: [String]
    /// Where the signing key lives (a file, or a key in an HSM); nil for a CA made in memory.
    public let keyLocation: CAKeyLocation?

    /// A CA from parts already loaded or made elsewhere.
    public init(trustDomain: TrustDomain, signer: SigningIdentity, warnings: [String] = [], keyLocation: CAKeyLocation? = nil) {
        self.trustDomain = trustDomain
        self.signer = signer
        self.warnings = warnings
        self.keyLocation = keyLocation
    }

    /// Settings for a new CA.
    public struct Options: Sendable {
        /// The trust domain (default `cluster.local`).
        public var trustDomain: TrustDomain
        /// The root key's type (default ECDSA P-256).
        public var keyType: KeyType
        /// The root's lifetime (default 87600h, ten years, as istiod).
        public var rootTTL: Duration
        /// Where the root key goes: nil for a PEM file in the state directory, else a key in a hardware security
        /// module (used when the token holds it, generated there with `keyType` when not).
        public var hsmKey: PKCS11URI?

        /// The defaults `meshca init` and a first `meshca issue` use.
        public init(trustDomain: TrustDomain? = nil, keyType: KeyType = .ecP256, rootTTL: Duration = .seconds(87_600 * 3600), hsmKey: PKCS11URI? = nil) {
            self.trustDomain = trustDomain ?? (try! TrustDomain("cluster.local"))
            self.keyType = keyType
            self.rootTTL = rootTTL
            self.hsmKey = hsmKey
        }
    }

    /// Creates a new self-signed CA in `directory` (created 0700 when missing), as of `now`.
    ///
    /// Refuses when a CA, or part of one, is already there. Files are written key first and
    /// `ca-cert.pem` last, each atomically, under the directory lock.
    public static func create(in directory: StateDirectory, options: Options, now: Date) throws -> CAState {
        try directory.create()
        return try directory.withLock {
            if directory.hasCA {
                let existing = try? loadUnlocked(from: directory)
                let what = existing.map { "trust domain \($0.trustDomain.name), root valid until \(Self.format($0.signer.certificate.notValidAfter))" } ?? "unreadable"
                throw DaemonError(
                    .caExists,
                    "A CA already exists in \(directory.path) (\(what)); meshca never overwrites one. To start over, move "
                        + "that directory aside (certificates it issued will no longer verify against a new root) and run meshca init again, "
                        + "or pass another --state-dir."
                )
            }
            if CAKeyFile.exists(directory.caKeyPath) {
                throw incomplete(directory, present: "ca-key.pem", missing: "ca-cert.pem")
            }
            let (key, hsm) = try makeKey(options.keyType, hsm: options.hsmKey)
            let root = try SelfSignedRoot.make(trustDomain: options.trustDomain, key: key, ttl: options.rootTTL, now: now)
            try CAKeyFile.write(try CAKeyFile.record(of: key, hsm: hsm), for: directory.caKeyPath)
            try AtomicFile.write(root.pem, to: directory.bundlePath, mode: 0o644)
            try AtomicFile.write(options.trustDomain.name + "\n", to: directory.trustDomainPath, mode: 0o644)
            try AtomicFile.write(root.pem, to: directory.caCertificatePath, mode: 0o644)
            return CAState(
                trustDomain: options.trustDomain,
                signer: try SigningIdentity(certificate: root, privateKey: key, bundle: [root]),
                warnings: [],
                keyLocation: try CAKeyFile.location(directory.caKeyPath)
            )
        }
    }

    /// A new CA key of `keyType`: generated in memory (written to a file by the caller), or, with `hsm`, the key the
    /// token holds under that URI, generated inside the token when it holds none.
    public static func makeKey(_ keyType: KeyType, hsm: PKCS11URI?) throws -> (key: Certificate.PrivateKey, hsm: PKCS11PrivateKey?) {
        guard let hsm else { return (try keyType.generate(), nil) }
        do {
            let key = try PKCS11Keys.openOrGenerate(hsm, keyType: keyType).key
            return (Certificate.PrivateKey(key), key)
        } catch {
            throw DaemonError(.signerUnavailable, error.message)
        }
    }

    /// Takes over a plug-in CA (Istio's `cacerts` layout, checked by ``PluginCA``) as this state
    /// directory's CA: the files are copied in (key 0600), `ca-cert.pem` last. Refuses when a CA exists.
    ///
    /// With `hsmKey`, the signing key is that key in a hardware security module (which must exist) instead of
    /// the directory's `ca-key.pem`; a plug-in directory may also name its key with a `ca-key.pkcs11` file.
    public static func importPlugin(
        from source: String, into directory: StateDirectory, trustDomain: TrustDomain, hsmKey: PKCS11URI? = nil, now: Date
    ) async throws -> CAState {
        let (signer, keyRecord) = try await PluginCA.load(from: source, key: hsmKey, now: now)
        try directory.create()
        return try directory.withLock {
            if directory.hasCA || CAKeyFile.exists(directory.caKeyPath) {
                throw DaemonError(
                    .caExists,
                    "A CA already exists in \(directory.path); meshca never overwrites one. Use an empty --state-dir for the plug-in CA."
                )
            }
            try CAKeyFile.write(keyRecord, for: directory.caKeyPath)
            if !signer.intermediates.isEmpty {
                try AtomicFile.write(signer.intermediates.map(\.pem).joined(), to: directory.chainPath, mode: 0o644)
            }
            try AtomicFile.write(signer.bundle.map(\.pem).joined(), to: directory.bundlePath, mode: 0o644)
            try AtomicFile.write(trustDomain.name + "\n", to: directory.trustDomainPath, mode: 0o644)
            try AtomicFile.write(signer.certificate.pem, to: directory.caCertificatePath, mode: 0o644)
            return CAState(trustDomain: trustDomain, signer: signer, warnings: [], keyLocation: try CAKeyFile.location(directory.caKeyPath))
        }
    }

    /// Loads the CA in `directory`, or creates one with `options` when there is none yet (the first
    /// `meshca issue` on a machine). Safe when several processes do this at once: one creates, the
    /// others load what it created.
    public static func loadOrCreate(in directory: StateDirectory, options: Options, now: Date) throws -> (state: CAState, created: Bool) {
        if directory.hasCA { return (try load(from: directory), false) }
        do {
            return (try create(in: directory, options: options, now: now), true)
        } catch let error as DaemonError where error.code == .caExists {
            return (try load(from: directory), false)
        }
    }

    /// Loads the CA in `directory`, checking that every file is there, parses, and that the key matches.
    /// Holds the directory's shared lock while reading, so a root activation is seen before or after, never
    /// halfway.
    public static func load(from directory: StateDirectory) throws -> CAState {
        try directory.withSharedLock { try loadUnlocked(from: directory) }
    }

    /// ``load(from:)`` for callers that already hold the directory's lock.
    static func loadUnlocked(from directory: StateDirectory) throws -> CAState {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw DaemonError(
                .noCA,
                "No meshca state directory at \(directory.path). Run `meshca init` to create a CA there (or `meshca issue`, "
                    + "which creates one with the defaults), or point --state-dir / MESHCA_STATE_DIR at an existing one."
            )
        }
        guard directory.hasCA else {
            if CAKeyFile.exists(directory.caKeyPath) {
                throw incomplete(directory, present: "ca-key.pem", missing: "ca-cert.pem")
            }
            throw DaemonError(.noCA, "There is no CA in \(directory.path) yet. Run `meshca init --state-dir \(directory.path)` to create one.")
        }
        let certificate = try parseCertificates(at: directory.caCertificatePath, in: directory)
        let bundle = try parseCertificates(at: directory.bundlePath, in: directory)
        guard let loaded = try CAKeyFile.load(directory.caKeyPath) else {
            throw incomplete(directory, present: "ca-cert.pem", missing: "ca-key.pem (or ca-key.pkcs11 for a key in an HSM)")
        }
        let (key, location) = loaded
        let domainText = try read(directory.trustDomainPath, in: directory, missing: "trust-domain")
        let trustDomain: TrustDomain
        do {
            trustDomain = try TrustDomain(domainText.trimmingCharacters(in: .whitespacesAndNewlines))
        } catch {
            throw DaemonError(.unreadableFile, "\(directory.trustDomainPath): \(error) Fix the file to hold the CA's trust domain on one line.")
        }
        let signer: SigningIdentity
        do {
            // A plug-in CA keeps the certificates between its signing certificate and the roots here.
            let chain = FileManager.default.fileExists(atPath: directory.chainPath)
                ? try parseCertificates(at: directory.chainPath, in: directory) : []
            signer = try SigningIdentity(
                certificate: certificate[0],
                privateKey: key,
                intermediates: chain.filter { $0 != certificate[0] && !bundle.contains($0) },
                bundle: bundle
            )
        } catch let error as IssuanceError {
            throw DaemonError(.unreadableFile, "The CA in \(directory.path) cannot sign: \(error.message)")
        }
        var warnings: [String] = []
        if case .pkcs11(let uri, _) = location, case .file(let pinFile) = uri.pinSource, let mode = AtomicFile.mode(of: pinFile), mode & 0o077 != 0 {
            warnings.append(
                "warning: the PIN file \(pinFile) of the CA key's token is accessible by other users (mode \(String(mode, radix: 8))); run: chmod 600 \(pinFile)"
            )
        }
        if case .file = location, let mode = AtomicFile.mode(of: directory.caKeyPath), mode & 0o077 != 0 {
            warnings.append(
                "warning: the CA key \(directory.caKeyPath) is accessible by other users (mode \(String(mode, radix: 8))); run: chmod 600 \(directory.caKeyPath)"
            )
        }
        return CAState(trustDomain: trustDomain, signer: signer, warnings: warnings, keyLocation: location)
    }

    private static func read(_ path: String, in directory: StateDirectory, missing name: String) throws -> String {
        guard FileManager.default.fileExists(atPath: path) else {
            throw incomplete(directory, present: "ca-cert.pem", missing: name)
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DaemonError(.unreadableFile, "Cannot read \(path) (permission denied?). Run meshca as the user that owns \(directory.path).")
        }
        return String(decoding: data, as: UTF8.self)
    }

    private static func parseCertificates(at path: String, in directory: StateDirectory) throws -> [Certificate] {
        let name = (path as NSString).lastPathComponent
        let text = try read(path, in: directory, missing: name)
        let certificates = (try? Certificate.parseAll(pem: text)) ?? []
        guard !certificates.isEmpty else {
            throw DaemonError(.unreadableFile, "\(path) holds no readable PEM certificate; it is damaged. Restore it from a backup.")
        }
        return certificates
    }

    private static func incomplete(_ directory: StateDirectory, present: String, missing: String) -> DaemonError {
        DaemonError(
            .incompleteState,
            "The CA in \(directory.path) is incomplete: \(present) exists but \(missing) is missing (an interrupted "
                + "`meshca init`, or a file removed by hand). Restore the file from a backup, or move the directory aside and run `meshca init` again."
        )
    }

    static func format(_ date: Date) -> String {
        date.formatted(.iso8601)
    }
}
