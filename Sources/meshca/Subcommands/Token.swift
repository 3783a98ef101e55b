import ArgumentParser
import Foundation
import MeshCADaemon

/// `meshca token`: join tokens, the bootstrap credential for workloads outside Kubernetes.
struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Create, list and revoke join tokens (bearer credentials bound to one identity).",
        subcommands: [TokenCreate.self, TokenList.self, TokenRevoke.self]
    )
}

/// `meshca token create`
struct TokenCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create a join token for one identity and print it (only its hash is stored).",
        discussion: "The token also carries the CA root's SHA-256, so a client holding it can verify the CA it connects to."
    )

    @OptionGroup var state: StateOptions
    @OptionGroup var ledger: LedgerOptions

    @Option(name: .customLong("sa"), help: ArgumentHelp("The service account the token stands for.", valueName: "name"))
    var serviceAccount: String

    @Option(name: .customLong("ns"), help: ArgumentHelp("Its namespace.", valueName: "name"))
    var namespace: String = "default"

    @Option(help: ArgumentHelp("How long the token can be used, e.g. 1h, 7d.", valueName: "duration"))
    var ttl: String = "1h"

    @Option(help: ArgumentHelp("How many certificates it can obtain.", valueName: "n"))
    var uses: Int = 1

    @Flag(help: "Print JSON (token, id, spiffe_id, uses, expires_at) instead of the bare token.")
    var json = false

    func validate() throws {
        try usage { try CommandInput.kubernetesIdentity(namespace: namespace, serviceAccount: serviceAccount) }
        guard uses >= 1 else { throw ValidationError("--uses must be at least 1.") }
        _ = try parseDuration(ttl, flag: "--ttl")
    }

    func run() async throws {
        var create = CreateJoinToken(
            directory: state.directory, namespace: namespace, serviceAccount: serviceAccount,
            ttl: try parseDuration(ttl, flag: "--ttl"), uses: uses, requester: .localUser)
        create.ledger = try ledger.location()
        let token = try await create.run(now: Date()) { printError("meshca: " + $0) }
        if json {
            let object: [String: Any] = [
                "token": token.encoded, "id": token.id, "spiffe_id": token.spiffeID, "uses": token.uses,
                "expires_at": token.expiresAt.rfc3339, "pinned_root_sha256": token.pinnedRootSHA256,
            ]
            return print(try JSONOutput.render(object: object))
        }
        printError("token \(token.id) for \(token.spiffeID): \(uses) use\(uses == 1 ? "" : "s"), expires \(token.expiresAt.rfc3339)")
        print(token.encoded)
    }
}

/// `meshca token list`
struct TokenList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List join tokens and their state.")

    @OptionGroup var state: StateOptions
    @OptionGroup var ledger: LedgerOptions

    @Flag(help: "Print JSON.")
    var json = false

    func run() async throws {
        let now = Date()
        let tokens = try await JoinTokens(directory: state.directory, ledger: try ledger.location()).list(now: now)
        if json {
            let rows: [[String: String]] = tokens.map {
                [
                    "id": $0.id, "namespace": $0.namespace, "service_account": $0.serviceAccount,
                    "created_at": $0.createdAt.rfc3339, "expires_at": $0.expiresAt.rfc3339,
                    "uses": String($0.uses), "max_uses": String($0.maxUses), "state": $0.state,
                    "created_by": $0.createdBy, "pinned_root_sha256": $0.pinnedRootSHA256 ?? "",
                ]
            }
            print(try JSONOutput.render(rows))
            return
        }
        guard !tokens.isEmpty else {
            print("no tokens")
            return
        }
        var table = TextTable(columns: ["ID", "NAMESPACE", "SERVICE ACCOUNT", "EXPIRES", "USES", "STATE"])
        for token in tokens {
            table.add([token.id, token.namespace, token.serviceAccount, token.expiresAt.rfc3339, "\(token.uses)/\(token.maxUses)", token.state])
        }
        print(table.render(), terminator: "")
    }
}

/// `meshca token revoke`
struct TokenRevoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke a join token so it can no longer be used.")

    @OptionGroup var state: StateOptions
    @OptionGroup var ledger: LedgerOptions

    @Argument(help: "The token's id, as `meshca token list` shows it.")
    var id: String

    @Flag(help: "Print JSON ({\"revoked\": ID}).")
    var json = false

    func run() async throws {
        let tokens = JoinTokens(directory: state.directory, ledger: try ledger.location())
        try await tokens.revoke(id: id, now: Date())
        if json { return print(try JSONOutput.render(object: ["revoked": id.lowercased()])) }
        print("revoked token \(id.lowercased())")
    }
}
