import Foundation
import MeshCACore
import MeshCATestSupport
import SwiftASN1
import Testing
import X509

@Suite("DNS SANs by policy: patterns, and the CSR check and certificate that follow them")
struct DNSSANPolicyTests {
    @Test("A pattern is an exact name or *. and a name of two labels or more; *. matches exactly one more label, any case")
    func patterns() throws {
        let exact = try DNSNamePattern("istiod.istio-system.svc")
        #expect(exact.matches("istiod.istio-system.svc") && exact.matches("Istiod.Istio-System.SVC"))
        #expect(!exact.matches("x.istiod.istio-system.svc") && !exact.matches("istiod.istio-system"))
        let wildcard = try DNSNamePattern("*.Example.internal")
        #expect(wildcard.text == "*.example.internal")
        #expect(wildcard.matches("a.example.internal") && wildcard.matches("web-1.example.internal"))
        #expect(!wildcard.matches("example.internal") && !wildcard.matches("a.b.example.internal"))
        #expect(!wildcard.matches("*.example.internal") && !wildcard.matches("a.example.internal.evil"))
        #expect(!wildcard.matches(".example.internal") && !wildcard.matches("aexample.internal"))
        for bad in ["", "*", "*.internal", "a..b", "-a.b", "a_b.c", "10.0.0.1", "a.*.b", "**.a.b", "a b.c"] {
            #expect(throws: IssuanceError.self, "\(bad)") { try DNSNamePattern(bad) }
        }
        let error = try #require(issuanceError { _ = try DNSNamePattern("*.internal") })
        #expect(error.message.contains("\"*.internal\" is not a DNS name pattern: a wildcard needs at least two labels"), "\(error.message)")
    }

    @Test("An allowed DNS name goes into the certificate after the SPIFFE ID; the ledger's SAN text lists both")
    func issuedWithDNSNames() throws {
        let pki = try TestPKI()
        let identity = try pki.identity()
        let csr = try TestPKI.csr(extensions: try Certificate.Extensions {
            Critical(SubjectAlternativeNames([
                .uniformResourceIdentifier(identity.uri), .dnsName("Web.Example.internal"), .dnsName("istiod.istio-system.svc"),
                .dnsName("web.example.internal"),
            ]))
        })
        let allowed = [try DNSNamePattern("*.example.internal"), try DNSNamePattern("istiod.istio-system.svc")]
        let issuance = try pki.authority.issue(IssuanceRequest(csrPEM: csr, identity: identity, allowedDNSNames: allowed), at: Date())
        #expect(issuance.certificate.sanStrings == ["URI:\(identity.uri)", "DNS:web.example.internal", "DNS:istiod.istio-system.svc"])
        #expect(issuance.certificate.dnsSANs == ["web.example.internal", "istiod.istio-system.svc"])
        #expect(issuance.certificate.uriSANs == [identity.uri])

        // WorkloadCSR.make asks for them the same way the agent does.
        let made = try WorkloadCSR.pem(WorkloadCSR.make(for: identity, dnsNames: ["a.example.internal"], key: KeyType.ecP256.generate()))
        let again = try pki.authority.issue(IssuanceRequest(csrPEM: made, identity: identity, allowedDNSNames: allowed), at: Date())
        #expect(again.certificate.dnsSANs == ["a.example.internal"])
    }

    @Test("A DNS name no pattern matches is refused as forbidden-san naming the name, the identity and its patterns; IPs stay refused")
    func refusals() throws {
        let pki = try TestPKI()
        let identity = try pki.identity()
        let allowed = [try DNSNamePattern("*.example.internal")]
        func refusal(_ names: [GeneralName], allowed: [DNSNamePattern]) throws -> IssuanceError? {
            let csr = try TestPKI.csr(extensions: try Certificate.Extensions { Critical(SubjectAlternativeNames(names)) })
            return issuanceError { _ = try pki.authority.issue(IssuanceRequest(csrPEM: csr, identity: identity, allowedDNSNames: allowed), at: Date()) }
        }
        let other = try refusal([.uniformResourceIdentifier(identity.uri), .dnsName("db.internal")], allowed: allowed)
        #expect(other?.code == .forbiddenSAN)
        #expect(other?.message == "The CSR asks for DNS:db.internal, but \(identity.uri) may have only DNS names matching *.example.internal (the CA's allow-dns-sans). Remove that name from the CSR, or ask the CA's operator to allow it.")
        let none = try refusal([.uniformResourceIdentifier(identity.uri), .dnsName("a.example.internal")], allowed: [])
        #expect(none?.code == .forbiddenSAN)
        #expect(none?.message.hasSuffix("Remove DNS, IP and e-mail SANs from the CSR (a DNS name needs the CA's allow-dns-sans policy for this identity).") == true, "\(none?.message ?? "")")
        let ip = try refusal([.uniformResourceIdentifier(identity.uri), .ipAddress(ASN1OctetString(contentBytes: [10, 0, 0, 1]))], allowed: allowed)
        #expect(ip?.code == .forbiddenSAN)
        #expect(ip?.message.hasSuffix("Remove DNS, IP and e-mail SANs from the CSR.") == true)
        let wildcardAsked = try refusal([.uniformResourceIdentifier(identity.uri), .dnsName("*.example.internal")], allowed: allowed)
        #expect(wildcardAsked?.code == .forbiddenSAN)
    }
}
