import Foundation
import MeshCATestSupport
import Testing

@Suite("meshca root: exit codes, messages and --json as a user sees them")
struct RootCommandTests {
    @Test("A lagging identity blocks activate (exit 1, named); --force goes through; retire waits for live certificates; the old root's CRL covers its revoked certificates")
    func gates() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        expectSuccess(try await ws.meshca("issue", "--sa", "was"))
        let none = try ws.json(try await ws.meshca("root", "status", "--json")).first
        #expect(none?["stage"] as? String == "none")

        let early = try await ws.meshca("root", "activate")
        #expect(early.status == 1)
        #expect(early.stderr.contains("meshca root prepare"), "\(early.stderr)")

        let prepare = try await ws.meshca("root", "prepare")
        expectSuccess(prepare)
        #expect(prepare.stdout.contains("root-cert.pem now holds 2 roots"), "\(prepare.stdout)")
        #expect(try ws.dir.read("state/root-cert.pem").components(separatedBy: "BEGIN CERTIFICATE").count == 3)

        let status = try #require(try await ws.json(try await ws.meshca("root", "status", "--json")).first)
        #expect(status["stage"] as? String == "prepared")
        #expect(status["lagging"] as? Int == 1)
        // What blocks the next step, and until when: the lagging identity, at the latest until its certificate expires.
        #expect(status["next_step"] as? String == "activate")
        let blocker = (status["blockers"] as? [[String: Any]])?.first
        #expect(blocker?["kind"] as? String == "lagging-identities")
        #expect(blocker?["count"] as? Int == 1)
        #expect(blocker?["clears_by"] as? String == identitiesNotAfter(status))
        #expect(blocker?["expected_by"] is String)
        #expect(status["next_step_clears_by"] as? String == identitiesNotAfter(status))
        let text = try await ws.meshca("root", "status")
        #expect(text.stdout.contains("`meshca root activate` is blocked by:\n  1 identity holds a live certificate"), "\(text.stdout)")
        #expect(text.stdout.contains("stops blocking: expected by "), "\(text.stdout)")
        #expect((status["roots"] as? [[String: Any]])?.count == 2)
        let identities = status["identities"] as? [[String: Any]]
        #expect(identities?.first?["spiffe_id"] as? String == "spiffe://cluster.local/ns/default/sa/was")
        #expect(identities?.first?["caught_up"] as? Bool == false)

