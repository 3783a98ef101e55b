import ArgumentParser
import Foundation
import MeshCADaemon

/// `meshca revoke SERIAL [--reason R]`
struct Revoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "Revoke an issued certificate: record it in the ledger and rewrite the CA's CRL.",
        discussion: """
            The revocation is final. The certificate can no longer renew (the CA refuses it with UNAUTHENTICATED), \
            and the CRL in the state directory (crl.pem) lists it at once; a running `meshca serve` picks the \
            revocation up within seconds and serves the new CRL at /crl on its monitoring port. Revoking a \
            certificate that is already revoked changes nothing and exits with status 1, saying when and why it \
            was revoked.
            """
    )

    @OptionGroup var state: StateOptions
    @OptionGroup var ledger: LedgerOptions

    @Argument(
        help:
            "The certificate's serial in hex, as `meshca audit list` prints it (any case, colons and leading zeros allowed)."
    )
    var serial: String

    @Option(
        help: ArgumentHelp(
            "Why, as an RFC 5280 CRLReason: \(RevokeCertificate.reasonNames.joined(separator: ", ")).",
            valueName: "reason"))
    var reason: String = "unspecified"

    @Flag(help: "Print JSON (serial, spiffe_id, reason, revoked_at, crls).")
    var json = false

    func validate() throws {
        try usage("--reason: ") { try RevokeCertificate.checkReason(reason) }
        guard RevokeCertificate.isSerialNumber(serial) else {
            throw ValidationError(
                "\"\(serial)\" is not a serial number: give its hex digits (e.g. 4f:a2:09 or 4fa209), as `meshca audit list` prints them."
            )
        }
    }

    func run() async throws {
        let revoked = try await RevokeCertificate(directory: state.directory, ledger: try ledger.location())
            .run(serial: serial, reason: reason, now: Date())
        if json {
            let object: [String: Any] = [
                "serial": revoked.serial, "spiffe_id": revoked.spiffeID, "reason": revoked.reason, "revoked_at": revoked.at.rfc3339,
                "crls": revoked.crls.map(Revoke.json(of:)),
            ]
            print(try JSONOutput.render(object: object))
        } else {
            print("revoked \(revoked.serial) (\(revoked.identity)), reason \(revoked.reason), at \(revoked.at.rfc3339)")
            for crl in revoked.crls { print(Revoke.summary(of: crl)) }
        }
        if !revoked.listed {
            printError(
                "meshca: note: \(revoked.serial) was issued by a CA certificate (fingerprint "
                    + "\(revoked.issuerFingerprint)) whose key meshca no longer holds, so no CRL lists it; "
                    + "renewals with it are refused all the same.")
        }
    }

    /// "CRL #N with K entries written to PATH (next update by T)".
    static func summary(of crl: PublishedCRL) -> String {
        "CRL #\(crl.number) with \(crl.entries) entr\(crl.entries == 1 ? "y" : "ies") written to \(crl.path) "
            + "(next update by \(crl.nextUpdate.rfc3339))"
    }

    /// A CRL in `--json` output: number, entries, this_update, next_update, path, pem.
    static func json(of crl: PublishedCRL) -> [String: Any] {
        [
            "number": crl.number, "entries": crl.entries, "this_update": crl.thisUpdate.rfc3339,
            "next_update": crl.nextUpdate.rfc3339, "path": crl.path, "pem": crl.pem,
        ]
    }
}

/// `meshca crl [--out FILE]`
struct CRLCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crl",
        abstract: "Sign a fresh CRL of the CA now, write it to crl.pem in the state directory, and print it.",
        discussion: """
            The CRL (X.509 v2, PEM) lists every revoked, unexpired certificate the signing CA issued; it is valid \
            for 24h. `meshca serve` re-signs it every 12h and after each revocation, so this is only needed to \
            look at it, or to refresh crl.pem while no daemon runs. Read it with `openssl crl -in crl.pem -noout -text`.
            """
    )

    @OptionGroup var state: StateOptions
    @OptionGroup var ledger: LedgerOptions

    @Option(help: ArgumentHelp("Also write the PEM to this file instead of printing it.", valueName: "file"))
    var out: String?

    @Flag(help: "Print JSON (one object per CRL: number, entries, this_update, next_update, path, pem).")
    var json = false

    func run() async throws {
        var publish = PublishCRL(directory: state.directory, ledger: try ledger.location())
        publish.out = out
        let crls = try await publish.run(now: Date())
        if json {
            print(try JSONOutput.render(object: crls.map(Revoke.json(of:))))
            return
        }
        for crl in crls { printError(Revoke.summary(of: crl)) }
        if out == nil {
            print(crls.map(\.pem).joined(), terminator: "")
        }
    }
}
