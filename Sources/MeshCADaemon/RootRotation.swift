import Foundation
import MeshCACore
import MeshCAIO
import MeshCALedger
import SwiftASN1
import X509

/// Staged rotation of a self-signed meshca root, in three steps that each keep traffic flowing:
///
/// 1. **prepare**: a new root is made (`next/`) and published next to the old one in `root-cert.pem`, so every
///    certificate handed out from now on (and every Workload API update) carries both roots. Signing is unchanged.
///    A bridge certificate (the new root certified by the old one, see `CrossCertificate`) is made too.
/// 2. **activate**: signing switches to the new root; the old one moves to `previous/` and stays in the bundle.
///    The daemon sends the bridge after its serving certificate, so clients that still trust only the old root
///    can renew.
///    Refused while an identity holding a live certificate has not fetched one since *prepare* (it would not
///    trust certificates from the new root yet), unless forced; the refusal lists them, a forced activation is
///    recorded with them.
/// 3. **retire**: the old root leaves the bundle once no unexpired, unrevoked certificate it signed is left;
///    its key is deleted and its certificate kept in `retired/`.
///
/// Each step is recorded in the ledger (a `root-change` event on the hash chain) before it changes any file,
/// and changes the files under the state directory's lock; a running `meshca serve` picks the change up from
/// the files (see `CAStateWatcher`). The stage in between lives in `rotation.json`. A step interrupted
/// half-way (power cut) is finished by running it again.
public struct RootRotation: Sendable {
    /// The state directory whose root rotates.
    public let directory: StateDirectory
    /// Where each step is recorded and the gates read from.
    public let ledger: SQLiteLedger

    /// A rotation of the CA in `directory`, recorded in `ledger`.
    public init(directory: StateDirectory, ledger: SQLiteLedger) {
        self.directory = directory
        self.ledger = ledger
    }

    /// Seconds after *prepare* from which an issuance counts as carrying the new bundle: five times the interval
    /// at which `meshca serve` looks for changed CA files, so a busy daemon has picked the bundle up by then.
    public static let pickUpMargin: TimeInterval = 5

    /// The stage of a rotation in progress, as kept in `rotation.json`.
    public struct Progress: Codable, Sendable, Equatable {
        /// Where a rotation stands.
        public enum Stage: String, Codable, Sendable {
            /// Both roots are published; the old one still signs.
            case prepared
            /// The new root signs; the old one is still published.
            case activated
        }

        /// The current stage.
        public var stage: Stage
        /// When the new root was published.
        public var preparedAt: Date
        /// When signing switched to the new root.
        public var activatedAt: Date?
        /// SHA-256 of the old root's DER, lowercase hex.
        public var oldRootFingerprint: String
        /// SHA-256 of the new root's DER, lowercase hex.
        public var newRootFingerprint: String
        /// Whether the activation overrode its gate.
        public var forced: Bool

        /// From this second on an issuance counts as "fetched the new bundle": ``RootRotation/pickUpMargin``
        /// after *prepare*, rounded up to the whole second the ledger stores, because a running daemon switches to
        /// the new bundle only when its watcher next looks (every second), and a certificate issued before that
        /// still carries the old bundle.
        var bundlePublishedSince: Date {
            Date(timeIntervalSince1970: (preparedAt.timeIntervalSince1970 + RootRotation.pickUpMargin).rounded(.up))
        }
    }

    /// The rotation in progress in `directory`, or nil when none is.
    public static func progress(in directory: StateDirectory) throws -> Progress? {
        guard let data = FileManager.default.contents(atPath: directory.rotationPath) else {
            if FileManager.default.fileExists(atPath: directory.rotationPath) {
                throw DaemonError(.unreadableFile, "Cannot read \(directory.rotationPath) (permission denied?). Run meshca as the user that owns \(directory.path).")
            }
            return nil
        }
        do {
            return try decoder.decode(Progress.self, from: data)
        } catch {
            throw DaemonError(
                .unreadableFile,
                "\(directory.rotationPath) is damaged (\(error)). It records the root rotation's stage; restore it from a backup "
                    + "(or, if next/ exists the stage is prepared, if previous/ exists it is activated)."
            )
        }
    }

