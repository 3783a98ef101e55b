import Foundation
import MeshCACore
import MeshCAIO
import MeshCALedger
import MeshCAPKCS11
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
/// 3. **retire**: the old root leaves the bundle once no certificate it signed is still in use (unexpired,
///    unrevoked, and not renewed by its holder; the daemon's replaced serving certificates are revoked as
///    superseded, see ``ServingIdentity``) and no usable join token pins it; its key is deleted and its certificate
///    kept in `retired/`.
///
/// Each step is recorded in the ledger (a `root-change` event on the hash chain) before it changes any file,
/// and changes the files under the state directory's lock; a running `meshca serve` picks the change up from
/// the files (see `CAStateWatcher`). The stage in between lives in `rotation.json`. A step interrupted
/// half-way (power cut) is finished by running it again.
public struct RootRotation: Sendable {
    /// The state directory whose root rotates.
    public let directory: StateDirectory
    /// Where each step is recorded and the gates read from.
    public let ledger: any LedgerStore

    /// A rotation of the CA in `directory`, recorded in `ledger`.
    public init(directory: StateDirectory, ledger: any LedgerStore) {
        self.directory = directory
        self.ledger = ledger
    }

    /// The default time after *prepare* from which an issuance counts as carrying the new bundle
    /// (`meshca root prepare --pick-up-margin`): five times the interval at which `meshca serve` looks for changed
    /// CA files (`state-poll-interval`, 1s by default), so a busy daemon has picked the bundle up by then.
    public static let defaultPickUpMargin: Duration = .seconds(5)

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
        /// Seconds after *prepare* from which an issuance counts as carrying the new bundle, as given to *prepare*;
        /// absent in files written before it was a setting, which used the default.
        public var pickUpMargin: TimeInterval?

