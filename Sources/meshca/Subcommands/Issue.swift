import ArgumentParser
import Foundation
import MeshCADaemon

/// `meshca issue`: a key, a CSR and a certificate for one workload identity, written as Istio's three files.
struct Issue: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "issue",
        abstract: "Issue a workload certificate and write cert-chain.pem, key.pem and root-cert.pem.",
        discussion: """
            The key is generated here and never leaves this machine. Without --server, the CSR goes through the \
            same checks, signing and ledger record as a request to the daemon, using the CA in the state directory \
            (created with the defaults when there is none). With --server, it is sent to a running `meshca serve` \
            (or istiod) with a join token; prefer --token-file, since other users on the host can read a --token \
            argument in the process list. With --server repeated (replicas), each address is asked in turn until one \
            answers; a refusal is an answer and is not asked of the next.
            """
    )

    @OptionGroup var state: StateOptions
    @OptionGroup var ledger: LedgerOptions

    @Option(name: .customLong("sa"), help: ArgumentHelp("The Kubernetes service account name.", valueName: "name"))
    var serviceAccount: String

    @Option(name: .customLong("ns"), help: ArgumentHelp("The Kubernetes namespace.", valueName: "name"))
    var namespace: String = "default"

    @Option(help: ArgumentHelp("The certificate lifetime, e.g. 90s, 30m, 24h, 7d (at most 90d).", valueName: "duration"))
    var ttl: String = "24h"

    @Option(help: ArgumentHelp("The directory to write the three files into (created when missing).", valueName: "dir"))
    var out: String = "."

    @Option(help: ArgumentHelp("The workload key type: \(CommandInput.keyTypeNames.joined(separator: ", ")).", valueName: "type"))
    var keyType: String = CommandInput.defaultKeyType

    @Option(
        help: ArgumentHelp(
            "Ask a running CA daemon instead of the local CA; repeat it for replicas (the next is asked when one gives no "
                + "answer). A host name stands for each address it resolves to.", valueName: "host:port"))
    var server: [String] = []

    @Option(help: ArgumentHelp("File holding the join token for --server (from `meshca token create`); it also pins the CA root.", valueName: "file"))
    var tokenFile: String?

    @Option(help: ArgumentHelp("The join token itself; visible to other users in the process list, so prefer --token-file.", valueName: "token"))
    var token: String?

    @Option(help: ArgumentHelp("Trust the --server against these roots instead of the token's pinned root.", valueName: "file"))
    var rootCert: String?

    @Option(help: ArgumentHelp("Trust domain of the identity requested from --server.", valueName: "name"))
    var trustDomain: String = "cluster.local"

    @Flag(help: "Print what was issued as JSON (spiffe_id, serial, not_before, not_after, key_type, files).")
    var json = false

    func validate() throws {
        if !server.isEmpty, (token == nil) == (tokenFile == nil) {
            throw ValidationError(
                "--server needs exactly one of --token-file or --token (create a token on the CA host with "
                    + "`meshca token create --sa \(serviceAccount) > \(serviceAccount).token`).")
        }
        if server.isEmpty, token != nil || tokenFile != nil || rootCert != nil {
            throw ValidationError("--token-file, --token and --root-cert are used only with --server HOST:PORT.")
        }
        if !server.isEmpty { try usage("--server ") { try RemoteIssue.checkServers(server) } }
        try usage {
            try CommandInput.kubernetesIdentity(namespace: namespace, serviceAccount: serviceAccount)
            _ = try CommandInput.keyType(keyType)
        }
        _ = try parseDuration(ttl, flag: "--ttl")
        try requireDirectory(out, flag: "--out")
    }

    func run() async throws {
        let keyType = try CommandInput.keyType(keyType)
        let requestedTTL = try parseDuration(ttl, flag: "--ttl")
        if !server.isEmpty {
            let token = try joinTokenText()
            var issue = RemoteIssue(
                servers: server, token: token.text, tokenSource: token.flag, trustDomain: trustDomain, namespace: namespace,
                serviceAccount: serviceAccount, keyType: keyType, ttl: requestedTTL, out: out)
            issue.rootCertFile = rootCert
            let issued: IssuedCredentials
            do {
                issued = try await issue.run { printError("meshca: " + $0) }
            } catch let error as CAError where error.code == .invalidArgument {
                throw ValidationError(error.message)
            }
            try report(issued)
            return
        }
        var issue = LocalIssue(
            directory: state.directory, namespace: namespace, serviceAccount: serviceAccount, requestedTTL: requestedTTL,
            keyType: keyType, out: out, requester: .localUser)
        issue.ledger = try ledger.location()
        let issued = try await issue.run(now: Date()) { printError("meshca: " + $0) }
        try report(issued)
    }

    /// The join token from `--token-file` (surrounding whitespace removed) or `--token`, and the flag it came from.
    func joinTokenText() throws -> (text: String, flag: String) {
        guard let tokenFile else { return (token ?? "", "--token") }
        guard let text = RemoteIssue.token(fromFile: tokenFile) else {
            throw ValidationError("--token-file: cannot read \(tokenFile); check that the file exists and is readable by this user.")
        }
        return (text, "--token-file \(tokenFile)")
    }

    /// Prints what was issued and where the files are (as JSON with `--json`).
    func report(_ issued: IssuedCredentials) throws {
        if json {
            try JSONOutput.print(
                IssueJSON(
                    spiffeID: issued.spiffeID, serial: issued.serial, notBefore: issued.notBefore.rfc3339,
                    notAfter: issued.notAfter.rfc3339, keyType: issued.keyType,
                    files: .init(certChain: issued.certChainPath, key: issued.keyPath, rootCert: issued.rootCertPath)))
            return
        }
        let lifetime = Duration.seconds(Int64(issued.notAfter.timeIntervalSince(issued.notBefore)) - 120)
        print("issued \(issued.spiffeID)")
        print("  serial     \(issued.serial)")
        print("  valid      \(issued.notBefore.rfc3339) to \(issued.notAfter.rfc3339) (\(CommandText.duration(lifetime)))")
        print("  key        \(issued.keyType), \(issued.keyPath) (0600)")
        print("  chain      \(issued.certChainPath)")
        print("  roots      \(issued.rootCertPath)")
    }
}

/// `meshca issue --json`.
struct IssueJSON: Encodable {
    struct Files: Encodable {
        let certChain: String
        let key: String
        let rootCert: String
        enum CodingKeys: String, CodingKey { case certChain = "cert_chain", key, rootCert = "root_cert" }
    }
    let spiffeID: String
    let serial: String
    let notBefore: String
    let notAfter: String
    let keyType: String
    let files: Files
    enum CodingKeys: String, CodingKey {
        case spiffeID = "spiffe_id", serial, notBefore = "not_before", notAfter = "not_after", keyType = "key_type", files
    }
}
