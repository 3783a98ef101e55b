import ArgumentParser
import Foundation
import MeshCADaemon

/// `meshca init`: creates the CA (self-signed root) and its ledger.
struct Init: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create a CA: a self-signed root for a trust domain, and an empty issuance ledger.",
        discussion: "Refuses to touch a state directory that already holds a CA."
    )

    @OptionGroup var state: StateOptions
    @OptionGroup var ledger: LedgerOptions

    @Option(help: "The SPIFFE trust domain; a lowercase DNS-style name.")
    var trustDomain: String = "cluster.local"

    @Option(help: ArgumentHelp("The root key type: \(CommandInput.keyTypeNames.joined(separator: ", ")).", valueName: "type"))
    var keyType: String = CommandInput.defaultKeyType

    @Option(help: ArgumentHelp("How long the root is valid, e.g. 87600h (10 years) or 3650d.", valueName: "duration"))
    var rootTTL: String = "87600h"

    @Option(help: ArgumentHelp("Sign under an existing CA in Istio's cacerts layout (ca-cert.pem, ca-key.pem, cert-chain.pem, root-cert.pem) instead of creating a root.", valueName: "dir"))
    var pluginCA: String?

    @Option(help: hsmKeyHelp)
    var key: String?

    @Flag(help: "Print the new CA as JSON (trust_domain, state_dir, ca, roots, bundle, ledger).")
    var json = false

    func run() async throws {
        let options = try usage {
            CAState.Options(
                trustDomain: try CommandInput.trustDomain(trustDomain),
                keyType: try CommandInput.keyType(keyType),
                rootTTL: try parseDuration(rootTTL, flag: "--root-ttl"),
                hsmKey: try usage("--key: ") { try CommandInput.hsmKey(key) }
            )
        }
        var create = CreateCA(directory: state.directory, options: options)
        create.ledger = try ledger.location()
        create.pluginCA = pluginCA
        let created = try await create.run(now: Date())
        if json { return try JSONOutput.print(InitJSON(created)) }
        if let pluginCA {
            print("imported the plug-in CA from \(pluginCA) into \(created.stateDir) (trust domain \(created.trustDomain))")
            print("  signing CA \(created.ca.subject), valid until \(created.ca.notAfter.rfc3339)")
            print("  chain      \(created.intermediates) intermediate(s) above it, \(created.roots.count) root(s) in the bundle")
            if let location = created.keyLocation { print("  key        \(location)") }
            return
        }
        print("created a CA for trust domain \(created.trustDomain) in \(created.stateDir)")
        print("  root       \(options.keyType), valid until \(created.ca.notAfter.rfc3339)")
        print("  sha256     \(created.ca.sha256)")
        if let location = created.keyLocation { print("  key        \(location)") }
        print("  bundle     \(created.bundlePath)")
        print("  ledger     \(created.ledger)")
    }
}

/// `meshca init --json`.
struct InitJSON: Encodable {
    struct CertificateJSON: Encodable {
        let subject: String
        let sha256: String
        let keyType: String?
        let notAfter: String
        enum CodingKeys: String, CodingKey { case subject, sha256, keyType = "key_type", notAfter = "not_after" }

        init(_ certificate: CreateCA.CertificateSummary) {
            subject = certificate.subject
            sha256 = certificate.sha256
            keyType = certificate.keyType
            notAfter = certificate.notAfter.rfc3339
        }
    }
    let trustDomain: String
    let stateDir: String
    /// The signing CA: the new root, or the imported plug-in CA.
    let ca: CertificateJSON
    let intermediates: Int
    let roots: [CertificateJSON]
    let importedFrom: String?
    let bundle: String
    let ledger: String

    enum CodingKeys: String, CodingKey {
        case trustDomain = "trust_domain", stateDir = "state_dir", ca, intermediates, roots, importedFrom = "imported_from"
        case bundle, ledger
    }

    init(_ created: CreateCA.Created) {
        trustDomain = created.trustDomain
        stateDir = created.stateDir
        ca = CertificateJSON(created.ca)
        intermediates = created.intermediates
        roots = created.roots.map(CertificateJSON.init)
        importedFrom = created.importedFrom
        bundle = created.bundlePath
        ledger = created.ledgerPath
    }
}
