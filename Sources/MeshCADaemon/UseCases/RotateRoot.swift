import Foundation
import MeshCACore
import MeshCALedger
import MeshCAPKCS11
import X509

/// A CA certificate as `meshca root` shows it.
public struct RootSummary: Sendable {
    /// The SHA-256 fingerprint of its DER, lowercase hex.
    public let sha256: String
    public let subject: String
    public let notAfter: Date
    /// Where its key lives ("file PATH" or "HSM pkcs11:..."); nil when not asked or when this state directory
    /// holds no key for it.
    public let key: String?

    init(_ certificate: Certificate, key: CAKeyLocation? = nil) {
        sha256 = certificate.sha256Fingerprint
        subject = "\(certificate.subject)"
        notAfter = certificate.notValidAfter
        self.key = key?.description
    }
}

/// `meshca root status|prepare|activate|retire`: the staged root rotation (``RootRotation``) of the CA in a state
/// directory, with plain results.
public struct RotateRoot: Sendable {
    /// Where the rotation stands (``RootRotation/Status``).
    public struct Status: Sendable {
        /// An identity holding a live certificate, and whether it fetched one since prepare.
        public struct Identity: Sendable {
            public let spiffeID: String
            public let lastIssuedAt: Date
            public let notAfter: Date
            public let caughtUp: Bool
        }

        /// What keeps the next step from being safe (``RootRotation/Blocker``).
        public struct Blocker: Sendable {
            public let kind: String
            public let count: Int
            public let expectedBy: Date?
            public let clearsBy: Date?
            public let detail: String
        }

        /// `none`, `prepared` or `activated`.
        public let stage: String
        public let preparedAt: Date?
        public let activatedAt: Date?
        /// Whether activate was forced while identities lagged.
        public let forced: Bool
        /// The old root's fingerprint while a rotation is in progress.
        public let oldRootFingerprint: String?
        /// The trusted roots, with their keys.
        public let roots: [RootSummary]
        /// The signing CA, with its key (a plug-in intermediate is not among `roots`).
        public let signing: RootSummary
        public let identities: [Identity]
        public var lagging: Int { identities.filter { !$0.caughtUp }.count }
        /// `prepare`, `activate` or `retire`.
        public let nextStep: String
        public let blockers: [Blocker]
        public let nextStepExpectedBy: Date?
        public let nextStepClearsBy: Date?
        /// Unexpired certificates from the old root.
        public let liveOnOldRoot: Int
        /// When the last of them expires.
        public let oldRootLastNotAfter: Date?
        public let renewedOnOldRoot: Int
        public let supersededServingOnOldRoot: Int
        /// Unused join tokens pinning the old root, and how many of them carry no pin (inferred).
        public let tokensOnOldRoot: Int
        public let tokensOnOldRootInferred: Int

        init(_ status: RootRotation.Status) {
            stage = status.progress?.stage.rawValue ?? "none"
            preparedAt = status.progress?.preparedAt
            activatedAt = status.progress?.activatedAt
            forced = status.progress?.forced ?? false
            oldRootFingerprint = status.progress?.oldRootFingerprint
            roots = status.bundle.map { RootSummary($0, key: status.keys[$0.sha256Fingerprint]) }
            signing = RootSummary(status.signing, key: status.keys[status.signing.sha256Fingerprint])
            identities = status.identities.map {
                Identity(spiffeID: $0.spiffeID, lastIssuedAt: $0.lastIssuedAt, notAfter: $0.notAfter, caughtUp: $0.contactedSince)
            }
            nextStep = status.nextStep
            blockers = status.blockers.map {
                Blocker(kind: $0.kind.rawValue, count: $0.count, expectedBy: $0.expectedBy, clearsBy: $0.clearsBy, detail: $0.detail)
            }
            nextStepExpectedBy = status.nextStepExpectedBy
            nextStepClearsBy = status.nextStepClearsBy
            liveOnOldRoot = status.inUseOnOldRoot.count
            oldRootLastNotAfter = status.inUseOnOldRoot.map(\.notAfter).max()
            renewedOnOldRoot = status.renewedOnOldRoot
            supersededServingOnOldRoot = status.supersededServingOnOldRoot
            tokensOnOldRoot = status.tokensOnOldRoot.count
            tokensOnOldRootInferred = status.tokensOnOldRoot.filter { $0.pinnedRootSHA256 == nil }.count
        }
    }

    /// `prepare`: the root that still signs, the next one, and the bundle now handed out.
    public struct Prepared: Sendable {
        public let oldRoot: RootSummary
        public let newRoot: RootSummary
        public let bundle: [RootSummary]
    }

    /// `activate`: the root now signing, the old one, and the identities that lagged when it was forced.
    public struct Activated: Sendable {
        public let oldRoot: RootSummary
        public let newRoot: RootSummary
        public let lagging: [String]
    }

    /// `retire`: the retired root, where its certificate is kept, and the bundle now handed out.
    public struct Retired: Sendable {
        public let oldRoot: RootSummary
        public let archivedAt: String
        public let bundle: [RootSummary]
    }

    public let directory: StateDirectory
    /// Where the ledger is (`--ledger`).
    public let ledger: LedgerLocation

    public init(directory: StateDirectory, ledger: LedgerLocation) {
        self.directory = directory
        self.ledger = ledger
    }

    /// The pick-up margin `prepare` uses when none is given.
    public static var defaultPickUpMargin: Duration { RootRotation.defaultPickUpMargin }

    /// Where the rotation stands as of `now`.
    public func status(now: Date) async throws -> Status {
        try await ledger.withExistingLedger(in: directory) { Status(try await RootRotation(directory: directory, ledger: $0).status(now: now)) }
    }

    /// ``RootRotation/prepare(keyType:ttl:pickUpMargin:hsmKey:actor:now:)``.
    public func prepare(
        keyType: KeyType?, ttl: Duration?, pickUpMargin: Duration, hsmKey: PKCS11URI?, actor: String, now: Date
    ) async throws -> Prepared {
        let prepared = try await ledger.withExistingLedger(in: directory) {
            try await RootRotation(directory: directory, ledger: $0)
                .prepare(keyType: keyType, ttl: ttl, pickUpMargin: pickUpMargin, hsmKey: hsmKey, actor: actor, now: now)
        }
        return Prepared(
            oldRoot: RootSummary(prepared.oldRoot), newRoot: RootSummary(prepared.newRoot), bundle: prepared.bundle.map { RootSummary($0) })
    }

    /// ``RootRotation/activate(force:actor:now:)``.
    public func activate(force: Bool, actor: String, now: Date) async throws -> Activated {
        let activated = try await ledger.withExistingLedger(in: directory) {
            try await RootRotation(directory: directory, ledger: $0).activate(force: force, actor: actor, now: now)
        }
        return Activated(
            oldRoot: RootSummary(activated.oldRoot), newRoot: RootSummary(activated.newRoot), lagging: activated.lagging.map(\.spiffeID))
    }

    /// ``RootRotation/retire(actor:now:)``.
    public func retire(actor: String, now: Date) async throws -> Retired {
        let retired = try await ledger.withExistingLedger(in: directory) {
            try await RootRotation(directory: directory, ledger: $0).retire(actor: actor, now: now)
        }
        return Retired(oldRoot: RootSummary(retired.oldRoot), archivedAt: retired.archivedAt, bundle: retired.bundle.map { RootSummary($0) })
    }
}
