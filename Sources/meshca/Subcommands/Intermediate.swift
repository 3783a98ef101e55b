import ArgumentParser
import Foundation
import MeshCADaemon

/// `meshca intermediate`: intermediate CAs under meshca's root, for istiod or another CA to sign with.
struct Intermediate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "intermediate",
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
    @OptionGroup var ledger: LedgerOptions

    @Option(help: ArgumentHelp("Directory to write the four files into (created when missing).", valueName: "dir"))
    var out: String

    @Option(help: ArgumentHelp("Lifetime of the intermediate.", valueName: "duration"))
    var ttl: String = "8760h"

    @Option(help: ArgumentHelp("Key type of the intermediate.", valueName: "type"))
    var keyType: String = CommandInput.defaultKeyType

    @Option(help: ArgumentHelp("Common name of the intermediate.", valueName: "name"))
    var commonName: String = "meshca intermediate"

    @Option(help: hsmKeyHelp)
    var key: String?

    @Flag(help: "Print JSON (subject, serial, not_after, directory, files).")
    var json = false

    func validate() throws {
        _ = try usage { try CommandInput.keyType(keyType) }
        _ = try parseDuration(ttl, flag: "--ttl")
        guard !commonName.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw ValidationError("--common-name is empty; give a name such as \"meshca intermediate\".")
        }
        try requireDirectory(out, flag: "--out")
        _ = try usage("--key: ") { try CommandInput.hsmKey(key) }
    }

    func run() async throws {
        let keyType = try CommandInput.keyType(self.keyType)
        let ttl = try parseDuration(self.ttl, flag: "--ttl")
        var create = MeshCADaemon.IntermediateCreate(
            directory: state.directory, commonName: commonName, ttl: ttl, keyType: keyType, hsmKey: try usage("--key: ") { try CommandInput.hsmKey(key) },
            out: out, requester: .localUser)
        create.ledger = try ledger.location()
        let created = try await create.run(now: Date()) { printError("meshca: " + $0) }
        if json {
            let object: [String: Any] = [
                "subject": created.subject, "serial": created.serial, "not_after": created.notAfter.rfc3339,
                "directory": created.directory, "files": ["ca-cert.pem", created.keyFile, "cert-chain.pem", "root-cert.pem"],
            ]
            return print(try JSONOutput.render(object: object))
        }
        print("created intermediate CA \(created.subject) in \(created.directory)")
        print("  serial     \(created.serial)")
        print("  valid      until \(created.notAfter.rfc3339)")
        print("  files      ca-cert.pem \(created.keyFile) (0600) cert-chain.pem root-cert.pem")
        if let hsm = created.hsmKey { print("  key        HSM \(hsm)") }
    }
}