        /// From this second on an issuance counts as "fetched the new bundle": ``pickUpMargin`` after *prepare*,
        /// rounded up to the whole second the ledger stores, because a running daemon switches to the new bundle
        /// only when its watcher next looks (every `state-poll-interval`), and a certificate issued before that
        /// still carries the old bundle.
        var bundlePublishedSince: Date {
            let margin = pickUpMargin ?? RootRotation.defaultPickUpMargin.seconds
            return Date(timeIntervalSince1970: (preparedAt.timeIntervalSince1970 + margin).rounded(.up))
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
    /// two-root bundle. Issuances from `pickUpMargin` after `now` on count as carrying it (see
    /// ``Progress/pickUpMargin``).
    ///
    /// With `hsmKey` the new root's key is that key in a hardware security module (generated inside the token when
    /// it holds none); `next/ca-key.pkcs11` records its URI. When the current root's key is in an HSM, `hsmKey` is
    /// required, so the next key never lands in a file by omission.
    public func prepare(
        keyType: KeyType? = nil, ttl: Duration? = nil, pickUpMargin: Duration = RootRotation.defaultPickUpMargin,
        hsmKey: PKCS11URI? = nil, actor: String, now: Date
    ) async throws -> Prepared {
        guard pickUpMargin >= .zero, pickUpMargin <= .seconds(3600) else {
            throw DaemonError(
                .rotationStage,
                "--pick-up-margin \(pickUpMargin) is outside 0s to 1h; use at least five times the daemon's state-poll-interval (5s for the default 1s).")
        }
        let state = try CAState.load(from: directory)
        try requireNoRotation()
        let signer = state.signer
        guard signer.intermediates.isEmpty, signer.isRoot else {
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
        if hsmKey == nil, case .pkcs11(let uri, _)? = state.keyLocation {
            throw DaemonError(
                .rotationStage,
                "The current root's key lives in a hardware security module (\(uri)); give the new root's key with --key URI "
                    + "(a new object= label in the same token, e.g. object=ca-\(now.formatted(.iso8601.year().month().day()))), so it is "
                    + "made inside the token rather than in a file.")
        }
        let (key, hsm) = try CAState.makeKey(keyType, hsm: hsmKey)
        guard key.publicKey != signer.certificate.publicKey else {
            throw DaemonError(
                .rotationStage,
                "--key \(hsmKey.map(\.description) ?? "") names the key the current root already uses; a rotation needs a new key. "
                    + "Give another object= label (a key that does not exist yet is generated in the token).")
        }
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
        let keyRecord = try CAKeyFile.record(of: key, hsm: hsm)
        try directory.withLock {
            try requireNoRotation()
            try Self.makeDirectory(directory.nextRootDirectory)
            try CAKeyFile.write(keyRecord, for: directory.nextRootKeyPath)
            try AtomicFile.write(newRoot.pem, to: directory.nextRootCertificatePath, mode: 0o644)
            try AtomicFile.write(bridge.pem, to: directory.nextBridgePath, mode: 0o644)
            try writeProgress(
                Progress(
                    stage: .prepared, preparedAt: now, activatedAt: nil, oldRootFingerprint: oldRoot.sha256Fingerprint,
                    newRootFingerprint: newRoot.sha256Fingerprint, forced: false, pickUpMargin: pickUpMargin.seconds))
            try AtomicFile.write(bundle.map(\.pem).joined(), to: directory.bundlePath, mode: 0o644)
        }
        return Prepared(oldRoot: oldRoot, newRoot: newRoot, bundle: bundle)
    }

    // MARK: status

    /// Something that keeps the next step of a rotation refused, and when it stops doing so on its own.
    public struct Blocker: Sendable, Equatable {
        /// What blocks; the raw value is the `kind` of `meshca root status --json`.
        public enum Kind: String, Sendable {
            /// The CA signs with a plug-in intermediate, whose root meshca does not own (blocks *prepare*).
            case pluginCA = "plug-in-ca"
            /// Identities holding a live certificate that have not fetched one since *prepare* (block *activate*).
            case laggingIdentities = "lagging-identities"
            /// Workload certificates of the old root, unexpired, unrevoked and not renewed (block *retire*).
            case workloadCertificates = "old-root-workload-certificates"
            /// The daemon's serving certificate from the old root, not superseded yet (blocks *retire*).
            case servingCertificates = "old-root-serving-certificates"
            /// Other certificates of the old root, e.g. intermediates from `meshca intermediate create`.
            case otherCertificates = "old-root-other-certificates"
            /// Usable join tokens that recorded the old root as their pin (block *retire*).
            case pinnedTokens = "old-root-join-tokens"
            /// Usable join tokens from before pins were recorded, created before *activate*: they are taken to pin
            /// the old root (an inference from their creation time).
            case inferredTokens = "old-root-join-tokens-inferred"
        }

        /// What blocks.
        public let kind: Kind
        /// How many of it.
        public let count: Int
        /// The earliest moment it is expected to stop blocking with nobody acting (agents renew at half their
        /// certificate's lifetime, ±10%); nil when nothing is expected before `clearsBy`.
        public let expectedBy: Date?
        /// When it stops blocking at the latest with nobody acting: the last of them expires. Nil: never by itself.
        public let clearsBy: Date?
        /// One sentence: what it is and how to clear it now.
        public let detail: String
    }

    /// Where a rotation stands, who has caught up, and what keeps the next step waiting.
    public struct Status: Sendable {
        /// The rotation in progress, nil when none is.
        public let progress: Progress?
        /// The roots handed out now (`root-cert.pem`).
        public let bundle: [Certificate]
        /// The CA certificate that signs now.
        public let signing: Certificate
        /// Identities holding live certificates; `contactedSince` tells whether each fetched one since *prepare*.
        /// Empty when no rotation is in progress.
        public let identities: [IdentityContact]
        /// After activation: the old root's certificates still in use (what *retire* waits for), latest expiry first.
        public let inUseOnOldRoot: [CertificateInUse]
        /// After activation: the old root's unexpired, unrevoked certificates that their holders already renewed,
        /// which no longer hold *retire* back.
        public let renewedOnOldRoot: Int
        /// After activation: the daemon's serving certificates from the old root that it revoked as `superseded`
        /// when it replaced them (unexpired ones; the CRL lists them), which no longer hold *retire* back.
        public let supersededServingOnOldRoot: Int
        /// After activation: usable join tokens that pin the old root, recorded or inferred (`pinnedRootSHA256` nil).
        public let tokensOnOldRoot: [JoinTokenRecord]
        /// The step that comes next: `prepare`, `activate` or `retire`.
        public let nextStep: String
        /// What keeps `nextStep` refused now; empty when it would go through.
        public let blockers: [Blocker]
        /// Where each root's key lives (the signing key, and during a rotation the next or previous root's), keyed by
        /// the root's SHA-256; never key material.
        public var keys: [String: CAKeyLocation] = [:]

        /// Identities that have not fetched a certificate since *prepare*.
        public var lagging: [IdentityContact] { identities.filter { !$0.contactedSince } }

        /// The earliest moment `nextStep` is expected to go through with nobody acting; nil when it would now, or
        /// when a blocker never clears by itself.
        public var nextStepExpectedBy: Date? { Self.latest(blockers.map { $0.expectedBy ?? $0.clearsBy }) }

        /// The moment by which `nextStep` goes through at the latest with nobody acting; nil when it would now,
        /// or when a blocker never clears by itself.
        public var nextStepClearsBy: Date? { Self.latest(blockers.map(\.clearsBy)) }

        /// The latest of `times`; nil when there are none, or when one is nil (never).
        private static func latest(_ times: [Date?]) -> Date? {
            guard !times.contains(nil) else { return nil }
            return times.compactMap { $0 }.max()
        }
    }

    /// The rotation's stage and gates as of `now`.
    public func status(now: Date) async throws -> Status {
        let state = try CAState.load(from: directory)
        let progress = try Self.progress(in: directory)
        let identities = try await progress.asyncMap {
            try await ledger.identityContacts(since: $0.bundlePublishedSince, now: now)
        } ?? []
        var holders = OldRootHolders.none
        if let progress, progress.stage == .activated {
            holders = try await oldRootHolders(of: progress.oldRootFingerprint, activatedAt: progress.activatedAt, now: now)
        }
        let nextStep: String
        var blockers: [Blocker] = []
        switch progress?.stage {
        case nil:
            nextStep = "prepare"
            if !(state.signer.intermediates.isEmpty && state.signer.isRoot) {
                blockers = [
                    Blocker(
                        kind: .pluginCA, count: 1, expectedBy: nil, clearsBy: nil,
                        detail: "this CA signs with a plug-in intermediate; its root belongs to whoever issued the cacerts files, "
                            + "so rotate it there")
                ]
            }
        case .prepared?:
            nextStep = "activate"
            blockers = Self.activateBlockers(identities.filter { !$0.contactedSince })
        case .activated?:
            nextStep = "retire"
            blockers = holders.blockers
        }
        var status = Status(
            progress: progress, bundle: state.signer.bundle, signing: state.signer.certificate, identities: identities,
            inUseOnOldRoot: holders.inUse, renewedOnOldRoot: holders.renewed,
            supersededServingOnOldRoot: holders.supersededServing, tokensOnOldRoot: holders.tokens, nextStep: nextStep,
            blockers: blockers)
        let places = [
            (directory.caCertificatePath, directory.caKeyPath), (directory.nextRootCertificatePath, directory.nextRootKeyPath),
            (directory.previousRootCertificatePath, directory.previousRootKeyPath),
        ]
        for (certificatePath, keyPath) in places {
            if let certificate = StateDirectory.certificate(at: certificatePath), let location = try? CAKeyFile.location(keyPath) {
                status.keys[certificate.sha256Fingerprint] = location
            }
        }
        return status
    }

    /// On the default renewal schedule an agent renews at half its certificate's lifetime, moved by up to 10% of
    /// that half: so by 55% of the lifetime every agent that is running has renewed.
    static let renewalPoint = 0.55

    /// The lagging identities as the blocker of *activate*.
    static func activateBlockers(_ lagging: [IdentityContact]) -> [Blocker] {
        guard !lagging.isEmpty else { return [] }
        return [
            Blocker(
                kind: .laggingIdentities, count: lagging.count,
                expectedBy: lagging.map { $0.lastIssuedAt.addingTimeInterval($0.notAfter.timeIntervalSince($0.lastIssuedAt) * renewalPoint) }.max(),
                clearsBy: lagging.map(\.notAfter).max(),
                detail: "identit\(lagging.count == 1 ? "y holds" : "ies hold") a live certificate but \(lagging.count == 1 ? "has" : "have") not fetched one "
                    + "since prepare; each stops lagging when it renews (agents renew at half-life) or when its certificate "
                    + "expires; restarting an agent renews it now")
        ]
    }

    // MARK: activate

    /// What *activate* did.
    public struct Activated: Sendable {
        /// The root that signs from now on.
        public let newRoot: Certificate
        /// The root that signed until now; still in the bundle.
        public let oldRoot: Certificate
        /// Identities that had not caught up (non-empty only when forced).
        public let lagging: [IdentityContact]
    }

    /// Switches signing to the prepared root. Refused while identities lag, unless `force`.
    public func activate(force: Bool, actor: String, now: Date) async throws -> Activated {
        guard let progress = try Self.progress(in: directory), progress.stage == .prepared else {
            throw try wrongStage(for: "activate")
        }
        let next = try loadNextRoot(expecting: progress.newRootFingerprint)
        let oldCertificateText = try Self.read(existingPreviousOr: directory.caCertificatePath, previous: directory.previousRootCertificatePath)
        let oldKey = try CAKeyFile.read(CAKeyFile.exists(directory.previousRootKeyPath) ? directory.previousRootKeyPath : directory.caKeyPath)
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
            if !CAKeyFile.exists(previousKey), let oldKey { try CAKeyFile.write(oldKey, for: previousKey) }
            if !FileManager.default.fileExists(atPath: previousCertificate) { try AtomicFile.write(oldCertificateText, to: previousCertificate, mode: 0o644) }
            // The bridge (new root certified by the old one) lets clients that trust only the old root reach the
            // daemon, whose serving certificate now comes from the new root; it is served until retire.
            if let bridge = FileManager.default.contents(atPath: directory.nextBridgePath) {
                try AtomicFile.write(String(decoding: bridge, as: UTF8.self), to: directory.bridgePath, mode: 0o644)
            }
            let published = [next.certificate] + bundle.filter { $0 != next.certificate }
            try AtomicFile.write(published.map(\.pem).joined(), to: directory.bundlePath, mode: 0o644)
            try CAKeyFile.write(next.key, for: directory.caKeyPath)
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

    /// Removes the old root from the bundle and deletes its key. Refused while certificates it signed are still in
    /// use or usable join tokens pin it (see ``oldRootHolders(of:activatedAt:now:)``).
    public func retire(actor: String, now: Date) async throws -> Retired {
        guard let progress = try Self.progress(in: directory), progress.stage == .activated else {
            throw try wrongStage(for: "retire")
        }
        guard let oldRoot = StateDirectory.certificate(at: directory.previousRootCertificatePath) else {
            throw DaemonError(.incompleteState, "\(directory.previousRootCertificatePath) is missing or unreadable, so meshca cannot tell which root to retire. Restore it from a backup.")
        }
        let holders = try await oldRootHolders(of: oldRoot.sha256Fingerprint, activatedAt: progress.activatedAt, now: now)
        if !holders.inUse.isEmpty || !holders.tokens.isEmpty {
            throw DaemonError(.rotationRefused, Self.retireRefusal(holders, oldRoot: oldRoot))
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

    /// What still depends on the old root after activation: what *retire* waits for, and what it no longer does.
    struct OldRootHolders: Sendable {
        /// Its certificates still in use: unexpired, unrevoked, not renewed by their holder (the bridge left out,
        /// which retiring is meant to drop). Latest expiry first.
        var inUse: [CertificateInUse]
        /// Its unexpired, unrevoked certificates whose holders renewed them.
        var renewed: Int
        /// The daemon's serving certificates from it, revoked as superseded and not yet expired.
        var supersededServing: Int
        /// Usable join tokens pinning it: recorded (`pinnedRootSHA256` is its fingerprint) or, for tokens from
        /// before pins were recorded, inferred (created before activation).
        var tokens: [JoinTokenRecord]

        static let none = OldRootHolders(inUse: [], renewed: 0, supersededServing: 0, tokens: [])

        static func isServing(_ certificate: CertificateInUse) -> Bool {
            certificate.spiffeID.isEmpty && certificate.requester == Doctor.servingRequester
                && certificate.authMethod == Doctor.servingAuthMethod
        }

        var workloads: [CertificateInUse] { inUse.filter { !$0.spiffeID.isEmpty } }
        var serving: [CertificateInUse] { inUse.filter(Self.isServing) }
        var others: [CertificateInUse] { inUse.filter { $0.spiffeID.isEmpty && !Self.isServing($0) } }

        /// What keeps *retire* refused, each with when it clears.
        var blockers: [Blocker] {
            var blockers: [Blocker] = []
            if !workloads.isEmpty {
                // A certificate issued locally (`meshca issue`) has no agent renewing it: only its expiry counts.
                let expected = workloads.map {
                    $0.authMethod == "local" ? $0.notAfter : $0.issuedAt.addingTimeInterval($0.notAfter.timeIntervalSince($0.issuedAt) * RootRotation.renewalPoint)
                }.max()
                blockers.append(
                    Blocker(
                        kind: .workloadCertificates, count: workloads.count, expectedBy: expected,
                        clearsBy: workloads.map(\.notAfter).max(),
                        detail: "workload certificate\(workloads.count == 1 ? "" : "s") from the old root not yet renewed by \(workloads.count == 1 ? "its holder" : "their holders"); "
                            + "each stops counting when its agent renews it (at half-life) or when it expires; "
                            + "revoke the ones no longer in use with `meshca revoke SERIAL`"))
            }
            if !serving.isEmpty {
                blockers.append(
                    Blocker(
                        kind: .servingCertificates, count: serving.count, expectedBy: nil, clearsBy: serving.map(\.notAfter).max(),
                        detail: "serving certificate\(serving.count == 1 ? "" : "s") of meshca serve from the old root, not superseded: a running "
                            + "daemon replaces it within a second of activate, so no daemon has run on this state directory since; "
                            + "starting `meshca serve` supersedes it (or, if no daemon uses this state directory any more, "
                            + "`meshca revoke SERIAL --reason superseded`)"))
            }
            if !others.isEmpty {
                blockers.append(
                    Blocker(
                        kind: .otherCertificates, count: others.count, expectedBy: nil, clearsBy: others.map(\.notAfter).max(),
                        detail: "other certificate\(others.count == 1 ? "" : "s") from the old root (intermediates from `meshca intermediate create`, ...); "
                            + "revoke those no longer in use with `meshca revoke SERIAL`"))
            }
            let recorded = tokens.filter { $0.pinnedRootSHA256 != nil }
            let inferred = tokens.filter { $0.pinnedRootSHA256 == nil }
            if !recorded.isEmpty {
                blockers.append(
                    Blocker(
                        kind: .pinnedTokens, count: recorded.count, expectedBy: nil, clearsBy: recorded.map(\.expiresAt).max(),
                        detail: "usable join token\(recorded.count == 1 ? "" : "s") pin\(recorded.count == 1 ? "s" : "") the old root (recorded at creation): "
                            + Self.tokenList(recorded) + "; each stops counting once used up, revoked or expired; "
                            + "`meshca token revoke ID` and hand out new ones, which pin the new root"))
            }
            if !inferred.isEmpty {
                blockers.append(
                    Blocker(
                        kind: .inferredTokens, count: inferred.count, expectedBy: nil, clearsBy: inferred.map(\.expiresAt).max(),
                        detail: "usable join token\(inferred.count == 1 ? "" : "s") created before activate by a meshca that did not record pins: "
                            + Self.tokenList(inferred) + "; taken to pin the old root by \(inferred.count == 1 ? "its" : "their") creation time "
                            + "(an inference); `meshca token revoke ID` and hand out new ones"))
            }
            return blockers
        }

        private static func tokenList(_ tokens: [JoinTokenRecord]) -> String {
            tokens.prefix(10).map(\.id).joined(separator: ", ") + (tokens.count > 10 ? ", … (`meshca token list`)" : "")
        }
    }

    /// What depends on the old root (SHA-256 `old`) of the rotation activated at `activatedAt`, as of `now`.
    ///
    /// A token carries the root that signed when it was created, and a client holding it verifies the CA against
    /// that root. Tokens record that root's fingerprint since schema version 5. For older tokens it is inferred:
    /// created before activation means the old root. Timestamps are whole seconds (rounded down), so a token made in
    /// the activation's own second counts too; never is one made before it missed.
    func oldRootHolders(of old: String, activatedAt: Date?, now: Date) async throws -> OldRootHolders {
        let certificates = try await ledger.certificatesInUse(issuedBy: old, excluding: bridgeSerials(), now: now)
        let superseded = try await ledger.revokedCount(
            issuedBy: old, requester: Doctor.servingRequester, reason: RevocationReason.superseded.rawValue, now: now)
        let tokens = try await ledger.tokens().filter { token in
            guard token.state(at: now) == .active else { return false }
            if let pin = token.pinnedRootSHA256 { return pin == old }
            guard let activatedAt else { return false }
            return token.createdAt < activatedAt
        }
        return OldRootHolders(
            inUse: certificates.inUse, renewed: certificates.renewed, supersededServing: superseded, tokens: tokens)
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

    private func loadNextRoot(expecting fingerprint: String) throws -> (certificate: Certificate, key: CAKeyFile.Record) {
        guard let certificate = StateDirectory.certificate(at: directory.nextRootCertificatePath),
            let record = try? CAKeyFile.read(directory.nextRootKeyPath)
        else {
            throw DaemonError(
                .incompleteState,
                "The prepared root in \(directory.nextRootDirectory) is missing or unreadable (ca-cert.pem and ca-key.pem or ca-key.pkcs11). "
                    + "Restore it from a backup; if it is lost, remove \(directory.rotationPath) and \(directory.nextRootDirectory), "
                    + "put the old bundle back with `meshca root status`'s guidance, and prepare again."
            )
        }
        // A key in an HSM is opened here, so activate fails before changing anything when the token is unreachable.
        let key = try CAKeyFile.load(directory.nextRootKeyPath)?.key
        guard certificate.sha256Fingerprint == fingerprint, key?.publicKey == certificate.publicKey else {
            throw DaemonError(.incompleteState, "The prepared root in \(directory.nextRootDirectory) is not the one recorded in \(directory.rotationPath) (or its key does not match). Restore it from a backup.")
        }
        return (certificate, record)
    }

    private func record(
        _ action: String, subject: String, old: Certificate, new: Certificate, at: Date, actor: String,
        lagging: [IdentityContact] = []
    ) async throws {
        try await ledger.recordRootChange(
            action, subject: subject, oldRoot: old.sha256Fingerprint, newRoot: new.sha256Fingerprint, at: at,
            actor: actor, lagging: lagging.map(\.spiffeID))
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

    static func laggingMessage(_ lagging: [IdentityContact], progress: Progress) -> String {
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

    /// Why *retire* is refused: the old root's certificates in use and the tokens pinning it, with what to do.
    static func retireRefusal(_ holders: OldRootHolders, oldRoot: Certificate) -> String {
        var lines = ["Refusing to retire the old root \(oldRoot.sha256Fingerprint.prefix(16))…:"]
        let live = holders.inUse
        if !live.isEmpty {
            let last = live.map(\.notAfter).max().map { $0.formatted(.iso8601) } ?? "unknown"
            lines.append(
                "\(live.count) unexpired, unrevoked certificate\(live.count == 1 ? "" : "s") signed by it \(live.count == 1 ? "is" : "are") still in use "
                    + "(not renewed by \(live.count == 1 ? "its holder" : "their holders")) and would stop verifying. The last expires at \(last); those expiring last:")
            lines += live.prefix(10).map { certificate in
                let name =
                    certificate.spiffeID.isEmpty
                    ? (OldRootHolders.isServing(certificate) ? "(serving certificate of meshca serve)" : "(no SPIFFE ID)") : certificate.spiffeID
                return "  \(certificate.serial)  \(name)  valid until \(certificate.notAfter.formatted(.iso8601))"
            }
            if live.count > 10 { lines.append("  … and \(live.count - 10) more") }
            lines.append(
                "Retire after \(last), or once every workload has renewed onto the new root (agents renew at half-life; "
                    + "`meshca root status` says when), or revoke the ones that are no longer in use with `meshca revoke SERIAL`.")
            if !holders.serving.isEmpty {
                lines.append(
                    "The daemon's serving certificate from the old root is superseded as soon as `meshca serve` runs on this state "
                        + "directory (it replaces it within a second of activate, or at start).")
            }
        }
        let tokens = holders.tokens
        if !tokens.isEmpty {
            let last = tokens.map(\.expiresAt).max().map { $0.formatted(.iso8601) } ?? "unknown"
            lines.append(
                "\(tokens.count) unused join token\(tokens.count == 1 ? "" : "s") pin\(tokens.count == 1 ? "s" : "") it, and a workload holding one "
                    + "could no longer verify the CA:")
            lines += tokens.prefix(10).map {
                "  \($0.id)  \($0.namespace)/\($0.serviceAccount)  \($0.maxUses - $0.uses) use\($0.maxUses - $0.uses == 1 ? "" : "s") left, expires "
                    + "\($0.expiresAt.formatted(.iso8601))\($0.pinnedRootSHA256 == nil ? "  (pin inferred: created before activate)" : "")"
            }
            if tokens.count > 10 { lines.append("  … and \(tokens.count - 10) more (`meshca token list`)") }
            lines.append(
                "Revoke each with `meshca token revoke ID` and hand out new ones (`meshca token create` now pins the new root), "
                    + "or retire after \(last), when the last has expired.")
        }
        return lines.joined(separator: "\n")
    }
}

extension Optional {
    fileprivate func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}
