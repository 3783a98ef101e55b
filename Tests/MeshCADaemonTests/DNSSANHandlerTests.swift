import Foundation
import GRPCCore
import MeshCACore
import MeshCADaemon
import MeshCALedger
import MeshCATestSupport
import MeshCATransport
import SwiftASN1
import Testing
import X509

@Suite("allow-dns-sans: listed identities get the DNS names their patterns allow, everyone else none")
struct DNSSANHandlerTests {
    @Test("The listed identity gets its DNS names (recorded in the ledger's SANs); another name, or another identity, is refused")
    func policy() async throws {
        let policy = try DNSSANPolicy(parsing: ["default/was=istiod.istio-system.svc", "default/was=*.example.internal", "shop/cart=cart.shop.svc"])
        #expect(policy.items == ["default/was=istiod.istio-system.svc", "default/was=*.example.internal", "shop/cart=cart.shop.svc"])
        let fixture = try await HandlerFixture("dns-sans", durable: true, dnsSANs: policy)
        defer { fixture.dir.remove() }
        let make = { (names: [String]) in try WorkloadCSR.pem(WorkloadCSR.make(for: fixture.identity, dnsNames: names, key: KeyType.ecP256.generate())) }

        let chain = try await fixture.handler.createCertificate(fixture.call(csr: try make(["istiod.istio-system.svc", "a.example.internal"])))
        let leaf = try Certificate(pemEncoded: chain[0])
        #expect(leaf.dnsSANs == ["istiod.istio-system.svc", "a.example.internal"])
        let record = try #require(try await fixture.ledger.issuances(matching: IssuanceQuery()).first)
        #expect(record.sans == ["URI:spiffe://cluster.local/ns/default/sa/was", "DNS:istiod.istio-system.svc", "DNS:a.example.internal"])

        let refused = await fixture.failure(fixture.call(csr: try make(["db.internal"])))
        #expect(refused?.code == .invalidArgument)
        #expect(refused?.message.contains("may have only DNS names matching istiod.istio-system.svc, *.example.internal") == true, "\(refused?.message ?? "")")
        let rejection = try #require(try await fixture.ledger.rejections(since: nil, limit: nil).last)
        #expect(rejection.reasonCode == "forbidden-san")

        // Without a pattern for it, an identity gets the usual refusal of any DNS SAN.
        let plain = try await HandlerFixture("dns-sans", dnsSANs: try DNSSANPolicy(parsing: ["shop/cart=cart.shop.svc"]))
        defer { plain.dir.remove() }
        let none = await plain.failure(plain.call(csr: try make(["cart.shop.svc"])))
        #expect(none?.code == .invalidArgument)
        #expect(none?.message.contains("Remove DNS, IP and e-mail SANs from the CSR (a DNS name needs the CA's allow-dns-sans policy") == true)
    }

    @Test("Bad allow-dns-sans items are named with the rule", arguments: [
        ("web.example.internal", "is not NAMESPACE/SERVICE-ACCOUNT=PATTERN"),
        ("default=web.example.internal", "it is not NAMESPACE/SERVICE-ACCOUNT"),
        ("Default/web=web.example.internal", "Namespace \"Default\" is not valid"),
        ("default/web=*.internal", "a wildcard needs at least two labels"),
        ("default/web=10.0.0.1", "it looks like an IP address"),
        ("default/web=", "it is empty"),
    ])
    func badItems(item: String, why: String) {
        #expect(throws: DNSSANPolicy.PolicyProblem.self) { try DNSSANPolicy(parsing: [item]) }
        do {
            _ = try DNSSANPolicy(parsing: [item])
        } catch {
            #expect(error.why.contains(why), "\(error.why)")
        }
    }
}
