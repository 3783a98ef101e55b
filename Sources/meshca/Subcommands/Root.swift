import ArgumentParser
import Foundation
import MeshCADaemon

/// `meshca root`: staged rotation of the CA's root (see `RootRotation`).
struct Root: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "root",
        abstract: "Rotate the CA's root without breaking traffic (prepare, activate, retire); export the trusted roots.",
        discussion: """
            prepare publishes a new root next to the old one; every certificate handed out from then on carries \
            both. activate switches signing to the new root once every identity holding a live certificate has \
            fetched one since prepare. retire drops the old root once no live certificate chains to it. A running \
            `meshca serve` on the same state directory follows each step within a second. Every step is recorded \
            in the ledger.
            """,
        subcommands: [RootStatus.self, RootPrepare.self, RootActivate.self, RootRetire.self, RootExport.self]
    )
}

/// `meshca root status`
struct RootStatus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the roots, the rotation's stage, and which identities have caught up.",
        discussion: "Exit status 0; the stage and gates are in the output (--json for scripts)."
    )

    @OptionGroup var state: StateOptions
    @OptionGroup var ledger: LedgerOptions

    @Flag(help: "Print JSON (stage, roots, identities, lagging, next_step, blockers, live_on_old_root, tokens_on_old_root, ...).")
    var json = false

    func run() async throws {
        let now = Date()
        let status = try await RotateRoot(directory: state.directory, ledger: try ledger.location()).status(now: now)
        if json {
            print(try JSONOutput.render(RootStatusJSON(status)))
            return
        }
        print("rotation stage  \(status.stage)")
        for root in status.roots {
            let role: String
            if root.sha256 == status.signing.sha256 {
                role = "signing"
            } else if let old = status.oldRootFingerprint {
                role = root.sha256 == old ? "old" : "next"
            } else {
                role = "trusted"
            }
            print("root            \(root.sha256.prefix(16))  \(role.padding(toLength: 8, withPad: " ", startingAt: 0)) valid until \(root.notAfter.rfc3339)  \(root.subject)")
            if let key = root.key { print("  key           \(key)") }
        }
        if !status.roots.contains(where: { $0.sha256 == status.signing.sha256 }) {
            print("signing CA      \(status.signing.sha256.prefix(16))  (plug-in intermediate) valid until \(status.signing.notAfter.rfc3339)")
            if let key = status.signing.key { print("  key           \(key)") }
        }
        if let preparedAt = status.preparedAt {
            print("prepared at     \(preparedAt.rfc3339)")
            if let activated = status.activatedAt { print("activated at    \(activated.rfc3339)\(status.forced ? " (forced)" : "")") }
            let lagging = status.lagging
            print("\nidentities holding live certificates: \(status.identities.count), caught up: \(status.identities.count - lagging), lagging: \(lagging)")
            if !status.identities.isEmpty {
                var table = TextTable(columns: ["STATE", "IDENTITY", "LAST CONTACT", "VALID UNTIL"])
                for identity in status.identities {
                    table.add([identity.caughtUp ? "caught up" : "LAGGING", identity.spiffeID, identity.lastIssuedAt.rfc3339, identity.notAfter.rfc3339])
                }
                print(table.render(), terminator: "")
            }
        }
        if status.stage == "activated" {
            print("")
            print("superseded      \(status.supersededServingOnOldRoot) serving certificate\(status.supersededServingOnOldRoot == 1 ? "" : "s") of meshca serve from the old root, "
                + "revoked as superseded when the daemon replaced \(status.supersededServingOnOldRoot == 1 ? "it" : "them") (on the CRL until \(status.supersededServingOnOldRoot == 1 ? "it expires" : "they expire")); not blocking")
            print("renewed         \(status.renewedOnOldRoot) unexpired certificate\(status.renewedOnOldRoot == 1 ? "" : "s") from the old root already renewed by \(status.renewedOnOldRoot == 1 ? "its holder" : "their holders"); not blocking")
        }
        print("")
        guard !status.blockers.isEmpty else {
            switch status.nextStep {
            case "prepare": print("No rotation in progress. Start one with `meshca root prepare`.")
            case "activate": print("Every identity has the new bundle: `meshca root activate` is safe.")
            default: print("Nothing depends on the old root any more: `meshca root retire` is safe.")
            }
            return
        }
        print("`meshca root \(status.nextStep)` is blocked by:")
        for blocker in status.blockers {
            var when: [String] = []
            if let expected = blocker.expectedBy {
                when.append(expected < now ? "expected by \(expected.rfc3339) (overdue)" : "expected by \(expected.rfc3339)")
            }
            when.append(blocker.clearsBy.map { "at the latest \($0.rfc3339)" } ?? "not by itself")
            print("  \(blocker.count) \(blocker.detail)")
            print("    stops blocking: \(when.joined(separator: ", "))")
        }
        let expected = status.nextStepExpectedBy.map { "expected to be possible from \($0.rfc3339)" }
        let latest = status.nextStepClearsBy.map { "possible at the latest from \($0.rfc3339)" }
        let summary = [expected, latest].compactMap { $0 }
        if !summary.isEmpty {
            print("`meshca root \(status.nextStep)` is \(summary.joined(separator: ", ")) with nobody acting.")
        }
    }
}

