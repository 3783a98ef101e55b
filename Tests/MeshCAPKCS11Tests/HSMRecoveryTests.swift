import CPKCS11
import Foundation
import MeshCACore
import MeshCAPKCS11
import MeshCATestSupport
import Testing
import X509

extension InProcessSoftHSM {
    @Suite("The session pool recovers from a reset token and a finalized module", .enabled(if: SoftHSM.isAvailable, .init(rawValue: SoftHSM.unavailableReason)))
    struct HSMRecoveryTests {
        /// A private copy of the SoftHSM module: `dlopen` of another file is another instance of the library, so
        /// finalizing it or closing its sessions disturbs no other test in this process.
        private static func privateModule(in dir: TemporaryDirectory) throws -> (path: String, functions: CK_FUNCTION_LIST_PTR) {
            let path = dir.file("libsofthsm2-copy.so")
            // The module is a symbolic link to the versioned library; copy the library itself.
            try FileManager.default.copyItem(atPath: URL(fileURLWithPath: SoftHSM.modulePath).resolvingSymlinksInPath().path, toPath: path)
            var handle: UnsafeMutableRawPointer?
            var functions: CK_FUNCTION_LIST_PTR?
            var error = [CChar](repeating: 0, count: 256)
            guard meshca_pkcs11_load(path, &handle, &functions, &error, UInt(error.count)) == 0, let functions else {
                let reason = String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                throw BackgroundProcessError("cannot load \(path): \(reason)")
            }
            return (path, functions)
        }

        private static func signs(_ key: Certificate.PrivateKey) throws -> Bool {
            let root = try SelfSignedRoot.make(trustDomain: try TrustDomain("cluster.local"), key: key, ttl: .seconds(2 * 86_400), now: Date())
            return root.publicKey.isValidSignature(root.signature, for: root)
        }

        @Test("After every session was closed behind its back (a token reset) and after C_Finalize, the next signature succeeds")
        func recovers() throws {
            let hsm = try sharedHSM()
            let dir = try TemporaryDirectory("hsm-recovery")
            defer { dir.remove() }
            let module = try Self.privateModule(in: dir)
            let uri = try PKCS11URI(
                parsing: "pkcs11:token=\(hsm.label);object=\(uniqueLabel("recover"))?module-path=\(module.path)&pin-source=file:\(hsm.pinFile)")
            let key = Certificate.PrivateKey(try PKCS11Keys.generate(uri, keyType: .ecP256))
            #expect(try Self.signs(key))

            // A token reset: every session of the slot is gone (and the user logged out).
            var count = CK_ULONG(0)
            #expect(module.functions.pointee.C_GetSlotList!(CK_BBOOL(CK_TRUE), nil, &count) == CKR_OK)
            var slots = [CK_SLOT_ID](repeating: 0, count: Int(count))
            #expect(module.functions.pointee.C_GetSlotList!(CK_BBOOL(CK_TRUE), &slots, &count) == CKR_OK)
            for slot in slots { _ = module.functions.pointee.C_CloseAllSessions!(slot) }
            #expect(try Self.signs(key), "a stale session is replaced and the user logs in again")

            // The module finalized under it: it is initialized again.
            #expect(module.functions.pointee.C_Finalize!(nil) == CKR_OK)
            #expect(try Self.signs(key), "CKR_CRYPTOKI_NOT_INITIALIZED reloads the module")
            #expect(try Self.signs(key))
        }
    }
}