    // MARK: prepare

    /// What *prepare* did.
    public struct Prepared: Sendable {
        /// The root that still signs.
        public let oldRoot: Certificate
        /// The root published for the coming activation.
        public let newRoot: Certificate
        /// The bundle now handed out.
        public let bundle: [Certificate]
    }

    /// Makes the next root (same key type and lifetime as the current one unless given) and publishes the
    /// two-root bundle.
    public func prepare(keyType: KeyType? = nil, ttl: Duration? = nil, actor: String, now: Date) async throws -> Prepared {
        let state = try CAState.load(from: directory)
        try requireNoRotation()
        let signer = state.signer
        guard signer.intermediates.isEmpty, signer.bundle.contains(signer.certificate) else {
            throw DaemonError(
                .rotationStage,
                "This CA signs with a plug-in intermediate (\(directory.caCertificatePath) is not one of the roots in "
                    + "\(directory.bundlePath)); its root belongs to whoever issued the cacerts files, so meshca cannot rotate it. "
                    + "Rotate it where it was made, then install the new cacerts in a new state directory."
            )
        }
        let oldRoot = signer.certificate
        let keyType = try keyType ?? KeyType.of(oldRoot.publicKey).map(KeyType.init(parsing:)) ?? .ecP256
        let lifetime = oldRoot.notValidAfter.timeIntervalSince(oldRoot.notValidBefore) - 120
        let ttl = ttl ?? .seconds(max(Int64(lifetime), 86_400))
        let key = try keyType.generate()
        let keyID = Hex.encode(SubjectKeyIdentifier(hash: key.publicKey).keyIdentifier).prefix(8)
        let newRoot = try SelfSignedRoot.make(
            trustDomain: state.trustDomain, key: key, ttl: ttl, now: now,
            commonName: "meshca root \(now.formatted(.iso8601.year().month().day())) \(keyID)")
        let bundle = signer.bundle + [newRoot]
        let bridge = try CrossCertificate.make(newRoot: newRoot, oldRoot: oldRoot, oldKey: signer.privateKey, now: now)

        try await record("prepare", subject: newRoot.sha256Fingerprint, old: oldRoot, new: newRoot, at: now, actor: actor)
        // The bridge leaves the CA (in the daemon's TLS chain), so like every certificate it is recorded first.
        try await ledger.record(
            IssuanceRecord(
                certificate: bridge, trustDomain: state.trustDomain, issuedAt: now,
                requestedTTL: .seconds(Int64(bridge.notValidAfter.timeIntervalSince(now))), issuer: oldRoot,
                requester: Requester(name: actor, authMethod: "local")))
        let keyPEM = try key.serializeAsPEM().pemString + "\n"
        try directory.withLock {
            try requireNoRotation()
            try Self.makeDirectory(directory.nextRootDirectory)
            try AtomicFile.write(keyPEM, to: directory.nextRootKeyPath, mode: 0o600)
            try AtomicFile.write(newRoot.pem, to: directory.nextRootCertificatePath, mode: 0o644)
            try AtomicFile.write(bridge.pem, to: directory.nextBridgePath, mode: 0o644)
            try writeProgress(
                Progress(
                    stage: .prepared, preparedAt: now, activatedAt: nil, oldRootFingerprint: oldRoot.sha256Fingerprint,
                    newRootFingerprint: newRoot.sha256Fingerprint, forced: false))
            try AtomicFile.write(bundle.map(\.pem).joined(), to: directory.bundlePath, mode: 0o644)
        }
        return Prepared(oldRoot: oldRoot, newRoot: newRoot, bundle: bundle)
    }

    // MARK: status