/// `meshca root prepare`
struct RootPrepare: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prepare",
        abstract: "Create the next root and publish it next to the current one (signing does not change)."
    )

    @OptionGroup var state: StateOptions
    @OptionGroup var ledger: LedgerOptions

    @Option(help: ArgumentHelp("Key type of the new root (default: the current root's).", valueName: "type"))
    var keyType: String?

    @Option(help: ArgumentHelp("Lifetime of the new root (default: the current root's).", valueName: "duration"))
    var ttl: String?

    @Option(help: ArgumentHelp(
        "Time after prepare from which an issuance counts as carrying the new roots: at least five times serve's --state-poll-interval (default 5s).",
        valueName: "duration"))
    var pickUpMargin: String?

    @Option(help: hsmKeyHelp)
    var key: String?

    @Flag(help: "Print JSON (stage, old_root, new_root, bundle).")
    var json = false

    func run() async throws {
        let hsmKey = try usage("--key: ") { try CommandInput.hsmKey(key) }
        let pickUpMargin = try self.pickUpMargin.map { try parseDuration($0, flag: "--pick-up-margin") } ?? RotateRoot.defaultPickUpMargin
        let keyType = try usage { try self.keyType.map { try CommandInput.keyType($0) } }
        let ttl = try self.ttl.map { try parseDuration($0, flag: "--ttl") }
        let rotation = RotateRoot(directory: state.directory, ledger: try ledger.location())
        let prepared = try await rotation.prepare(
            keyType: keyType, ttl: ttl, pickUpMargin: pickUpMargin, hsmKey: hsmKey, actor: Requester.localUser.name, now: Date())
        if json {
            return try JSONOutput.print(
                RootStepJSON(stage: "prepared", oldRoot: prepared.oldRoot, newRoot: prepared.newRoot, bundle: prepared.bundle))
        }
        print("prepared the next root \(prepared.newRoot.sha256.prefix(16))  \(prepared.newRoot.subject), valid until \(prepared.newRoot.notAfter.rfc3339)")
        print("root-cert.pem now holds \(prepared.bundle.count) roots; every certificate issued from now on carries them.")
        print("Next: watch `meshca root status` until no identity lags, then run `meshca root activate`.")
    }
}

/// `meshca root activate`
struct RootActivate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "activate",
        abstract: "Switch signing to the prepared root (refused while identities lag, unless --force).",
        discussion: "Exit status 1 when refused; the message lists the identities that have not caught up."
    )

    @OptionGroup var state: StateOptions
    @OptionGroup var ledger: LedgerOptions

    @Flag(help: "Activate even though identities lag (recorded in the ledger with their names).")
    var force = false

    @Flag(help: "Print JSON (stage, old_root, new_root, forced_lagging).")
    var json = false

    func run() async throws {
        let activated = try await RotateRoot(directory: state.directory, ledger: try ledger.location())
            .activate(force: force, actor: Requester.localUser.name, now: Date())
        if json {
            return try JSONOutput.print(
                RootStepJSON(stage: "activated", oldRoot: activated.oldRoot, newRoot: activated.newRoot, forcedLagging: activated.lagging))
        }
        if !activated.lagging.isEmpty {
            printError("meshca: activated with --force although \(activated.lagging.count) identit\(activated.lagging.count == 1 ? "y lags" : "ies lag"); recorded in the ledger")
        }
        print("now signing with root \(activated.newRoot.sha256.prefix(16))  \(activated.newRoot.subject)")
        print("the old root \(activated.oldRoot.sha256.prefix(16)) stays in root-cert.pem until `meshca root retire`.")
    }
}

/// `meshca root retire`
struct RootRetire: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retire",
        abstract: "Remove the old root from the bundle and delete its key (refused while certificates it signed are live).",
        discussion: "Exit status 1 when refused; the message says when the last of its certificates expires."
    )

    @OptionGroup var state: StateOptions
    @OptionGroup var ledger: LedgerOptions

    @Flag(help: "Print JSON (stage, old_root, bundle, archived_at).")
    var json = false

    func run() async throws {
        let retired = try await RotateRoot(directory: state.directory, ledger: try ledger.location())
            .retire(actor: Requester.localUser.name, now: Date())
        if json {
            return try JSONOutput.print(
                RootStepJSON(stage: "retired", oldRoot: retired.oldRoot, bundle: retired.bundle, archivedAt: retired.archivedAt))
        }
        print("retired the old root \(retired.oldRoot.sha256.prefix(16)); its key is deleted, its certificate kept at \(retired.archivedAt)")
        print("root-cert.pem now holds \(retired.bundle.count) root\(retired.bundle.count == 1 ? "" : "s").")
    }
}

