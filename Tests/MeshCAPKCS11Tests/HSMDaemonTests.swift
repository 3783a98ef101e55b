import Foundation
import GRPCCore
import MeshCACore
import MeshCAPKCS11
import MeshCATestSupport
import MeshCATransport
import SwiftASN1
import Testing
import X509

@Suite("meshca serve signing with its CA key in SoftHSM", .enabled(if: SoftHSM.isAvailable, .init(rawValue: SoftHSM.unavailableReason)))
struct HSMDaemonTests {
    @Test("The token vanishing mid-run gives UNAVAILABLE (nothing issued, the refusal recorded), and signing recovers when it is back")
    func tokenRemovedAndRestored() async throws {
        let hsm = try SoftHSM.make()
        defer { hsm.directory.remove() }
        let dir = try TemporaryDirectory("hsm-serve")
        defer { dir.remove() }
        let state = dir.file("state")
        let env = hsm.environment
        let initialized = try await Command.meshca(["init", "--key", hsm.uri(object: "ca"), "--state-dir", state], environment: env)
        try #require(initialized.status == 0, "\(initialized.stderr)")
        let tokens = try await Command.meshca(["token", "create", "--sa", "was", "--uses", "10", "--state-dir", state], environment: env)
        let token = tokens.stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        await ProcessSlots.daemons.acquire()
        defer { ProcessSlots.daemons.release() }
        let serve = try BackgroundProcess(
            Command.meshcaBinary, ["serve", "--listen", "127.0.0.1:0", "--monitoring", "127.0.0.1:0", "--state-dir", state], environment: env)
        defer { serve.terminate() }
        let line = try await serve.waitForLine(containing: "listening on")
        let words = line.split(separator: " ")
        let address = String(words[try #require(words.firstIndex(of: "on")) + 1])
        let roots = try Certificate.parseAll(pem: String(contentsOfFile: state + "/root-cert.pem", encoding: .utf8))
        let client = try CAClient(address: address, trust: .roots(roots))
        func request() async throws -> [String] {
            try await client.createCertificate(
                csrPEM: try TestPKI.csr(for: try TestPKI.identity()), ttl: nil, headers: ["authorization": "Bearer \(token)"])
        }
        #expect(try await request().count >= 2)

        // The token's directory goes away (a token pulled out, a storage failure): the module cannot find it.
        let aside = hsm.directory.file("tokens-aside")
        try FileManager.default.moveItem(atPath: hsm.tokenDirectory, toPath: aside)
        let failure = await RPCResult.failure { _ = try await request() }
        #expect(failure?.code == .unavailable, "\(String(describing: failure))\n\(serve.errorOutput)")
        #expect(failure?.message.contains("hardware security module") == true)
        let monitoring = try #require(words.last).replacingOccurrences(of: "http://", with: "")
        let metrics = try await Command.run("curl", ["-sf", "http://\(monitoring)/metrics"])
        #expect(metrics.stdout.contains(#"citadel_server_csr_sign_err_count{error="signer-unavailable"} 1"#), "\(metrics.stdout.suffix(2000))")
        let rejections = try await Command.meshca(["audit", "rejections", "--state-dir", state], environment: env)
        #expect(rejections.stdout.contains("signer-unavailable"), "the refusal is recorded: \(rejections.stdout)\(rejections.stderr)")
        let issued = try await Command.meshca(["audit", "list", "--state-dir", state], environment: env)
        #expect(issued.stdout.components(separatedBy: "spiffe://cluster.local/ns/default/sa/was").count - 1 == 1, "nothing more was issued: \(issued.stdout)")

        // Back in place: the next request reopens the sessions, logs in again and is signed.
        try FileManager.default.moveItem(atPath: aside, toPath: hsm.tokenDirectory)
        let chain = try await Wait.value("a request is signed again once the token is back", timeout: .seconds(60)) {
            try? await request()
        }
        let leaf = try Certificate(pemEncoded: try #require(chain.first))
        #expect(roots[0].publicKey.isValidSignature(leaf.signature, for: leaf))
    }
}

extension InProcessSoftHSM {
    @Suite("meshca serve in this process signing with its CA key in SoftHSM")
    struct HSMInProcessDaemonTests {
        @Test("An in-process daemon whose key is in the token answers 64 concurrent requests, every chain verifying")
        func concurrentLoad() async throws {
            let hsm = try sharedHSM()
            // The key is made by this process first, then `meshca init --key` finds it by its label: SoftHSM's file store
            // can miss an object another process adds while this one adds its own (other tests here generate keys).
            let label = uniqueLabel("daemon")
            let key = try PKCS11Keys.generate(try PKCS11URI(parsing: hsm.uri(object: label)), keyType: .ecP256)
            let (daemon, token) = try await InProcessDaemon.start(
                tokenUses: 64, initArguments: ["--key", hsm.uri(object: label)], environment: hsm.environment)
            defer { Task { await daemon.stop() } }
            #expect(FileManager.default.fileExists(atPath: daemon.stateDir + "/ca-key.pkcs11"))
            let roots = try daemon.roots()
            #expect(roots.first?.publicKey == key.publicKey, "init used the key already in the token")
            var client = try daemon.client()
            // The 64 calls queue behind each other: each deadline is a hang guard for the batch, not one call's 15 s.
            client.timeout = .seconds(120)
            let chains = try await client.withConnection { connection in
                try await withThrowingTaskGroup(of: [String].self) { group in
                    for _ in 0..<64 {
                        group.addTask {
                            try await connection.createCertificate(
                                csrPEM: try TestPKI.csr(for: try TestPKI.identity()), ttl: nil, headers: ["authorization": "Bearer \(token)"])
                        }
                    }
                    return try await group.reduce(into: [[String]]()) { $0.append($1) }
                }
            }
            #expect(chains.count == 64)
            for chain in chains {
                let leaf = try Certificate(pemEncoded: try #require(chain.first))
                #expect(roots.contains { $0.publicKey.isValidSignature(leaf.signature, for: leaf) })
            }
        }
    }
}