    /// Where a rotation stands and who has caught up.
    public struct Status: Sendable {
        /// The rotation in progress, nil when none is.
        public let progress: Progress?
        /// The roots handed out now (`root-cert.pem`).
        public let bundle: [Certificate]
        /// The CA certificate that signs now.
        public let signing: Certificate
        /// Identities holding live certificates; `contactedSince` tells whether each fetched one since *prepare*.
        /// Empty when no rotation is in progress.
        public let identities: [SQLiteLedger.IdentityContact]
        /// After activation: the live certificates the old root signed, which keep *retire* waiting.
        public let liveOnOldRoot: (count: Int, lastNotAfter: Date?, latest: [IssuanceRecord])?
        /// After activation: usable join tokens that pin the old root, which keep *retire* waiting too.
        public let tokensOnOldRoot: [JoinTokenRecord]

        /// Identities that have not fetched a certificate since *prepare*.
        public var lagging: [SQLiteLedger.IdentityContact] { identities.filter { !$0.contactedSince } }
    }

    /// The rotation's stage and gates as of `now`.
    public func status(now: Date) async throws -> Status {
        let state = try CAState.load(from: directory)
        let progress = try Self.progress(in: directory)
        let identities = try await progress.asyncMap {
            try await ledger.identityContacts(since: $0.bundlePublishedSince, now: now)
        } ?? []
        var live: (count: Int, lastNotAfter: Date?, latest: [IssuanceRecord])?
        var tokens: [JoinTokenRecord] = []
        if let progress, progress.stage == .activated {
            live = try await ledger.liveCertificates(
                issuedBy: progress.oldRootFingerprint, excluding: bridgeSerials(), now: now, limit: 10)
            tokens = try await tokensPinningOldRoot(progress, now: now)
        }
        return Status(
            progress: progress, bundle: state.signer.bundle, signing: state.signer.certificate, identities: identities,
            liveOnOldRoot: live, tokensOnOldRoot: tokens)
    }

    // MARK: activate

    /// What *activate* did.
    public struct Activated: Sendable {
        /// The root that signs from now on.
        public let newRoot: Certificate
        /// The root that signed until now; still in the bundle.
        public let oldRoot: Certificate
        /// Identities that had not caught up (non-empty only when forced).
        public let lagging: [SQLiteLedger.IdentityContact]
    }

    /// Switches signing to the prepared root. Refused while identities lag, unless `force`.
    public func activate(force: Bool, actor: String, now: Date) async throws -> Activated {
        guard let progress = try Self.progress(in: directory), progress.stage == .prepared else {
            throw try wrongStage(for: "activate")
        }
        let next = try loadNextRoot(expecting: progress.newRootFingerprint)
        let oldCertificateText = try Self.read(existingPreviousOr: directory.caCertificatePath, previous: directory.previousRootCertificatePath)
        let oldKeyText = try Self.read(existingPreviousOr: directory.caKeyPath, previous: directory.previousRootKeyPath)
        guard let oldRoot = try? Certificate(pemEncoded: oldCertificateText), oldRoot.sha256Fingerprint == progress.oldRootFingerprint else {
            throw DaemonError(
                .unreadableFile,
                "The signing certificate in \(directory.path) is not the root the rotation started from (\(progress.oldRootFingerprint.prefix(16))…). "
                    + "Someone changed ca-cert.pem by hand during the rotation; restore it from a backup."
            )
        }

        let lagging = try await ledger.identityContacts(since: progress.bundlePublishedSince, now: now).filter { !$0.contactedSince }
        if !lagging.isEmpty && !force {
            throw DaemonError(.rotationRefused, Self.laggingMessage(lagging, progress: progress))
        }
        try await record(
            force && !lagging.isEmpty ? "activate-forced" : "activate", subject: next.certificate.sha256Fingerprint,
            old: oldRoot, new: next.certificate, at: now, actor: actor, lagging: lagging)

        let bundle = try CAState.load(from: directory).signer.bundle
        try directory.withLock {
            guard let current = try Self.progress(in: directory), current.stage == .prepared else { throw try wrongStage(for: "activate") }
            try Self.makeDirectory(directory.previousRootDirectory)
            // The old root's files move to previous/ first, so a rerun after an interruption finds them there.
            let previousKey = directory.previousRootKeyPath
            let previousCertificate = directory.previousRootCertificatePath
            if !FileManager.default.fileExists(atPath: previousKey) { try AtomicFile.write(oldKeyText, to: previousKey, mode: 0o600) }
            if !FileManager.default.fileExists(atPath: previousCertificate) { try AtomicFile.write(oldCertificateText, to: previousCertificate, mode: 0o644) }
            // The bridge (new root certified by the old one) lets clients that trust only the old root reach the
            // daemon, whose serving certificate now comes from the new root; it is served until retire.
            if let bridge = FileManager.default.contents(atPath: directory.nextBridgePath) {
                try AtomicFile.write(String(decoding: bridge, as: UTF8.self), to: directory.bridgePath, mode: 0o644)
            }
            let published = [next.certificate] + bundle.filter { $0 != next.certificate }
            try AtomicFile.write(published.map(\.pem).joined(), to: directory.bundlePath, mode: 0o644)
            try AtomicFile.write(next.keyText, to: directory.caKeyPath, mode: 0o600)
            try AtomicFile.write(next.certificate.pem, to: directory.caCertificatePath, mode: 0o644)
            var updated = current
            updated.stage = .activated
            updated.activatedAt = now
            updated.forced = force && !lagging.isEmpty
            try writeProgress(updated)
            try? FileManager.default.removeItem(atPath: directory.nextRootDirectory)
        }
        return Activated(newRoot: next.certificate, oldRoot: oldRoot, lagging: lagging)
    }

