import ArgumentParser
import Foundation
import MeshCACore
import MeshCADaemon
import MeshCAIO
import MeshCALedger
import SwiftASN1
import X509

/// `meshca intermediate`: intermediate CAs under meshca's root, for istiod or another CA to sign with.
struct Intermediate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create intermediate CAs under this CA (Istio's cacerts layout).",
        subcommands: [IntermediateCreate.self]
    )
}

/// `meshca intermediate create --out DIR`
struct IntermediateCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create an intermediate CA signed by this CA and write ca-cert.pem, ca-key.pem, cert-chain.pem, root-cert.pem.",
        discussion: """
            Give the directory to istiod as its cacerts secret (kubectl create secret generic cacerts -n istio-system \
            --from-file=DIR), or to another meshca with `meshca init --plugin-ca DIR`. The intermediate may sign only \
            workload certificates (path length 0).
            """
    )

    @OptionGroup var state: StateOptions

    @Option(help: ArgumentHelp("Directory to write the four files into (created when missing).", valueName: "dir"))
    var out: String

    @Option(help: ArgumentHelp("Lifetime of the intermediate.", valueName: "duration"))
    var ttl: String = "8760h"

    @Option(help: ArgumentHelp("Key type of the intermediate.", valueName: "type"))
    var keyType: String = KeyType.ecP256.rawValue

    @Option(help: ArgumentHelp("Common name of the intermediate.", valueName: "name"))
    var commonName: String = "meshca intermediate"

    @Flag(help: "Print JSON (subject, serial, not_after, directory, files).")
    var json = false

    func validate() throws {
        do { _ = try KeyType(parsing: keyType) } catch let error as IssuanceError { throw ValidationError(error.message) }
        _ = try parseDuration(ttl, flag: "--ttl")
        guard !commonName.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw ValidationError("--common-name is empty; give a name such as \"meshca intermediate\".")
        }
        try requireDirectory(out, flag: "--out")
    }

    func run() async throws {
        let keyType = try KeyType(parsing: self.keyType)
        let ttl = try parseDuration(self.ttl, flag: "--ttl")
        let directory = state.directory
        let now = Date()
        let (ca, created) = try CAState.loadOrCreate(in: directory, options: .init(), now: now)
        if created { printError("meshca: no CA in \(directory.path) yet; created one for trust domain \(ca.trustDomain.name)") }
        ca.warnings.forEach(printError)
        let authority = CertificateAuthority(trustDomain: ca.trustDomain, signer: ca.signer)
        let key = try keyType.generate()
        let certificate = try authority.issueIntermediate(publicKey: key.publicKey, commonName: commonName, ttl: ttl, at: now)
        let output = FilePaths.absolute(out)
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        // Like every certificate that leaves the CA, the intermediate is recorded before it is written out.
        let ledger = try SQLiteLedger(path: directory.ledgerPath)
        try await ledger.record(
            IssuanceRecord(
                certificate: certificate, trustDomain: ca.trustDomain, issuedAt: now, requestedTTL: ttl,
                issuer: ca.signer.certificate, requester: Requester(name: Issue.localUser(), authMethod: "local")
            )
        )
        let above = (ca.signer.bundle.contains(ca.signer.certificate) ? [] : [ca.signer.certificate] + ca.signer.intermediates)
        try AtomicFile.write(try key.serializeAsPEM().pemString + "\n", to: output + "/ca-key.pem", mode: 0o600)
        try AtomicFile.write(certificate.pem, to: output + "/ca-cert.pem", mode: 0o644)
        try AtomicFile.write(([certificate] + above + ca.signer.bundle).map(\.pem).joined(), to: output + "/cert-chain.pem", mode: 0o644)
        try AtomicFile.write(ca.signer.bundle.map(\.pem).joined(), to: output + "/root-cert.pem", mode: 0o644)
        if json {
            let object: [String: Any] = [
                "subject": "\(certificate.subject)", "serial": certificate.serialHex, "not_after": certificate.notValidAfter.rfc3339,
                "directory": output, "files": ["ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem"],
            ]
            return print(try JSONOutput.render(object: object))
        }
        print("created intermediate CA \(certificate.subject) in \(output)")
        print("  serial     \(certificate.serialHex)")
        print("  valid      until \(certificate.notValidAfter.rfc3339)")
        print("  files      ca-cert.pem ca-key.pem (0600) cert-chain.pem root-cert.pem")
    }
}