/// `meshca root status --json`: stable keys for scripts.
struct RootStatusJSON: Encodable {
    struct RootJSON: Encodable {
        let sha256: String
        let subject: String
        let notAfter: String
        let signing: Bool
        /// Where its key lives: "file PATH" or "HSM pkcs11:..."; nil when this state directory holds no key for it.
        let key: String?
        enum CodingKeys: String, CodingKey { case sha256, subject, notAfter = "not_after", signing, key }
    }
    struct IdentityJSON: Encodable {
        let spiffeID: String
        let lastContact: String
        let notAfter: String
        let caughtUp: Bool
        enum CodingKeys: String, CodingKey { case spiffeID = "spiffe_id", lastContact = "last_contact", notAfter = "not_after", caughtUp = "caught_up" }
    }
    struct BlockerJSON: Encodable {
        let kind: String
        let count: Int
        let expectedBy: String?
        let clearsBy: String?
        let detail: String
        enum CodingKeys: String, CodingKey { case kind, count, expectedBy = "expected_by", clearsBy = "clears_by", detail }
    }
    let stage: String
    let preparedAt: String?
    let activatedAt: String?
    let forced: Bool
    let roots: [RootJSON]
    let identities: [IdentityJSON]
    let lagging: Int
    let nextStep: String
    let blockers: [BlockerJSON]
    let nextStepExpectedBy: String?
    let nextStepClearsBy: String?
    let liveOnOldRoot: Int?
    let oldRootLastNotAfter: String?
    let renewedOnOldRoot: Int?
    let servingSupersededOnOldRoot: Int?
    let tokensOnOldRoot: Int
    let tokensOnOldRootInferred: Int

    enum CodingKeys: String, CodingKey {
        case stage, preparedAt = "prepared_at", activatedAt = "activated_at", forced, roots, identities, lagging
        case nextStep = "next_step", blockers, nextStepExpectedBy = "next_step_expected_by", nextStepClearsBy = "next_step_clears_by"
        case liveOnOldRoot = "live_on_old_root", oldRootLastNotAfter = "old_root_last_not_after"
        case renewedOnOldRoot = "renewed_on_old_root", servingSupersededOnOldRoot = "serving_superseded_on_old_root"
        case tokensOnOldRoot = "tokens_on_old_root", tokensOnOldRootInferred = "tokens_on_old_root_inferred"
    }

    init(_ status: RotateRoot.Status) {
        stage = status.stage
        preparedAt = status.preparedAt?.rfc3339
        activatedAt = status.activatedAt?.rfc3339
        forced = status.forced
        roots = status.roots.map {
            RootJSON(sha256: $0.sha256, subject: $0.subject, notAfter: $0.notAfter.rfc3339, signing: $0.sha256 == status.signing.sha256, key: $0.key)
        }
        identities = status.identities.map {
            IdentityJSON(spiffeID: $0.spiffeID, lastContact: $0.lastIssuedAt.rfc3339, notAfter: $0.notAfter.rfc3339, caughtUp: $0.caughtUp)
        }
        lagging = status.lagging
        nextStep = status.nextStep
        blockers = status.blockers.map {
            BlockerJSON(kind: $0.kind, count: $0.count, expectedBy: $0.expectedBy?.rfc3339, clearsBy: $0.clearsBy?.rfc3339, detail: $0.detail)
        }
        nextStepExpectedBy = status.nextStepExpectedBy?.rfc3339
        nextStepClearsBy = status.nextStepClearsBy?.rfc3339
        let activated = status.stage == "activated"
        liveOnOldRoot = activated ? status.liveOnOldRoot : nil
        oldRootLastNotAfter = status.oldRootLastNotAfter?.rfc3339
        renewedOnOldRoot = activated ? status.renewedOnOldRoot : nil
        servingSupersededOnOldRoot = activated ? status.supersededServingOnOldRoot : nil
        tokensOnOldRoot = status.tokensOnOldRoot
        tokensOnOldRootInferred = status.tokensOnOldRootInferred
    }
}

/// `meshca root prepare|activate|retire --json`: the step taken and the roots it concerns.
struct RootStepJSON: Encodable {
    let stage: String
    let oldRoot: RootStatusJSON.RootJSON
    let newRoot: RootStatusJSON.RootJSON?
    let bundle: [RootStatusJSON.RootJSON]?
    let archivedAt: String?
    let forcedLagging: [String]?

    enum CodingKeys: String, CodingKey {
        case stage, oldRoot = "old_root", newRoot = "new_root", bundle, archivedAt = "archived_at", forcedLagging = "forced_lagging"
    }

    init(
        stage: String, oldRoot: RootSummary, newRoot: RootSummary? = nil, bundle: [RootSummary]? = nil, archivedAt: String? = nil,
        forcedLagging: [String]? = nil
    ) {
        self.stage = stage
        let signing = stage == "prepared" ? oldRoot : (newRoot ?? oldRoot)
        func json(_ root: RootSummary) -> RootStatusJSON.RootJSON {
            RootStatusJSON.RootJSON(
                sha256: root.sha256, subject: root.subject, notAfter: root.notAfter.rfc3339, signing: root.sha256 == signing.sha256, key: nil)
        }
        self.oldRoot = json(oldRoot)
        self.newRoot = newRoot.map(json)
        self.bundle = bundle?.map(json)
        self.archivedAt = archivedAt
        self.forcedLagging = forcedLagging
    }
}