    // MARK: retire

    /// What *retire* did.
    public struct Retired: Sendable {
        /// The root removed from the bundle.
        public let oldRoot: Certificate
        /// Where its certificate was kept.
        public let archivedAt: String
        /// The bundle handed out from now on.
        public let bundle: [Certificate]
    }

    /// Removes the old root from the bundle and deletes its key. Refused while it has live certificates.
    public func retire(actor: String, now: Date) async throws -> Retired {
        guard let progress = try Self.progress(in: directory), progress.stage == .activated else {
            throw try wrongStage(for: "retire")
        }
        guard let oldRoot = StateDirectory.certificate(at: directory.previousRootCertificatePath) else {
            throw DaemonError(.incompleteState, "\(directory.previousRootCertificatePath) is missing or unreadable, so meshca cannot tell which root to retire. Restore it from a backup.")
        }
        let live = try await ledger.liveCertificates(
            issuedBy: oldRoot.sha256Fingerprint, excluding: bridgeSerials(), now: now, limit: 10)
        if live.count > 0 {
            throw DaemonError(.rotationRefused, Self.liveMessage(live, oldRoot: oldRoot))
        }
        let pinned = try await tokensPinningOldRoot(progress, now: now)
        if !pinned.isEmpty {
            throw DaemonError(.rotationRefused, Self.pinnedTokensMessage(pinned, oldRoot: oldRoot))
        }
        let state = try CAState.load(from: directory)
        try await record("retire", subject: oldRoot.sha256Fingerprint, old: oldRoot, new: state.signer.certificate, at: now, actor: actor)
        let bundle = state.signer.bundle.filter { $0 != oldRoot }
        let archive = directory.retiredDirectory + "/\(now.formatted(.iso8601.year().month().day()))-\(oldRoot.sha256Fingerprint.prefix(16))-ca-cert.pem"
        try directory.withLock {
            try Self.makeDirectory(directory.retiredDirectory)
            try AtomicFile.write(oldRoot.pem, to: archive, mode: 0o644)
            try AtomicFile.write(bundle.map(\.pem).joined(), to: directory.bundlePath, mode: 0o644)
            try? FileManager.default.removeItem(atPath: directory.previousRootDirectory)
            try FileManager.default.removeItem(atPath: directory.rotationPath)
            AtomicFile.syncDirectory(directory.path)
        }
        // crl.pem held the old root's CRL too; it no longer has a key to sign one. A failure here leaves the old
        // CRL in place (harmless: that root is no longer trusted) until the next publish.
        _ = try? await CRLPublisher(directory: directory, ledger: ledger).publishAll(for: state.signer, at: now)
        return Retired(oldRoot: oldRoot, archivedAt: archive, bundle: bundle)
    }

    // MARK: helpers