        let refused = try await ws.meshca("root", "activate")
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("Refusing to activate the new root: 1 identity holds a live certificate"), "\(refused.stderr)")
        #expect(refused.stderr.contains("spiffe://cluster.local/ns/default/sa/was"))

        let forced = try await ws.meshca("root", "activate", "--force")
        expectSuccess(forced)
        #expect(forced.stderr.contains("activated with --force although 1 identity lags"), "\(forced.stderr)")
        // New certificates come from the new root and verify against the two-root bundle (OpenSSL).
        expectSuccess(try await ws.meshca("issue", "--sa", "api", "--out", "api"))
        #expect(try await ws.openssl("x509", "-in", "api/cert-chain.pem", "-noout", "-issuer").stdout.contains("meshca root"))
        expectSuccess(try await ws.openssl("verify", "-CAfile", "state/root-cert.pem", "api/cert-chain.pem"))
        expectSuccess(try await ws.openssl("verify", "-CAfile", "api/root-cert.pem", "cert-chain.pem"))
        // What --force risks: the lagging workload's bundle (old root only) does not trust the new certificates.
        #expect(try await ws.openssl("verify", "-CAfile", "root-cert.pem", "api/cert-chain.pem").status != 0)

        let retire = try await ws.meshca("root", "retire")
        #expect(retire.status == 1)
        #expect(retire.stderr.contains("Refusing to retire the old root"), "\(retire.stderr)")
        let activated = try #require(try await ws.json(try await ws.meshca("root", "status", "--json")).first)
        #expect(activated["live_on_old_root"] as? Int == 1)
        #expect(activated["next_step"] as? String == "retire")
        // Issued locally (`meshca issue`): no agent renews it, so only its expiry clears it.
        let live = (activated["blockers"] as? [[String: Any]])?.first
        #expect(live?["kind"] as? String == "old-root-workload-certificates")
        #expect(live?["expected_by"] as? String == activated["old_root_last_not_after"] as? String)
        #expect(activated["serving_superseded_on_old_root"] as? Int == 0)
        // Revoking the old root's certificate: the old root (key in previous/) signs a CRL of its own in crl.pem,
        // which OpenSSL applies; and with nothing live left on the old root, retire goes through.
        let serial = try await ws.openssl("x509", "-in", "cert-chain.pem", "-noout", "-serial").stdout
            .trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "serial=", with: "")
        let revoke = try await ws.meshca("revoke", serial, "--reason", "superseded")
        expectSuccess(revoke)
        #expect(revoke.stdout.components(separatedBy: "written to").count == 3, "two CRLs: \(revoke.stdout)")
        #expect(!revoke.stderr.contains("no CRL lists it"), "\(revoke.stderr)")
        let checked = try await ws.openssl("verify", "-crl_check", "-CRLfile", "state/crl.pem", "-CAfile", "state/root-cert.pem", "cert-chain.pem")
        #expect(checked.status != 0 && (checked.stdout + checked.stderr).contains("certificate revoked"), "\(checked.stdout)\(checked.stderr)")
        expectSuccess(try await ws.openssl("verify", "-crl_check", "-CRLfile", "state/crl.pem", "-CAfile", "state/root-cert.pem", "api/cert-chain.pem"))
        let retired = try await ws.meshca("root", "retire", "--json")
        expectSuccess(retired)
        let retiredJSON = try #require(try ws.json(retired).first)
        #expect(retiredJSON["stage"] as? String == "retired")
        #expect((retiredJSON["bundle"] as? [[String: Any]])?.count == 1)
        #expect((retiredJSON["archived_at"] as? String)?.hasSuffix(".pem") == true, "\(retired.stdout)")
        #expect(try ws.dir.read("state/root-cert.pem").components(separatedBy: "BEGIN CERTIFICATE").count == 2)
        #expect(try ws.dir.read("state/crl.pem").components(separatedBy: "BEGIN X509 CRL").count == 2, "one CRL after retire")

        // Every step is on the ledger's hash chain, which still verifies.
        expectSuccess(try await ws.meshca("audit", "verify"))
    }

    @Test("retire waits for unused join tokens that pin the old root; tokens made after activation do not count")
    func tokensPinningTheOldRoot() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        expectSuccess(try await ws.meshca("init"))
        func tokenID(_ result: Command.Result) async -> String {
            String(result.stdout.split(whereSeparator: \.isWhitespace).first { $0.hasPrefix("mct1.") }?.split(separator: ".")[1] ?? "")
        }
        let old = try await ws.meshca("token", "create", "--sa", "web")
        expectSuccess(old)
        let oldID = await tokenID(old)
        #expect(oldID.count == 12, "\(old.stdout)")
        // --json on the steps: the roots each step concerns.
        let prepared = try #require(try ws.json(try await ws.meshca("root", "prepare", "--json")).first)
        #expect(prepared["stage"] as? String == "prepared")
        #expect((prepared["bundle"] as? [[String: Any]])?.count == 2)
        #expect((prepared["old_root"] as? [String: Any])?["signing"] as? Bool == true)
        let newRoot = (prepared["new_root"] as? [String: Any])?["sha256"] as? String
        let activated = try #require(try ws.json(try await ws.meshca("root", "activate", "--json")).first)
        #expect(activated["stage"] as? String == "activated")
        #expect((activated["new_root"] as? [String: Any])?["sha256"] as? String == newRoot)
        #expect((activated["new_root"] as? [String: Any])?["signing"] as? Bool == true)
        #expect(activated["forced_lagging"] as? [String] == [])
        // Made right after activate, usually in the same second: the token records the root it pins (the new one),
        // so it does not count, whatever its creation time.
        let new = try await ws.meshca("token", "create", "--sa", "api")
        expectSuccess(new)
        let newID = await tokenID(new)
        let pins = Dictionary(
            uniqueKeysWithValues: try ws.json(try await ws.meshca("token", "list", "--json")).map {
                ($0["id"] as? String ?? "", $0["pinned_root_sha256"] as? String ?? "")
            })
        let roots = try #require(try await ws.json(try await ws.meshca("root", "status", "--json")).first?["roots"] as? [[String: Any]])
        #expect(pins[newID] == roots.first { $0["signing"] as? Bool == true }?["sha256"] as? String)
        #expect(pins[oldID] == roots.first { $0["signing"] as? Bool == false }?["sha256"] as? String)

        let status = try await ws.meshca("root", "status")
        #expect(status.stdout.contains("1 usable join token pins the old root (recorded at creation): \(oldID);"), "\(status.stdout)")
        #expect(!status.stdout.contains(newID))
        let json = try #require(try await ws.json(try await ws.meshca("root", "status", "--json")).first)
        #expect(json["tokens_on_old_root"] as? Int == 1)
        #expect(json["tokens_on_old_root_inferred"] as? Int == 0)
        #expect((json["blockers"] as? [[String: Any]])?.map { $0["kind"] as? String } == ["old-root-join-tokens"])
        let refused = try await ws.meshca("root", "retire")
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("1 unused join token pins it"), "\(refused.stderr)")
        #expect(refused.stderr.contains("\(oldID)  default/web"))
        #expect(!refused.stderr.contains(newID))
        #expect(refused.stderr.contains("meshca token revoke ID"))

        expectSuccess(try await ws.meshca("token", "revoke", oldID))
        expectSuccess(try await ws.meshca("root", "retire"))
    }
}

/// The `not_after` of the (one) identity in a `root status --json` answer.
private func identitiesNotAfter(_ status: [String: Any]) -> String? {
    (status["identities"] as? [[String: Any]])?.first?["not_after"] as? String
}
