import Foundation
import GRPCCore
import MeshCACore
import MeshCATestSupport
import MeshCATransport
import Testing
import X509

@Suite("meshca serve with join tokens")
struct TokenAuthenticationTests {
    @Test("A join token gets a certificate whose chain OpenSSL verifies, recorded with peer and auth method")
    func tokenIssuance() async throws {
        let daemon = try await TestDaemon.start()
        defer { daemon.stop() }
        let token = try await daemon.token()
        let (key, csr) = try workloadCSR()
        let chain = try await daemon.client().createCertificate(csrPEM: csr, ttl: .seconds(3600), headers: bearer(token))
        #expect(chain.count == 2)
        #expect(chain.allSatisfy { $0.hasSuffix("\n") })
        let bundle = try CredentialBundle(istioChain: chain)
        #expect(bundle.leaf.publicKey == key.publicKey)
        #expect(bundle.leaf.uriSANs == ["spiffe://cluster.local/ns/default/sa/was"])
        #expect(bundle.roots == (try daemon.roots()))
        let lifetime = bundle.leaf.notValidAfter.timeIntervalSince(bundle.leaf.notValidBefore)
        #expect(lifetime == 3600 + 120)

        try daemon.directory.write("chain.pem", chain.joined())
        try daemon.directory.write("roots.pem", chain.last!)
        let verify = try await Command.run("openssl", ["verify", "-CAfile", "roots.pem", "chain.pem"], directory: daemon.directory.path)
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")

        let row = try await #require(try daemon.ledger().first { ($0["spiffe_id"] as? String) == "spiffe://cluster.local/ns/default/sa/was" })
        #expect(row["serial"] as? String == bundle.leaf.serialHex)
        #expect(row["auth_method"] as? String == "token")
        #expect((row["requester"] as? String)?.hasPrefix("token:") == true)
    }

    @Test("A single-use token used by eight requests at once yields exactly one certificate")
    func singleUseUnderConcurrency() async throws {
        let daemon = try await TestDaemon.start()
        defer { daemon.stop() }
        let token = try await daemon.token(uses: 1)
        let client = try daemon.client()
        let outcomes = try await withThrowingTaskGroup(of: RPCError.Code?.self) { group in
            for _ in 0..<8 {
                let csr = try workloadCSR().pem
                group.addTask { await RPCResult.code { _ = try await client.createCertificate(csrPEM: csr, ttl: nil, headers: bearer(token)) } }
            }
            return try await group.reduce(into: [RPCError.Code?]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 == nil }.count == 1, "\(outcomes)")
        #expect(outcomes.filter { $0 == .unauthenticated }.count == 7, "\(outcomes)")
        await #expect(try daemon.ledger().filter { ($0["auth_method"] as? String) == "token" }.count == 1)
    }

    @Test("Missing, unknown and revoked credentials are UNAUTHENTICATED and recorded with the peer")
    func unauthenticated() async throws {
        let daemon = try await TestDaemon.start()
        defer { daemon.stop() }
        let client = try daemon.client()
        let csr = try workloadCSR().pem
        let none = await RPCResult.failure { _ = try await client.createCertificate(csrPEM: csr, ttl: nil) }
        #expect(none?.code == .unauthenticated)
        #expect(none?.message.contains("no credential") == true)

        let real = try await JoinToken(parsing: daemon.token())
        let forged = "mct1.\(real.id).\(String(repeating: "A", count: 43)).\(real.rootFingerprint)"
        let unknown = await RPCResult.failure { _ = try await client.createCertificate(csrPEM: csr, ttl: nil, headers: bearer(forged)) }
        #expect(unknown?.code == .unauthenticated)
        #expect(unknown?.message.contains("not known to this CA") == true)

        let revoked = try await daemon.token()
        #expect(try await daemon.meshca("token", "revoke", JoinToken(parsing: revoked).id).status == 0)
        let afterRevoke = await RPCResult.failure { _ = try await client.createCertificate(csrPEM: csr, ttl: nil, headers: bearer(revoked)) }
        #expect(afterRevoke?.code == .unauthenticated)
        #expect(afterRevoke?.message.contains("revoked") == true)

        let rejections = try await daemon.rejections()
        #expect(rejections.count == 3)
        #expect(rejections.allSatisfy { ($0["peer"] as? String)?.hasPrefix("ipv4:127.0.0.1:") == true })
    }