    /// Usable join tokens that pin the old root. A token carries the root that signed when it was created, and a
    /// client holding it verifies the CA against that root: tokens from before activation pin the old root and
    /// stop working once it and the bridge are gone. Timestamps are whole seconds (rounded down), so a token made
    /// in the activation's own second counts too; never is one made before it missed.
    private func tokensPinningOldRoot(_ progress: Progress, now: Date) async throws -> [JoinTokenRecord] {
        guard let activatedAt = progress.activatedAt else { return [] }
        return try await ledger.tokens().filter { $0.state(at: now) == .active && $0.createdAt < activatedAt }
    }

    private static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        return decoder
    }()

    private func writeProgress(_ progress: Progress) throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(String(decoding: try encoder.encode(progress), as: UTF8.self) + "\n", to: directory.rotationPath, mode: 0o644)
    }

    /// The serial of the bridge certificate, the one certificate of the old root that retiring is meant to drop
    /// (so it does not hold *retire* back); empty when there is none.
    private func bridgeSerials() -> [String] {
        StateDirectory.certificate(at: directory.bridgePath).map { [$0.serialHex] } ?? []
    }

    private func requireNoRotation() throws {
        guard let progress = try Self.progress(in: directory) else { return }
        switch progress.stage {
        case .prepared:
            throw DaemonError(
                .rotationStage,
                "A root rotation is already prepared (new root \(progress.newRootFingerprint.prefix(16))…, prepared at "
                    + "\(progress.preparedAt.formatted(.iso8601))). Run `meshca root status` to see who has caught up, then `meshca root activate`."
            )
        case .activated:
            throw DaemonError(
                .rotationStage,
                "The previous root rotation is not finished: the old root \(progress.oldRootFingerprint.prefix(16))… is still in the bundle. "
                    + "Run `meshca root retire` once its certificates have expired (`meshca root status` says when)."
            )
        }
    }

    private func wrongStage(for step: String) throws -> DaemonError {
        switch try Self.progress(in: directory)?.stage {
        case nil:
            return DaemonError(.rotationStage, "No root rotation is in progress, so there is nothing to \(step). Start one with `meshca root prepare`.")
        case .prepared:
            return DaemonError(.rotationStage, "The new root is prepared but not active yet; run `meshca root activate` before `meshca root \(step)`.")
        case .activated:
            return DaemonError(.rotationStage, "The new root is already active; the remaining step is `meshca root retire`.")
        }
    }

    private func loadNextRoot(expecting fingerprint: String) throws -> (certificate: Certificate, keyText: String) {
        guard let certificate = StateDirectory.certificate(at: directory.nextRootCertificatePath),
            let keyData = FileManager.default.contents(atPath: directory.nextRootKeyPath),
            let key = try? Certificate.PrivateKey(pemEncoded: String(decoding: keyData, as: UTF8.self))
        else {
            throw DaemonError(
                .incompleteState,
                "The prepared root in \(directory.nextRootDirectory) is missing or unreadable (ca-cert.pem and ca-key.pem). "
                    + "Restore it from a backup; if it is lost, remove \(directory.rotationPath) and \(directory.nextRootDirectory), "
                    + "put the old bundle back with `meshca root status`'s guidance, and prepare again."
            )
        }
        guard certificate.sha256Fingerprint == fingerprint, key.publicKey == certificate.publicKey else {
            throw DaemonError(.incompleteState, "The prepared root in \(directory.nextRootDirectory) is not the one recorded in \(directory.rotationPath) (or its key does not match). Restore it from a backup.")
        }
        return (certificate, String(decoding: keyData, as: UTF8.self))
    }

    private func record(
        _ action: String, subject: String, old: Certificate, new: Certificate, at: Date, actor: String,
        lagging: [SQLiteLedger.IdentityContact] = []
    ) async throws {
        try await ledger.appendEvent(
            kind: .rootChange, subject: subject,
            fields: [
                .text(action), .text(old.sha256Fingerprint), .text(new.sha256Fingerprint),
                .integer(Int64(at.timeIntervalSince1970.rounded(.down))), .text(actor),
                .text(lagging.map(\.spiffeID).joined(separator: " ")),
            ])
    }

    private static func read(existingPreviousOr path: String, previous: String) throws -> String {
        let source = FileManager.default.fileExists(atPath: previous) ? previous : path
        guard let data = FileManager.default.contents(atPath: source) else {
            throw DaemonError(.unreadableFile, "Cannot read \(source). Run meshca as the user that owns the state directory.")
        }
        return String(decoding: data, as: UTF8.self)
    }

    private static func makeDirectory(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw DaemonError(.writeFailed, "Cannot create \(path) (\(FilePaths.reason(error))). Check that the state directory is writable by this user.")
        }
    }

    static func laggingMessage(_ lagging: [SQLiteLedger.IdentityContact], progress: Progress) -> String {
        let shown = lagging.prefix(20).map {
            "  \($0.spiffeID)  last certificate \($0.lastIssuedAt.formatted(.iso8601)), valid until \($0.notAfter.formatted(.iso8601))"
        }
        let more = lagging.count > 20 ? ["  … and \(lagging.count - 20) more (`meshca root status` lists all)"] : []
        let until = lagging.map(\.notAfter).max().map { $0.formatted(.iso8601) } ?? "their expiry"
        return (["Refusing to activate the new root: \(lagging.count) identit\(lagging.count == 1 ? "y holds" : "ies hold") a live certificate but "
            + "\(lagging.count == 1 ? "has" : "have") not fetched one since the new root was published at \(progress.preparedAt.formatted(.iso8601)), "
            + "so \(lagging.count == 1 ? "it does" : "they do") not trust the new root yet:"] + shown + more + [
            "Wait until they renew (agents renew at half their certificate's lifetime; at the latest by \(until)), or restart their "
                + "agents to renew now, then run `meshca root activate` again. `--force` activates anyway and is recorded in the ledger: "
                + "those workloads would reject peers holding certificates from the new root until they renew."
        ]).joined(separator: "\n")
    }

    static func pinnedTokensMessage(_ tokens: [JoinTokenRecord], oldRoot: Certificate) -> String {
        let last = tokens.map(\.expiresAt).max().map { $0.formatted(.iso8601) } ?? "unknown"
        let shown = tokens.prefix(10).map {
            "  \($0.id)  \($0.namespace)/\($0.serviceAccount)  \($0.maxUses - $0.uses) use\($0.maxUses - $0.uses == 1 ? "" : "s") left, expires \($0.expiresAt.formatted(.iso8601))"
        }
        return (["Refusing to retire the old root \(oldRoot.sha256Fingerprint.prefix(16))…: \(tokens.count) unused join token\(tokens.count == 1 ? "" : "s") "
            + "created before activation pin\(tokens.count == 1 ? "s" : "") it, and a workload holding one could no longer verify the CA:"]
            + shown + (tokens.count > 10 ? ["  … and \(tokens.count - 10) more (`meshca token list`)"] : []) + [
                "Revoke each with `meshca token revoke ID` and hand out new ones (`meshca token create` now pins the new root), "
                    + "or retire after \(last), when the last has expired."
            ]).joined(separator: "\n")
    }

    static func liveMessage(_ live: (count: Int, lastNotAfter: Date?, latest: [IssuanceRecord]), oldRoot: Certificate) -> String {
        let shown = live.latest.map { "  \($0.serial)  \($0.spiffeID.isEmpty ? "(no SPIFFE ID)" : $0.spiffeID)  valid until \($0.notAfter.formatted(.iso8601))" }
        let last = live.lastNotAfter.map { $0.formatted(.iso8601) } ?? "unknown"
        return (["Refusing to retire the old root \(oldRoot.sha256Fingerprint.prefix(16))…: \(live.count) unexpired, unrevoked certificate\(live.count == 1 ? "" : "s") "
            + "signed by it would stop verifying. The last expires at \(last); those expiring last:"] + shown + [
            "Retire after \(last), when every workload has renewed onto the new root (`meshca root status` shows the count), "
                + "or revoke the ones that are no longer in use with `meshca revoke SERIAL`."
        ]).joined(separator: "\n")
    }
}

extension Optional {
    fileprivate func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}
