import Foundation
import MeshCATestSupport
import Testing

@Suite("meshca revoke, meshca crl and handshake --crl")
struct RevokeCommandTests {
    /// The serial `meshca audit list` shows for the certificate of `serviceAccount`.
    private func serial(of serviceAccount: String, in ws: Workspace) async throws -> String {
        let rows = try ws.json(try await ws.meshca("audit", "list", "--sa", serviceAccount, "--json"))
        return try #require(rows.last?["serial"] as? String)
    }

    @Test(
        "revoke records the revocation, writes a CRL openssl verifies with the serial and reason, and audit verify passes"
    )
    func revoke() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        expectSuccess(try await ws.meshca("issue", "--sa", "web", "--out", "web"))
        expectSuccess(try await ws.meshca("issue", "--sa", "api", "--out", "api"))
        let serial = try await serial(of: "api", in: ws)
        // Typed the way `openssl x509 -text` prints serials: upper case with colons.
        let typed = stride(from: 0, to: serial.count, by: 2).map {
            serial.dropFirst($0).prefix(2).uppercased()
        }.joined(separator: ":")

        let revoked = try await ws.meshca("revoke", typed, "--reason", "keyCompromise")
        expectSuccess(revoked)
        #expect(
            revoked.stdout.contains(
                "revoked \(serial) (spiffe://cluster.local/ns/default/sa/api), reason keyCompromise"))
        #expect(revoked.stdout.contains(ws.state + "/crl.pem"))

        let text = try await ws.openssl(
            "crl", "-in", ws.state + "/crl.pem", "-noout", "-text", "-CAfile", ws.state + "/ca-cert.pem")
        #expect(text.status == 0, "\(text.stderr)")
        #expect((text.stdout + text.stderr).contains("verify OK"))
        #expect(text.stdout.contains("Serial Number: \(serial.uppercased())"), "\(text.stdout)")
        #expect(text.stdout.contains("Key Compromise"))
        #expect(
            String(
                format: "%o",
                try FileManager.default.attributesOfItem(atPath: ws.state + "/crl.pem")[.posixPermissions] as? Int ?? 0)
                == "644")

        let status = try ws.json(try await ws.meshca("audit", "list", "--status", "revoked", "--json"))
        #expect(status.compactMap { $0["serial"] as? String } == [serial])
        expectSuccess(try await ws.meshca("audit", "verify"))

        let again = try await ws.meshca("revoke", serial, "--reason", "superseded")
        #expect(again.status == 1)
        #expect(again.stderr.contains("was already revoked at"))
        #expect(again.stderr.contains("reason: keyCompromise"))

        // `meshca crl` signs a fresh CRL with a higher number and the same entry.
        let before = try await ws.openssl("crl", "-in", ws.state + "/crl.pem", "-noout", "-crlnumber").stdout
        let printed = try await ws.meshca("crl")
        expectSuccess(printed)
        #expect(printed.stdout.hasPrefix("-----BEGIN X509 CRL-----"))
        let after = try await ws.openssl("crl", "-in", ws.state + "/crl.pem", "-noout", "-crlnumber").stdout
        // `openssl crl -crlnumber` prints "crlNumber=0x6B098F54".
        let number = { (text: String) in
            UInt64(
                text.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "crlNumber=0x", with: ""),
                radix: 16)
        }
        #expect((number(after) ?? 0) > (number(before) ?? .max), "\(before) -> \(after)")

        // The handshake harness refuses the revoked client when given the CRL, and accepts it without.
        let refused = try await ws.meshca("handshake", "--server", "web", "--client", "api", "--crl", ws.state + "/crl.pem")
        #expect(refused.status == 1)
        #expect(refused.stdout.contains("serial \(serial)"), "\(refused.stdout)")
        #expect(refused.stdout.contains("revoked"))
        expectSuccess(try await ws.meshca("handshake", "--server", "web", "--client", "api"))
        let missing = try await ws.meshca("handshake", "--server", "web", "--client", "api", "--crl", "nope.pem")
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("does not exist"))
    }

    @Test("revoke explains an unknown serial, a bad serial and a bad reason")
    func refusals() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        expectSuccess(try await ws.meshca("issue", "--sa", "web", "--out", "web"))
        let unknown = try await ws.meshca("revoke", "0badc0de")
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("meshca audit list"))
        let bad = try await ws.meshca("revoke", "not-hex")
        #expect(bad.status == 64)
        #expect(bad.stderr.contains("is not a serial number"))
        let reason = try await ws.meshca("revoke", "0badc0de", "--reason", "certificateHold")
        #expect(reason.status == 64)
        #expect(reason.stderr.contains("keyCompromise"))
    }
}
