import ArgumentParser
import Foundation
import MeshCACore
import MeshCADaemon
import MeshCAIO
import MeshCALedger
import SwiftASN1
import X509

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

    @Option(help: ArgumentHelp("The root key type: \(KeyType.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "type"))
    var keyType: String = KeyType.ecP256.rawValue

    @Option(help: ArgumentHelp("How long the root is valid, e.g. 87600h (10 years) or 3650d.", valueName: "duration"))
    var rootTTL: String = "87600h"

    @Option(help: ArgumentHelp("Sign under an existing CA in Istio's cacerts layout (ca-cert.pem, ca-key.pem, cert-chain.pem, root-cert.pem) instead of creating a root.", valueName: "dir"))
    var pluginCA: String?

    @Option(help: hsmKeyHelp)
    var key: String?

    @Flag(help: "Print the new CA as JSON (trust_domain, state_dir, ca, roots, bundle, ledger).")
    var json = false

    func run() async throws {
        let options: CAState.Options
        do {
            options = CAState.Options(
                trustDomain: try TrustDomain(trustDomain),
                keyType: try KeyType(parsing: keyType),
                rootTTL: try parseDuration(rootTTL, flag: "--root-ttl"),
                hsmKey: try parseKeyURI(key)
            )
        } catch let error as IssuanceError {
            throw ValidationError(error.message)
        }
        let directory = state.directory
        let location = try ledger.location()
        if case .postgres = location {
            // The database first: when it cannot be reached, no CA files are left behind.
            try await location.withLedger(in: directory) { _ in }
        }
        if let pluginCA {
            let ca = try await CAState.importPlugin(
                from: FilePaths.absolute(pluginCA), into: directory, trustDomain: options.trustDomain, hsmKey: options.hsmKey, now: Date()
            )
            try Self.createLedger(in: directory, at: location)
            if json { return try JSONOutput.print(InitJSON(ca, directory: directory, importedFrom: FilePaths.absolute(pluginCA))) }
            print("imported the plug-in CA from \(pluginCA) into \(directory.path) (trust domain \(ca.trustDomain.name))")
            print("  signing CA \(ca.signer.certificate.subject), valid until \(ca.signer.certificate.notValidAfter.rfc3339)")
            print("  chain      \(ca.signer.intermediates.count) intermediate(s) above it, \(ca.signer.bundle.count) root(s) in the bundle")
            if let location = ca.keyLocation { print("  key        \(location)") }
            return
        }
        let ca = try CAState.create(in: directory, options: options, now: Date())
        try Self.createLedger(in: directory, at: location)
        if json { return try JSONOutput.print(InitJSON(ca, directory: directory, importedFrom: nil)) }
        let root = ca.signer.certificate
        print("created a CA for trust domain \(ca.trustDomain.name) in \(directory.path)")
        print("  root       \(options.keyType), valid until \(root.notValidAfter.rfc3339)")
        print("  sha256     \(root.sha256Fingerprint)")
        if let location = ca.keyLocation { print("  key        \(location)") }
        print("  bundle     \(directory.bundlePath)")
        print("  ledger     \(location == .stateDirectory ? directory.ledgerPath : location.description)")
    }

    /// The ledger (`ledger.db`, or the schema in an empty PostgreSQL database) and the key that signs its checkpoints
    /// (`ledger-key.pem`), so a copy of the directory (a Kubernetes Secret that several replicas mount read-only) has
    /// everything the daemon reads.
    private static func createLedger(in directory: StateDirectory, at location: LedgerLocation) throws {
        // A PostgreSQL ledger was opened (and its schema applied) before the CA was made.
        if location == .stateDirectory { _ = try SQLiteLedger(path: directory.ledgerPath) }
        _ = try FileCheckpointSigner(besideLedgerAt: directory.ledgerPath)
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

        init(_ certificate: Certificate) {
            subject = "\(certificate.subject)"
            sha256 = certificate.sha256Fingerprint
            keyType = KeyType.of(certificate.publicKey)
            notAfter = certificate.notValidAfter.rfc3339
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

    init(_ state: CAState, directory: StateDirectory, importedFrom: String?) {
        trustDomain = state.trustDomain.name
        stateDir = directory.path
        ca = CertificateJSON(state.signer.certificate)
        intermediates = state.signer.intermediates.count
        roots = state.signer.bundle.map(CertificateJSON.init)
        self.importedFrom = importedFrom
        bundle = directory.bundlePath
        ledger = directory.ledgerPath
    }

}
