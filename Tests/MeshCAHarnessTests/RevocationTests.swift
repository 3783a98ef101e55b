import Foundation
import MeshCACore
import MeshCAHarness
import MeshCATestSupport
import Testing
import X509

/// CRLs from `CertificateRevocationList` cross-checked with OpenSSL and Python `cryptography`, and the
/// handshake's `--crl` check.
@Suite("Revocation lists with OpenSSL and Python, and handshakes against a CRL", .timeLimit(.minutes(2)))
struct RevocationTests {
    /// The leaf in `directory`'s cert-chain.pem.
    private func leaf(_ directory: String) throws -> Certificate {
        let text = try String(contentsOfFile: directory + "/cert-chain.pem", encoding: .utf8)
        return try #require(try Certificate.parseAll(pem: text).first)
    }

    /// Writes a CRL revoking `serials` for keyCompromise, signed by `mesh`'s CA, valid from `thisUpdate`.
    private func writeCRL(
        _ mesh: TestMesh, revoking serials: [Certificate.SerialNumber], name: String = "crl.pem",
        thisUpdate: Date = Date(), validity: TimeInterval = 86_400
    ) throws -> (path: String, crl: CertificateRevocationList) {
        let crl = try CertificateRevocationList.sign(
            entries: serials.map {
                .init(serialNumber: $0, revocationDate: thisUpdate.addingTimeInterval(-5), reason: .keyCompromise)
            },
            issuer: mesh.authority.signingIdentity, number: 3, thisUpdate: thisUpdate,
            nextUpdate: thisUpdate.addingTimeInterval(validity))
        try mesh.directory.write(name, crl.pem)
        return (mesh.directory.file(name), crl)
    }

    /// The python interpreter with `cryptography`: `$MESHCA_INTEROP_PYTHON`, else the venv scripts/test.sh makes.
    static var python: String {
        if let explicit = ProcessInfo.processInfo.environment["MESHCA_INTEROP_PYTHON"] { return explicit }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path + "/.build/interop-venv/bin/python"
    }

    @Test(
        "openssl crl verifies the CRL's signature against the CA and shows the serial and the reason",
        arguments: [KeyType.ecP256, .rsa2048])
    func opensslReadsCRL(keyType: KeyType) async throws {
        let mesh = try TestMesh()
        defer { mesh.remove() }
        let pki = try TestPKI(keyType: keyType, createdAt: Date(), rootTTL: .seconds(86_400 * 30))
        let (root, signer) = (pki.root, pki.signer)
        let serial = Certificate.SerialNumber(bytes: [0x8f, 0x1a, 0x2b, 0x3c, 0x4d])
        let crl = try CertificateRevocationList.sign(
            entries: [.init(serialNumber: serial, revocationDate: Date(), reason: .keyCompromise)], issuer: signer,
            number: 12, thisUpdate: Date(), nextUpdate: Date().addingTimeInterval(3600))
        try mesh.directory.write("ca.pem", root.pem)
        try Data(crl.derBytes).write(to: URL(fileURLWithPath: mesh.directory.file("crl.der")))
        let result = try await Command.run(
            "openssl", ["crl", "-inform", "DER", "-in", "crl.der", "-noout", "-text", "-CAfile", "ca.pem"],
            directory: mesh.directory.path)
        #expect(result.status == 0, "\(result.stderr)")
        let output = result.stdout + result.stderr
        #expect(output.contains("verify OK"), "\(output)")
        #expect(output.contains("Serial Number: 8F1A2B3C4D"), "\(output)")
        #expect(output.contains("Key Compromise"), "\(output)")
        #expect(output.contains("Version 2"), "\(output)")
        #expect(output.contains("X509v3 CRL Number"), "\(output)")
        #expect(output.contains("X509v3 Authority Key Identifier"), "\(output)")

        // Another CA's certificate must not verify it.
        let other = try TestMesh()
        defer { other.remove() }
        try mesh.directory.write("other.pem", other.root.pem)
        let foreign = try await Command.run(
            "openssl", ["crl", "-inform", "DER", "-in", "crl.der", "-noout", "-CAfile", "other.pem"],
            directory: mesh.directory.path)
        #expect(!(foreign.stdout + foreign.stderr).contains("verify OK"))
    }

