import CPKCS11
import Foundation
import MeshCACore
import MeshCAPKCS11
import MeshCATestSupport
import Testing
import X509

/// The process-wide SoftHSM token (``SoftHSM/shared``), or a failure saying why it could not be made.
func sharedHSM() throws -> SoftHSM { try SoftHSM.shared.get() }

/// A label no other test uses.
func uniqueLabel(_ prefix: String) -> String { prefix + "-" + UUID().uuidString.prefix(8).lowercased() }

extension InProcessSoftHSM {
    @Suite("CA keys generated in a SoftHSM token", .enabled(if: SoftHSM.isAvailable, .init(rawValue: SoftHSM.unavailableReason)))
    struct HSMKeyTests {
        @Test("Keys generated in the token sign a root that verifies, for P-256, P-384 and RSA", arguments: [KeyType.ecP256, .ecP384, .rsa2048])
        func generatedKeysSign(_ keyType: KeyType) throws {
            let hsm = try sharedHSM()
            let uri = try PKCS11URI(parsing: hsm.uri(object: uniqueLabel("sign")))
            let key = try PKCS11Keys.generate(uri, keyType: keyType)
            #expect(key.keyType == keyType)
            #expect(key.uri.id?.count == 16, "a fresh CKA_ID is given and recorded in the URI")
            let root = try SelfSignedRoot.make(
                trustDomain: try TrustDomain("cluster.local"), key: Certificate.PrivateKey(key), ttl: .seconds(2 * 86_400), now: Date())
            #expect(root.publicKey == key.publicKey)
            #expect(root.publicKey.isValidSignature(root.signature, for: root), "the token's signature verifies with the key's public half")
        }

        @Test("The private key cannot be read out: sensitive, not extractable, and reading CKA_VALUE is refused")
        func notExtractable() throws {
            let hsm = try sharedHSM()
            for keyType in [KeyType.ecP256, .rsa2048] {
                let key = try PKCS11Keys.generate(try PKCS11URI(parsing: hsm.uri(object: uniqueLabel("secret"))), keyType: keyType)
                let protection = try key.protection()
                #expect(protection.sensitive && protection.alwaysSensitive)
                #expect(!protection.extractable && protection.neverExtractable)
                #expect(!protection.privateValueReadable)
                #expect(protection.privateValueRefusal == "CKR_ATTRIBUTE_SENSITIVE")
                #expect(throws: (any Error).self, "no PEM can be made of it") { _ = try Certificate.PrivateKey(key).serializeAsPEM() }
            }
        }

        @Test("An existing key is found by its label or by its id, and a second generate under the same label is refused")
        func existingKeyByLabelOrID() throws {
            let hsm = try sharedHSM()
            let label = uniqueLabel("existing")
            let generated = try PKCS11Keys.generate(try PKCS11URI(parsing: hsm.uri(object: label)), keyType: .ecP256)
            let byLabel = try PKCS11Keys.open(try PKCS11URI(parsing: hsm.uri(object: label)))
            #expect(byLabel.publicKey == generated.publicKey)
            let id = try #require(generated.uri.id).map { String(format: "%%%02x", $0) }.joined()
            var byID = try PKCS11URI(parsing: hsm.uri(object: label, id: id))
            byID.object = nil
            #expect(try PKCS11Keys.open(byID).publicKey == generated.publicKey)
            #expect(try PKCS11Keys.openOrGenerate(try PKCS11URI(parsing: hsm.uri(object: label)), keyType: .ecP384).generated == false)
            #expect(throws: PKCS11Error.self) { _ = try PKCS11Keys.generate(try PKCS11URI(parsing: hsm.uri(object: label)), keyType: .ecP256) }
            let missing = #expect(throws: PKCS11Error.self) { _ = try PKCS11Keys.open(try PKCS11URI(parsing: hsm.uri(object: uniqueLabel("absent")))) }
            #expect(missing?.message.contains("holds no private key matching") == true)
        }

        @Test("A missing PIN, an unknown token and a missing module are refused naming the fix")
        func wrongPINAndToken() throws {
            let hsm = try sharedHSM()
            let label = uniqueLabel("pin")
            _ = try PKCS11Keys.generate(try PKCS11URI(parsing: hsm.uri(object: label)), keyType: .ecP256)
            let noPIN = #expect(throws: PKCS11Error.self) {
                _ = try PKCS11Keys.open(
                    try PKCS11URI(parsing: "pkcs11:token=\(hsm.label);object=\(label)?module-path=\(SoftHSM.modulePath)&pin-source=env:MESHCA_TEST_WRONG_PIN_\(label.suffix(8))"))
            }
            #expect(noPIN?.code == .pinUnavailable)
            #expect(noPIN?.message.contains("is not set") == true)
            let noToken = #expect(throws: PKCS11Error.self) {
                _ = try PKCS11Keys.open(
                    try PKCS11URI(parsing: "pkcs11:token=no-such-token;object=ca?module-path=\(SoftHSM.modulePath)&pin-source=file:\(hsm.pinFile)"))
            }
            #expect(noToken?.code == .tokenNotFound)
            #expect(noToken?.message.contains("meshca-shared") == true, "the message lists the tokens the module has")
            let noModule = #expect(throws: PKCS11Error.self) {
                _ = try PKCS11Keys.open(try PKCS11URI(parsing: "pkcs11:token=t;object=ca?module-path=/nonexistent/module.so&pin-source=file:\(hsm.pinFile)"))
            }
            #expect(noModule?.message.contains("Cannot load the PKCS#11 module /nonexistent/module.so") == true)
        }

        @Test("Signing from many tasks at once shares the session pool and every signature verifies")
        func concurrentSigning() async throws {
            let hsm = try sharedHSM()
            let key = Certificate.PrivateKey(try PKCS11Keys.generate(try PKCS11URI(parsing: hsm.uri(object: uniqueLabel("pool"))), keyType: .ecP256))
            let domain = try TrustDomain("cluster.local")
            let verified = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<32 {
                    group.addTask {
                        let root = try SelfSignedRoot.make(trustDomain: domain, key: key, ttl: .seconds(2 * 86_400), now: Date())
                        return root.publicKey.isValidSignature(root.signature, for: root)
                    }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(verified == 32)
        }
    }
}