    @Test("Each bad request gets its exact status: identity mismatch, TTL, malformed CSR, bad signature, weak key")
    func refusals() async throws {
        let daemon = try await TestDaemon.start()
        defer { daemon.stop() }
        let token = try await daemon.token(uses: 10)
        let client = try daemon.client()

        let other = try workloadCSR(sa: "admin", ns: "kube-system").pem
        let mismatch = await RPCResult.failure { _ = try await client.createCertificate(csrPEM: other, ttl: nil, headers: bearer(token)) }
        #expect(mismatch?.code == .permissionDenied)
        #expect(mismatch?.message.contains("spiffe://cluster.local/ns/kube-system/sa/admin") == true)
        #expect(mismatch?.message.contains("spiffe://cluster.local/ns/default/sa/was") == true)

        let csr = try workloadCSR().pem
        let long = await RPCResult.failure { _ = try await client.createCertificate(csrPEM: csr, ttl: .seconds(91 * 86_400), headers: bearer(token)) }
        #expect(long?.code == .invalidArgument)
        #expect(long?.message.contains("90d") == true)

        let garbage = await RPCResult.failure { _ = try await client.createCertificate(csrPEM: "not a csr", ttl: nil, headers: bearer(token)) }
        #expect(garbage?.code == .invalidArgument)

        var der = Array(try PEMText.der(csr))
        der[der.count - 1] ^= 1
        let tampered = PEMText.encode(der, label: "CERTIFICATE REQUEST")
        let badSignature = await RPCResult.failure { _ = try await client.createCertificate(csrPEM: tampered, ttl: nil, headers: bearer(token)) }
        #expect(badSignature?.code == .invalidArgument)
        #expect(badSignature?.message.contains("signature") == true)

        let reasons = await Set(try daemon.rejections().compactMap { $0["reason_code"] as? String })
        #expect(reasons.isSuperset(of: ["identity-mismatch", "ttl-too-long", "malformed-csr", "bad-csr-signature"]))
        await #expect(try daemon.ledger().filter { ($0["auth_method"] as? String) == "token" }.isEmpty)
    }

    @Test("The per-identity rate limit answers RESOURCE_EXHAUSTED")
    func rateLimit() async throws {
        let daemon = try await TestDaemon.start(["--rate-limit", "2/m"])
        defer { daemon.stop() }
        let token = try await daemon.token(uses: 5)
        let client = try daemon.client()
        var codes: [RPCError.Code?] = []
        for _ in 0..<3 {
            let csr = try workloadCSR().pem
            codes.append(await RPCResult.code { _ = try await client.createCertificate(csrPEM: csr, ttl: nil, headers: bearer(token)) })
        }
        #expect(codes == [nil, nil, .resourceExhausted])
    }

    @Test("An address that keeps failing to authenticate is turned away unread, and the ledger stops growing")
    func failedAuthenticationLimit() async throws {
        // 5 an hour: the budget refills one failure per 12 minutes, so the test does not depend on its own speed.
        let daemon = try await TestDaemon.start(["--auth-failure-limit", "5/h"])
        defer { daemon.stop() }
        let valid = try await daemon.token()
        let real = try JoinToken(parsing: valid)
        let guessed = "mct1.\(real.id).\(String(repeating: "B", count: 43)).\(real.rootFingerprint)"
        let csr = try workloadCSR().pem
        let codes = try await daemon.client().withConnection { connection in
            var codes: [RPCError.Code?] = []
            for _ in 0..<8 {
                codes.append(await RPCResult.code { _ = try await connection.createCertificate(csrPEM: csr, ttl: nil, headers: bearer(guessed)) })
            }
            return codes
        }
        #expect(codes == Array(repeating: .unauthenticated, count: 5) + Array(repeating: .resourceExhausted, count: 3))
        await #expect(try daemon.rejections().count == 5)
        // The limit is per address, not per connection, and it covers valid credentials from there too (a NAT).
        let fresh = await RPCResult.failure { _ = try await daemon.client().createCertificate(csrPEM: csr, ttl: nil, headers: bearer(valid)) }
        #expect(fresh?.code == .resourceExhausted)
        #expect(fresh?.message.contains("Too many failed authentications from ipv4:127.0.0.1 (more than the auth-failure-limit of 5/h)") == true)
    }

    @Test("A restart keeps tokens and the ledger")
    func restart() async throws {
        let first = try await TestDaemon.start()
        let token = try await first.token(uses: 2)
        _ = try await first.client().createCertificate(csrPEM: workloadCSR().pem, ttl: nil, headers: bearer(token))
        try await first.shutdown(keepDirectory: true)

        let second = try await TestDaemon.start(directory: first.directory)
        defer { second.stop() }
        _ = try await second.client().createCertificate(csrPEM: workloadCSR().pem, ttl: nil, headers: bearer(token))
        let third = await RPCResult.code { _ = try await second.client().createCertificate(csrPEM: try workloadCSR().pem, ttl: nil, headers: bearer(token)) }
        #expect(third == .unauthenticated)
        await #expect(try second.ledger().filter { ($0["auth_method"] as? String) == "token" }.count == 2)
    }
}

/// PEM helpers for tampering with requests in tests.
enum PEMText {
    static func der(_ pem: String) throws -> Data {
        let body = pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        guard let data = Data(base64Encoded: body) else { throw BackgroundProcessError("bad PEM") }
        return data
    }

    static func encode(_ der: [UInt8], label: String) -> String {
        let base64 = Data(der).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
        return "-----BEGIN \(label)-----\n\(base64)\n-----END \(label)-----\n"
    }
}