    @Test("Python cryptography loads the DER CRL, validates its signature and finds the serial with its reason")
    func pythonReadsCRL() async throws {
        #expect(
            FileManager.default.isExecutableFile(atPath: Self.python), "no \(Self.python): set MESHCA_INTEROP_PYTHON")
        let mesh = try TestMesh()
        defer { mesh.remove() }
        let web = try leaf(try mesh.workload("web"))
        let (_, crl) = try writeCRL(mesh, revoking: [web.serialNumber])
        try Data(crl.derBytes).write(to: URL(fileURLWithPath: mesh.directory.file("crl.der")))
        try mesh.directory.write("ca.pem", mesh.root.pem)
        let script = """
            import sys
            from cryptography import x509
            crl = x509.load_der_x509_crl(open("crl.der", "rb").read())
            ca = x509.load_pem_x509_certificate(open("ca.pem", "rb").read())
            entry = crl.get_revoked_certificate_by_serial_number(int(sys.argv[1], 16))
            reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.name
            number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
            print(crl.is_signature_valid(ca.public_key()), reason, number, crl.issuer == ca.subject)
            """
        try mesh.directory.write("check.py", script)
        let result = try await Command.run(Self.python, ["check.py", web.serialHex], directory: mesh.directory.path)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "True key_compromise 3 True")
    }

    @Test("A server checking a CRL refuses a revoked client and explains when and why it was revoked")
    func revokedClient() throws {
        let mesh = try TestMesh()
        defer { mesh.remove() }
        let web = try mesh.workload("web")
        let api = try mesh.workload("api")
        let revoked = try leaf(api)
        let (path, _) = try writeCRL(mesh, revoking: [revoked.serialNumber])
        let report = LoopbackHandshake(
            server: .credentials(directory: web), client: .credentials(directory: api),
            revocations: try RevocationList.load(from: path, role: .server)
        ).run()
        let failure = try #require(report.failure, "\(report.renderText())")
        #expect(failure.code == .certificateRevoked)
        #expect(failure.detectedBy == .server)
        #expect(failure.cause.contains("serial \(revoked.serialHex)"))
        #expect(failure.cause.contains("keyCompromise"))
        #expect(failure.fix.contains("meshca audit show \(revoked.serialHex)"))
        #expect(failure.rawReason.contains("certificate revoked"))
    }

    @Test("With a current CRL that does not list them, both sides still complete the handshake")
    func notRevoked() throws {
        let mesh = try TestMesh()
        defer { mesh.remove() }
        let web = try mesh.workload("web")
        let api = try mesh.workload("api")
        let (path, _) = try writeCRL(mesh, revoking: [Certificate.SerialNumber(bytes: [0x01, 0x02])])
        let report = LoopbackHandshake(
            server: .credentials(directory: web), client: .credentials(directory: api),
            revocations: try RevocationList.load(from: path, role: .client)
        ).run()
        #expect(report.outcome == .succeeded, "\(report.renderText())")
    }

    @Test("An expired CRL, or one from another CA, is explained as unusable")
    func unusableCRL() throws {
        let mesh = try TestMesh()
        let other = try TestMesh()
        defer {
            mesh.remove()
            other.remove()
        }
        let web = try mesh.workload("web")
        let api = try mesh.workload("api")
        let (expired, _) = try writeCRL(
            mesh, revoking: [], name: "old.pem", thisUpdate: Date().addingTimeInterval(-7200), validity: 3600)
        let stale = LoopbackHandshake(
            server: .credentials(directory: web), client: .credentials(directory: api),
            revocations: try RevocationList.load(from: expired, role: .server)
        ).run()
        #expect(stale.failure?.code == .crlUnusable, "\(stale.renderText())")
        #expect(stale.failure?.cause.contains("has expired") == true, "\(stale.renderText())")

        let (foreign, _) = try writeCRL(other, revoking: [])
        let wrong = LoopbackHandshake(
            server: .credentials(directory: web), client: .credentials(directory: api),
            revocations: try RevocationList.load(from: foreign, role: .server)
        ).run()
        #expect(wrong.failure?.code == .crlUnusable, "\(wrong.renderText())")
        #expect(wrong.failure?.cause.contains("not from the CA") == true, "\(wrong.renderText())")
    }

    @Test("A missing or unparseable CRL file is refused before any handshake")
    func unreadableFile() throws {
        let mesh = try TestMesh()
        defer { mesh.remove() }
        #expect(throws: HandshakeFailure.self) {
            try RevocationList.load(from: mesh.directory.file("none.pem"), role: .client)
        }
        try mesh.directory.write("junk.pem", "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n")
        do {
            _ = try RevocationList.load(from: mesh.directory.file("junk.pem"), role: .client)
            Issue.record("expected a failure")
        } catch let failure as HandshakeFailure {
            #expect(failure.code == .crlUnusable)
            #expect(failure.fix.contains("meshca crl"))
        }
    }
}
