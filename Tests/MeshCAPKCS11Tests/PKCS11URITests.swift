import MeshCAPKCS11
import Testing

@Suite("PKCS#11 URIs (RFC 7512) naming the CA key")
struct PKCS11URITests {
    @Test("A URI with token, object, id, module-path and pin-source reads back, and prints without a PIN")
    func parsesAndPrints() throws {
        let uri = try PKCS11URI(parsing: "pkcs11:token=mesh%20ca;object=ca;id=%01%ab?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/meshca/pin")
        #expect(uri.token == "mesh ca")
        #expect(uri.object == "ca")
        #expect(uri.id == [0x01, 0xAB])
        #expect(uri.modulePath == "/usr/lib/softhsm/libsofthsm2.so")
        #expect(uri.pinSource == .file("/etc/meshca/pin"))
        #expect(try PKCS11URI(parsing: uri.description) == uri)
        let environment = try PKCS11URI(parsing: "pkcs11:token=t;object=k?module-path=/m.so&pin-source=env:HSM_PIN")
        #expect(environment.pinSource == .environment("HSM_PIN"))
        #expect(try environment.readPIN(environment: ["HSM_PIN": "1234"]) == Array("1234".utf8))
    }

    @Test("A PIN in the URI, a missing module-path or pin-source, no key, and unknown attributes are refused with the fix")
    func refusals() {
        func refusal(_ text: String) -> String {
            do {
                _ = try PKCS11URI(parsing: text)
                return ""
            } catch {
                return error.message
            }
        }
        #expect(refusal("pkcs11:token=t;object=k?module-path=/m.so&pin-value=1234").contains("pin-source=file:/PATH"))
        #expect(refusal("pkcs11:token=t;object=k?pin-source=file:/p").contains("module-path="))
        #expect(refusal("pkcs11:token=t;object=k?module-path=/m.so").contains("pin-source="))
        #expect(refusal("pkcs11:token=t?module-path=/m.so&pin-source=file:/p").contains("object=LABEL"))
        #expect(refusal("pkcs11:tokn=t;object=k?module-path=/m.so&pin-source=file:/p").contains("tokn="))
        #expect(refusal("pkcs11:token=t;object=k?module-path=/m.so&pin-source=file:relative").contains("absolute path"))
        #expect(refusal("/etc/meshca/ca-key.pem").contains("must start with `pkcs11:`"))
        #expect(refusal("pkcs11:token=t;object=k;type=cert?module-path=/m.so&pin-source=file:/p").contains("type=private"))
    }
}
