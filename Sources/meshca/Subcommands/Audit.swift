import ArgumentParser
import Foundation
import MeshCADaemon

/// `meshca audit`: what the CA issued, to whom, and what it refused.
struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Read the issuance ledger: certificates issued, one certificate in detail, refused requests.",
        subcommands: [AuditList.self, AuditShow.self, AuditRejections.self, AuditVerify.self]
    )
}

/// `meshca audit list`
struct AuditList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List issued certificates, oldest first."
    )

    @OptionGroup var state: StateOptions
    @OptionGroup var ledger: LedgerOptions

    @Option(name: .customLong("sa"), help: ArgumentHelp("Only this service account.", valueName: "name"))
    var serviceAccount: String?

    @Option(name: .customLong("ns"), help: ArgumentHelp("Only this namespace.", valueName: "name"))
    var namespace: String?

    @Option(help: ArgumentHelp("Only certificates issued since a duration ago (24h) or an RFC 3339 time.", valueName: "when"))
    var since: String?

    @Option(help: ArgumentHelp("Only valid certificates that expire within this duration (e.g. 48h).", valueName: "duration"))
    var expiringWithin: String?

    @Option(help: ArgumentHelp("Only certificates in this state: valid, expired or revoked.", valueName: "status"))
    var status: Status?

    @Option(help: ArgumentHelp("Show at most the newest N.", valueName: "n"))
    var limit: Int?

    @Flag(help: "Print JSON (an array of objects; fields are documented in docs/reference/json.md).")
    var json = false

    func run() async throws {
        let now = Date()
        var filter = AuditLedger.Filter()
        filter.namespace = namespace
        filter.serviceAccount = serviceAccount
        filter.status = status?.rawValue
        filter.limit = limit
        if let since { filter.issuedSince = try parseSince(since, now: now) }
        if let expiringWithin { filter.expiringWithin = try parseDuration(expiringWithin, flag: "--expiring-within") }
        let records = try await AuditLedger(directory: state.directory, ledger: try ledger.location()).issuances(filter, now: now)
        if json {
            print(try JSONOutput.render(records.map(AuditJSON.Issuance.init)))
            return
        }
        guard !records.isEmpty else {
            print("no certificates match")
            return
        }
        var table = TextTable(columns: ["SERIAL", "SPIFFE ID", "ISSUED", "EXPIRES", "STATUS", "REQUESTER"])
        for record in records {
            table.add([
                record.serial, record.spiffeID.isEmpty ? "(serving) " + record.sans.joined(separator: ",") : record.spiffeID, record.issuedAt.rfc3339, record.notAfter.rfc3339,
                record.status, record.requester,
            ])
        }
        print(table.render(), terminator: "")
    }
}

extension AuditList {
    /// `--status`: the states `AuditEntry.status` takes.
    enum Status: String, ExpressibleByArgument, CaseIterable {
        case valid, expired, revoked
    }
}

/// `--since`: a duration back from now, or an RFC 3339 timestamp.
func parseSince(_ text: String, now: Date) throws -> Date {
    if let date = try? Date(text, strategy: .iso8601) { return date }
    guard let duration = try? CommandInput.duration(text) else {
        throw ValidationError("--since: \"\(text)\" is neither a duration (e.g. 24h, 7d) nor an RFC 3339 time (e.g. 2026-11-27T10:00:00Z).")
    }
    return now.addingTimeInterval(-TimeInterval(duration.components.seconds))
}

/// `meshca audit show SERIAL`
struct AuditShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show one issued certificate decoded: identity, validity and time left, fingerprints, requester."
    )

    @OptionGroup var state: StateOptions
    @OptionGroup var ledger: LedgerOptions

    @Argument(help: "The serial number in hex (colons allowed), or a unique prefix of at least 6 digits.")
    var serial: String

    @Flag(help: "Also print the certificate as PEM.")
    var pem = false

    @Flag(help: "Print JSON instead (the same fields as `audit list --json`).")
    var json = false

    func run() async throws {
        let prefix = serial.lowercased().filter { $0 != ":" }
        guard prefix.count >= 6, prefix.allSatisfy(\.isHexDigit) else {
            throw ValidationError("\"\(serial)\" is not a serial number: give its hex digits (at least 6), as `meshca audit list` prints them.")
        }
        let now = Date()
        let record = try await AuditLedger(directory: state.directory, ledger: try ledger.location())
            .issuance(serialPrefix: prefix, given: serial, now: now)
        if json {
            print(try JSONOutput.render(AuditJSON.Issuance(record)))
            return
        }
        let left = record.notAfter.timeIntervalSince(now)
        let timeLeft = left > 0 ? "\(CommandText.duration(.seconds(Int64(left)))) left" : "expired \(CommandText.duration(.seconds(Int64(-left)))) ago"
        let rows: [(String, String)] = [
            ("SPIFFE ID", record.spiffeID),
            ("serial", record.serial),
            ("status", record.status + (record.revocationReason.map { " (\($0))" } ?? "")),
            ("not before", record.notBefore.rfc3339),
            ("not after", "\(record.notAfter.rfc3339) (\(timeLeft))"),
            ("issued at", record.issuedAt.rfc3339),
            ("lifetime", "granted \(CommandText.duration(.seconds(record.grantedTTLSeconds))), requested "
                + (record.requestedTTLSeconds.map { CommandText.duration(.seconds($0)) } ?? "default")),
            ("SANs", record.sans.joined(separator: ", ")),
            ("key", record.keyType),
            ("cert sha256", record.certificateSHA256),
            ("pubkey sha256", record.publicKeySHA256),
            ("csr sha256", record.csrSHA256),
            ("issuer sha256", record.issuerFingerprint),
            ("requester", "\(record.requester) (auth: \(record.authMethod))"),
        ]
        for (label, value) in rows {
            print(label.padding(toLength: 15, withPad: " ", startingAt: 0) + CommandText.escaped(value))
        }
        if pem { print(record.certificatePEM, terminator: "") }
    }
}

/// `meshca audit rejections`
struct AuditRejections: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rejections",
        abstract: "List refused requests with their reasons, oldest first."
    )

    @OptionGroup var state: StateOptions
    @OptionGroup var ledger: LedgerOptions

    @Option(help: ArgumentHelp("Only refusals since a duration ago (24h) or an RFC 3339 time.", valueName: "when"))
    var since: String?

    @Option(help: ArgumentHelp("Show at most the newest N.", valueName: "n"))
    var limit: Int?

    @Flag(help: "Print JSON (an array of objects).")
    var json = false

    func run() async throws {
        let now = Date()
        let since = try self.since.map { try parseSince($0, now: now) }
        let records = try await AuditLedger(directory: state.directory, ledger: try ledger.location()).rejections(since: since, limit: limit)
        if json {
            print(try JSONOutput.render(records.map(AuditJSON.Rejection.init)))
            return
        }
        guard !records.isEmpty else {
            print("no refused requests")
            return
        }
        var table = TextTable(columns: ["TIME", "REQUESTER", "IDENTITY", "REASON", "MESSAGE"])
        for record in records {
            table.add([record.occurredAt.rfc3339, record.requester, record.requestedIdentity, record.reasonCode, record.message])
        }
        print(table.render(), terminator: "")
    }
}
