import Foundation
import MeshCATestSupport
import Testing

@Suite("meshca root: exit codes, messages and --json as a user sees them")
struct RootCommandTests {
    @Test("A lagging identity blocks activate (exit 1, named); --force goes through; retire waits for live certificates; the old root's CRL covers its revoked certificates")
    func gates() throws {
        let ws = try Workspace()
        defer { ws.remove() }
        expectSuccess(try ws.meshca("issue", "--sa", "was"))
        let none = try ws.json(try ws.meshca("root", "status", "--json")).first
        #expect(none?["stage"] as? String == "none")

        let early = try ws.meshca("root", "activate")
        #expect(early.status == 1)
        #expect(early.stderr.contains("meshca root prepare"), "\(early.stderr)")

        let prepare = try ws.meshca("root", "prepare")
        expectSuccess(prepare)
        #expect(prepare.stdout.contains("root-cert.pem now holds 2 roots"), "\(prepare.stdout)")
        #expect(try ws.dir.read("state/root-cert.pem").components(separatedBy: "BEGIN CERTIFICATE").count == 3)

        let status = try #require(try ws.json(try ws.meshca("root", "status", "--json")).first)
        #expect(status["stage"] as? String == "prepared")
        #expect(status["lagging"] as? Int == 1)
        #expect((status["roots"] as? [[String: Any]])?.count == 2)
        let identities = status["identities"] as? [[String: Any]]
        #expect(identities?.first?["spiffe_id"] as? String == "spiffe://cluster.local/ns/default/sa/was")
        #expect(identities?.first?["caught_up"] as? Bool == false)

        let refused = try ws.meshca("root", "activate")
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("Refusing to activate the new root: 1 identity holds a live certificate"), "\(refused.stderr)")
        #expect(refused.stderr.contains("spiffe://cluster.local/ns/default/sa/was"))

        let forced = try ws.meshca("root", "activate", "--force")
        expectSuccess(forced)
        #expect(forced.stderr.contains("activated with --force although 1 identity lags"), "\(forced.stderr)")
        // New certificates come from the new root and verify against the two-root bundle (OpenSSL).
        expectSuccess(try ws.meshca("issue", "--sa", "api", "--out", "api"))
        #expect(try ws.openssl("x509", "-in", "api/cert-chain.pem", "-noout", "-issuer").stdout.contains("meshca root"))
        expectSuccess(try ws.openssl("verify", "-CAfile", "state/root-cert.pem", "api/cert-chain.pem"))
        expectSuccess(try ws.openssl("verify", "-CAfile", "api/root-cert.pem", "cert-chain.pem"))
        // What --force risks: the lagging workload's bundle (old root only) does not trust the new certificates.
        #expect(try ws.openssl("verify", "-CAfile", "root-cert.pem", "api/cert-chain.pem").status != 0)

        let retire = try ws.meshca("root", "retire")
        #expect(retire.status == 1)
        #expect(retire.stderr.contains("Refusing to retire the old root"), "\(retire.stderr)")
        #expect(try ws.json(try ws.meshca("root", "status", "--json")).first?["live_on_old_root"] as? Int == 1)
        // Revoking the old root's certificate: the old root (key in previous/) signs a CRL of its own in crl.pem,
        // which OpenSSL applies; and with nothing live left on the old root, retire goes through.
        let serial = try ws.openssl("x509", "-in", "cert-chain.pem", "-noout", "-serial").stdout
            .trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "serial=", with: "")
        let revoke = try ws.meshca("revoke", serial, "--reason", "superseded")
        expectSuccess(revoke)
        #expect(revoke.stdout.components(separatedBy: "written to").count == 3, "two CRLs: \(revoke.stdout)")
        #expect(!revoke.stderr.contains("no CRL lists it"), "\(revoke.stderr)")
        let checked = try ws.openssl("verify", "-crl_check", "-CRLfile", "state/crl.pem", "-CAfile", "state/root-cert.pem", "cert-chain.pem")
        #expect(checked.status != 0 && (checked.stdout + checked.stderr).contains("certificate revoked"), "\(checked.stdout)\(checked.stderr)")
        expectSuccess(try ws.openssl("verify", "-crl_check", "-CRLfile", "state/crl.pem", "-CAfile", "state/root-cert.pem", "api/cert-chain.pem"))
        let retired = try ws.meshca("root", "retire")
        expectSuccess(retired)
        #expect(try ws.dir.read("state/root-cert.pem").components(separatedBy: "BEGIN CERTIFICATE").count == 2)
        #expect(try ws.dir.read("state/crl.pem").components(separatedBy: "BEGIN X509 CRL").count == 2, "one CRL after retire")

        // Every step is on the ledger's hash chain, which still verifies.
        expectSuccess(try ws.meshca("audit", "verify"))
    }

    @Test("retire waits for unused join tokens that pin the old root; tokens made after activation do not count")
    func tokensPinningTheOldRoot() throws {
        let ws = try Workspace()
        defer { ws.remove() }
        expectSuccess(try ws.meshca("init"))
        func tokenID(_ result: Command.Result) -> String {
            String(result.stdout.split(whereSeparator: \.isWhitespace).first { $0.hasPrefix("mct1.") }?.split(separator: ".")[1] ?? "")
        }
        let old = try ws.meshca("token", "create", "--sa", "web")
        expectSuccess(old)
        let oldID = tokenID(old)
        #expect(oldID.count == 12, "\(old.stdout)")
        expectSuccess(try ws.meshca("root", "prepare"))
        expectSuccess(try ws.meshca("root", "activate"))
        // Token timestamps are whole seconds: a token made in the activation's own second counts as pinning the old
        // root, so the new one is made in the next second.
        Thread.sleep(forTimeInterval: 1.1)
        let new = try ws.meshca("token", "create", "--sa", "api")
        expectSuccess(new)
        let newID = tokenID(new)

        let status = try ws.meshca("root", "status")
        #expect(status.stdout.contains("1 unused join token(s) from before activation pin the old root (\(oldID))"), "\(status.stdout)")
        #expect(try ws.json(try ws.meshca("root", "status", "--json")).first?["tokens_on_old_root"] as? Int == 1)
        let refused = try ws.meshca("root", "retire")
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("1 unused join token created before activation pins it"), "\(refused.stderr)")
        #expect(refused.stderr.contains("\(oldID)  default/web"))
        #expect(!refused.stderr.contains(newID))
        #expect(refused.stderr.contains("meshca token revoke ID"))

        expectSuccess(try ws.meshca("token", "revoke", oldID))
        expectSuccess(try ws.meshca("root", "retire"))
    }
}
