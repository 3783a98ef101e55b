import Foundation
import MeshCATestSupport
import Testing

/// `meshca` commands run as processes, each with a SoftHSM token of its own (`SOFTHSM2_CONF` in their environment).
@Suite("meshca with its CA key in SoftHSM", .enabled(if: SoftHSM.isAvailable, .init(rawValue: SoftHSM.unavailableReason)))
struct HSMCommandTests {
    @Test("init --key generates the root key in the token, records only its URI, and issues a chain openssl verifies")
    func initIssueVerify() async throws {
        let hsm = try SoftHSM.make()
        defer { hsm.directory.remove() }
        let dir = try TemporaryDirectory("hsm-init")
        defer { dir.remove() }
        let state = dir.file("state")
        let created = try await Command.meshca(
            ["init", "--key", hsm.uri(object: "root"), "--key-type", "ec-p384", "--state-dir", state], environment: hsm.environment)
        #expect(created.status == 0, "\(created.stderr)")
        #expect(created.stdout.contains("key        HSM pkcs11:token=meshca;object=root;id=%"), "\(created.stdout)")
        #expect(!FileManager.default.fileExists(atPath: state + "/ca-key.pem"), "no key file: the key stays in the token")
        let reference = try String(contentsOfFile: state + "/ca-key.pkcs11", encoding: .utf8)
        #expect(reference.hasPrefix("pkcs11:token=meshca;object=root;id=%") && !reference.contains("87654321"), "the URI, never the PIN")
        #expect(try dir.mode("state/ca-key.pkcs11") == 0o600)

        let issued = try await Command.meshca(
            ["issue", "--sa", "was", "--out", dir.file("was"), "--state-dir", state], environment: hsm.environment)
        #expect(issued.status == 0, "\(issued.stderr)")
        let verify = try await Command.run(
            "openssl", ["verify", "-CAfile", dir.file("was/root-cert.pem"), dir.file("was/cert-chain.pem")])
        #expect(verify.status == 0 && verify.stdout.contains("OK"), "\(verify.stdout)\(verify.stderr)")
        let text = try await Command.run("openssl", ["x509", "-in", dir.file("was/cert-chain.pem"), "-noout", "-text"])
        #expect(text.stdout.contains("ecdsa-with-SHA384"), "the P-384 root key signs with SHA-384")

        // doctor and root status say where the key lives and never print key material.
        let doctor = try await Command.meshca(["doctor", "--state-dir", state], environment: hsm.environment)
        #expect(doctor.stdout.contains("signing key in an HSM, pkcs11:token=meshca;object=root"), "\(doctor.stdout)\(doctor.stderr)")
        #expect(doctor.stdout.contains("sensitive, not extractable"))
        let status = try await Command.meshca(["root", "status", "--state-dir", state], environment: hsm.environment)
        #expect(status.stdout.contains("key           HSM pkcs11:token=meshca;object=root"), "\(status.stdout)\(status.stderr)")
        for output in [created.stdout, doctor.stdout, status.stdout] { #expect(!output.contains("PRIVATE KEY")) }

        // A PIN file others can read is a warning (doctor exits 1), with the fix.
        chmod(hsm.pinFile, 0o644)
        let loose = try await Command.meshca(["doctor", "--state-dir", state], environment: hsm.environment)
        #expect(loose.status == 1 && loose.stdout.contains("run: chmod 600 \(hsm.pinFile)"), "\(loose.stdout)\(loose.stderr)")
        #expect(loose.stdout.contains("signing key in an HSM"), "where the key lives is still said")
        chmod(hsm.pinFile, 0o600)

        // Without the token's configuration the key cannot be reached: a clear error, non-zero exit.
        let unreachable = try await Command.meshca(
            ["issue", "--sa", "was", "--out", dir.file("was2"), "--state-dir", state], environment: ["SOFTHSM2_CONF": dir.file("missing.conf")])
        #expect(unreachable.status != 0)
        #expect(unreachable.stderr.contains("ca-key.pkcs11 cannot be used"), "\(unreachable.stderr)")
    }

    @Test("A wrong PIN is refused naming the PIN source and the fix")
    func wrongPIN() async throws {
        let hsm = try SoftHSM.make()
        defer { hsm.directory.remove() }
        let dir = try TemporaryDirectory("hsm-pin")
        defer { dir.remove() }
        try dir.write("wrong-pin", "0000\n")
        let uri = "pkcs11:token=meshca;object=ca?module-path=\(SoftHSM.modulePath)&pin-source=file:\(dir.file("wrong-pin"))"
        let result = try await Command.meshca(["init", "--key", uri, "--state-dir", dir.file("state")], environment: hsm.environment)
        #expect(result.status != 0)
        #expect(result.stderr.contains("refused the user PIN from file:\(dir.file("wrong-pin")) (CKR_PIN_INCORRECT)"), "\(result.stderr)")
        let inline = try await Command.meshca(
            ["init", "--key", "pkcs11:token=meshca;object=ca?module-path=\(SoftHSM.modulePath)&pin-value=87654321", "--state-dir", dir.file("s2")])
        #expect(inline.status == 64, "a PIN in the URI is a usage error")
        #expect(inline.stderr.contains("pin-value="))
    }

    @Test("An intermediate whose key is in the token plugs into another meshca (init --plugin-ca) that signs with it")
    func intermediateInHSM() async throws {
        let hsm = try SoftHSM.make()
        defer { hsm.directory.remove() }
        let dir = try TemporaryDirectory("hsm-intermediate")
        defer { dir.remove() }
        let env = hsm.environment
        #expect(try await Command.meshca(["init", "--state-dir", dir.file("root")], environment: env).status == 0)
        let made = try await Command.meshca(
            ["intermediate", "create", "--out", dir.file("cacerts"), "--key", hsm.uri(object: "intermediate"), "--state-dir", dir.file("root")],
            environment: env)
        #expect(made.status == 0, "\(made.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir.file("cacerts/ca-key.pkcs11")))
        #expect(!FileManager.default.fileExists(atPath: dir.file("cacerts/ca-key.pem")))
        let plugged = try await Command.meshca(["init", "--plugin-ca", dir.file("cacerts"), "--state-dir", dir.file("plugged")], environment: env)
        #expect(plugged.status == 0, "\(plugged.stderr)")
        #expect(plugged.stdout.contains("key        HSM pkcs11:token=meshca;object=intermediate"), "\(plugged.stdout)")
        let issued = try await Command.meshca(
            ["issue", "--sa", "was", "--out", dir.file("was"), "--state-dir", dir.file("plugged")], environment: env)
        #expect(issued.status == 0, "\(issued.stderr)")
        let verify = try await Command.run("openssl", ["verify", "-CAfile", dir.file("was/root-cert.pem"), "-untrusted", dir.file("was/cert-chain.pem"), dir.file("was/cert-chain.pem")])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")

        // The same plug-in CA with only its three certificate files, the key named by --key.
        try FileManager.default.removeItem(atPath: dir.file("cacerts/ca-key.pkcs11"))
        let withoutKey = try await Command.meshca(["init", "--plugin-ca", dir.file("cacerts"), "--state-dir", dir.file("nokey")], environment: env)
        #expect(withoutKey.status != 0 && withoutKey.stderr.contains("ca-key.pem is missing"), "\(withoutKey.stderr)")
        let byFlag = try await Command.meshca(
            ["init", "--plugin-ca", dir.file("cacerts"), "--key", hsm.uri(object: "intermediate"), "--state-dir", dir.file("byflag")], environment: env)
        #expect(byFlag.status == 0, "\(byFlag.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir.file("byflag/ca-key.pkcs11")))
        let wrong = try await Command.meshca(
            ["init", "--plugin-ca", dir.file("cacerts"), "--key", hsm.uri(object: "no-such-key"), "--state-dir", dir.file("wrongkey")], environment: env)
        #expect(wrong.status != 0 && wrong.stderr.contains("holds no private key matching"), "\(wrong.stderr)")

        // A backup of a state directory whose key is in the token holds the URI, and verifies against the token.
        let backup = try await Command.meshca(["backup", dir.file("backup"), "--state-dir", dir.file("byflag")], environment: env)
        #expect(backup.status == 0, "\(backup.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir.file("backup/ca-key.pkcs11")))
    }

    @Test("Root rotation with both roots in the token: prepare --key, activate, the new root signs, both keys shown")
    func rotationInHSM() async throws {
        let hsm = try SoftHSM.make()
        defer { hsm.directory.remove() }
        let dir = try TemporaryDirectory("hsm-rotation")
        defer { dir.remove() }
        let env = hsm.environment
        let state = dir.file("state")
        #expect(try await Command.meshca(["init", "--key", hsm.uri(object: "root-1"), "--state-dir", state], environment: env).status == 0)
        let withoutKey = try await Command.meshca(["root", "prepare", "--state-dir", state], environment: env)
        #expect(withoutKey.status != 0, "a rotation never moves an HSM root's successor into a file by omission")
        #expect(withoutKey.stderr.contains("give the new root's key with --key URI"), "\(withoutKey.stderr)")
        let sameKey = try await Command.meshca(["root", "prepare", "--key", hsm.uri(object: "root-1"), "--state-dir", state], environment: env)
        #expect(sameKey.status != 0 && sameKey.stderr.contains("a rotation needs a new key"), "\(sameKey.stderr)")

        let prepared = try await Command.meshca(
            ["root", "prepare", "--key", hsm.uri(object: "root-2"), "--pick-up-margin", "1s", "--state-dir", state], environment: env)
        #expect(prepared.status == 0, "\(prepared.stderr)")
        #expect(FileManager.default.fileExists(atPath: state + "/next/ca-key.pkcs11"))
        let status = try await Command.meshca(["root", "status", "--state-dir", state], environment: env)
        #expect(status.stdout.contains("object=root-1") && status.stdout.contains("object=root-2"), "\(status.stdout)")

        let activated = try await Command.meshca(["root", "activate", "--state-dir", state], environment: env)
        #expect(activated.status == 0, "\(activated.stderr)")
        #expect(try String(contentsOfFile: state + "/ca-key.pkcs11", encoding: .utf8).contains("object=root-2"))
        #expect(try String(contentsOfFile: state + "/previous/ca-key.pkcs11", encoding: .utf8).contains("object=root-1"))
        #expect(!FileManager.default.fileExists(atPath: state + "/ca-key.pem"))

        let issued = try await Command.meshca(["issue", "--sa", "was", "--out", dir.file("was"), "--state-dir", state], environment: env)
        #expect(issued.status == 0, "\(issued.stderr)")
        let verify = try await Command.run("openssl", ["verify", "-CAfile", dir.file("was/root-cert.pem"), dir.file("was/cert-chain.pem")])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        let issuer = try await Command.run("openssl", ["x509", "-in", dir.file("was/cert-chain.pem"), "-noout", "-issuer"])
        let newRoot = try await Command.run("openssl", ["x509", "-in", state + "/ca-cert.pem", "-noout", "-subject"])
        #expect(issuer.stdout.dropFirst("issuer=".count) == newRoot.stdout.dropFirst("subject=".count), "the new root signs")
        // The old root's key still signs its CRL from the token (crl.pem holds one CRL per root while both are kept).
        let serial = try await Command.run("openssl", ["x509", "-in", dir.file("was/cert-chain.pem"), "-noout", "-serial"])
        let revoked = try await Command.meshca(
            ["revoke", String(serial.stdout.split(separator: "=").last ?? "").trimmingCharacters(in: .whitespacesAndNewlines), "--state-dir", state],
            environment: env)
        #expect(revoked.status == 0, "\(revoked.stderr)")
        let crls = try String(contentsOfFile: state + "/crl.pem", encoding: .utf8)
        #expect(crls.components(separatedBy: "-----BEGIN X509 CRL-----").count == 3, "a CRL from each root, both signed in the token")
        let doctor = try await Command.meshca(["doctor", "--state-dir", state], environment: env)
        #expect(doctor.stdout.contains("previous root key in an HSM, pkcs11:token=meshca;object=root-1"), "\(doctor.stdout)")
    }
}
