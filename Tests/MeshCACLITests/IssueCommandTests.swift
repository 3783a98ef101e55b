import Foundation
import MeshCATestSupport
import Testing

@Suite("meshca issue, checked by OpenSSL and Python cryptography")
struct IssueCommandTests {
    @Test("`meshca issue --sa was` on a fresh machine creates a CA and writes three files OpenSSL accepts")
    func firstRun() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        let result = try await ws.meshca("issue", "--sa", "was")
        expectSuccess(result)
        let notices = result.stderr.split(separator: "\n")
        #expect(notices.count == 1 && notices[0].contains("created one for trust domain cluster.local"), "\(result.stderr)")
        #expect(try ws.dir.mode("key.pem") == 0o600)
        #expect(try ws.dir.mode("state") == 0o700)
        #expect(try ws.dir.mode("state/ca-key.pem") == 0o600)

        let verify = try await ws.openssl("verify", "-CAfile", "root-cert.pem", "cert-chain.pem")
        #expect(verify.status == 0 && verify.stdout.contains("cert-chain.pem: OK"), "\(verify.stdout)\(verify.stderr)")

        let text = try await ws.openssl("x509", "-in", "cert-chain.pem", "-noout", "-text").stdout
        #expect(text.contains("X509v3 Subject Alternative Name: critical"))
        #expect(text.contains("URI:spiffe://cluster.local/ns/default/sa/was"))
        #expect(text.components(separatedBy: "URI:").count == 2, "exactly one URI SAN")
        #expect(text.contains("X509v3 Key Usage: critical\n                Digital Signature\n"))
        #expect(!text.contains("Key Encipherment"))
        #expect(text.contains("TLS Web Server Authentication, TLS Web Client Authentication"))
        #expect(text.contains("X509v3 Basic Constraints: critical\n                CA:FALSE"))
        #expect(text.contains("Subject: \n") || text.contains("Subject:\n"))

        // key.pem belongs to the leaf: the public keys are the same.
        let fromKey = try await ws.openssl("pkey", "-in", "key.pem", "-pubout").stdout
        let fromCert = try await ws.openssl("x509", "-in", "cert-chain.pem", "-noout", "-pubkey").stdout
        #expect(!fromKey.isEmpty && fromKey == fromCert)

        // root-cert.pem holds roots only; cert-chain.pem is leaf then root.
        #expect(try ws.dir.read("root-cert.pem").components(separatedBy: "BEGIN CERTIFICATE").count == 2)
        #expect(try ws.dir.read("cert-chain.pem").hasSuffix(try ws.dir.read("root-cert.pem")))

        // The ledger knows the serial OpenSSL reads from the certificate.
        let serial = try await ws.openssl("x509", "-in", "cert-chain.pem", "-noout", "-serial").stdout
            .replacingOccurrences(of: "serial=", with: "").trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        let rows = try ws.json(try await ws.meshca("audit", "list", "--json"))
        #expect(rows.map { $0["serial"] as? String } == [serial])
        #expect(rows.first?["spiffe_id"] as? String == "spiffe://cluster.local/ns/default/sa/was")
        #expect(rows.first?["auth_method"] as? String == "local")
    }

    @Test("Python cryptography's strict DER parser accepts the chain and sees one critical URI SAN")
    func pythonCrossCheck() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        expectSuccess(try await ws.meshca("issue", "--sa", "api", "--ns", "payments", "--key-type", "rsa-2048", "--out", "creds"))
        let script = """
            import sys
            from cryptography import x509
            from cryptography.x509.oid import ExtensionOID
            from cryptography.hazmat.primitives.asymmetric import padding, rsa
            from cryptography.hazmat.primitives import serialization
            chain = x509.load_pem_x509_certificates(open("creds/cert-chain.pem", "rb").read())
            root = x509.load_pem_x509_certificate(open("creds/root-cert.pem", "rb").read())
            key = serialization.load_pem_private_key(open("creds/key.pem", "rb").read(), None)
            leaf = chain[0]
            leaf.verify_directly_issued_by(root)
            san = leaf.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
            uris = san.value.get_values_for_type(x509.UniformResourceIdentifier)
            ku = leaf.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE)
            assert san.critical and uris == ["spiffe://cluster.local/ns/payments/sa/api"], uris
            assert ku.critical and ku.value.digital_signature and ku.value.key_encipherment
            assert len(leaf.subject.rdns) == 0
            assert 0 < leaf.serial_number < 2**128
            assert key.public_key().public_numbers() == leaf.public_key().public_numbers()
            assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
            print("ok")
            """
        let result = try await Command.run("python3", ["-c", script], directory: ws.dir.path)
        #expect(result.status == 0 && result.stdout == "ok\n", "\(result.stdout)\(result.stderr)")
    }

    @Test("Several `meshca issue` processes at once all succeed against one CA and one ledger")
    func concurrentProcesses() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        let count = 4
        let results = try await withThrowingTaskGroup(of: Command.Result.self) { group in
            for index in 0..<count {
                group.addTask { try await ws.meshca("issue", "--sa", "worker-\(index)", "--out", "out-\(index)") }
            }
            return try await group.reduce(into: [Command.Result]()) { $0.append($1) }
        }
        for result in results { expectSuccess(result) }
        #expect(results.filter { $0.stderr.contains("created one") }.count == 1)
        let rows = try ws.json(try await ws.meshca("audit", "list", "--json"))
        #expect(rows.count == count)
        for index in 0..<count {
            let verify = try await ws.openssl("verify", "-CAfile", "state/root-cert.pem", "out-\(index)/cert-chain.pem")
            #expect(verify.status == 0, "\(verify.stderr)")
        }
    }

    @Test("An RSA CA and P-384 workload keys: signature algorithms follow the keys")
    func keyTypes() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        expectSuccess(try await ws.meshca("init", "--key-type", "rsa-3072", "--trust-domain", "example.org"))
        expectSuccess(try await ws.meshca("issue", "--sa", "was", "--key-type", "ec-p384"))
        let text = try await ws.openssl("x509", "-in", "cert-chain.pem", "-noout", "-text").stdout
        #expect(text.contains("Signature Algorithm: sha256WithRSAEncryption"))
        #expect(text.contains("NIST CURVE: P-384"))
        #expect(text.contains("URI:spiffe://example.org/ns/default/sa/was"))
        #expect(try await ws.openssl("verify", "-CAfile", "root-cert.pem", "cert-chain.pem").status == 0)
    }
}
