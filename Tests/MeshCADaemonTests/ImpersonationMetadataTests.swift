import Foundation
import GRPCCore
import MeshCACore
import MeshCADaemon
import MeshCALedger
import MeshCATestSupport
import MeshCATransport
import SwiftASN1
import SwiftProtobuf
import Testing
import X509

@Suite("ImpersonatedIdentity (ambient mode): honoured only for trusted node accounts, refused as istiod refuses it")
struct ImpersonationMetadataTests {
    static let values: [Google_Protobuf_Value] = [
        Google_Protobuf_Value(stringValue: "spiffe://cluster.local/ns/kube-system/sa/admin"),
        Google_Protobuf_Value(numberValue: 1),
        Google_Protobuf_Value(boolValue: true),
        Google_Protobuf_Value(nilLiteral: ()),
        Google_Protobuf_Value(
            structValue: Google_Protobuf_Struct(fields: ["uri": Google_Protobuf_Value(stringValue: "spiffe://cluster.local/ns/kube-system/sa/admin")])),
        Google_Protobuf_Value(listValue: Google_Protobuf_ListValue(values: [])),
        Google_Protobuf_Value(),  // no kind at all
    ]

    /// istiod's status and message for every impersonation it does not allow.
    static func expectIstiodRefusal(_ error: RPCError?, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(error?.code == .unauthenticated, sourceLocation: sourceLocation)
        #expect(error?.message == "request impersonation authentication failure", sourceLocation: sourceLocation)
    }

    @Test("Without trusted node accounts, a string, number, bool, null, struct, list or empty value gets istiod's refusal", arguments: values)
    func anyType(value: Google_Protobuf_Value) async throws {
        let fixture = try await HandlerFixture("impersonation")
        defer { fixture.dir.remove() }
        var request = Google_Protobuf_Struct()
        request.fields = ["CertSigner": Google_Protobuf_Value(stringValue: ""), "ImpersonatedIdentity": value]
        let call = fixture.call(csr: try csr(uris: ["spiffe://cluster.local/ns/default/sa/was"]), metadata: CertificateCall.metadata(request))
        Self.expectIstiodRefusal(await fixture.failure(call))
        let rejection = try #require(try await fixture.ledger.rejections(since: nil, limit: nil).first)
        #expect(rejection.reasonCode == "impersonation")
        #expect(rejection.message.contains("this CA trusts no node accounts"), "\(rejection.message)")
        #expect(rejection.message.contains("--trusted-node-accounts"))
    }

    @Test("A trusted node account gets a certificate for exactly the impersonated identity; the ledger names both")
    func trustedCaller() async throws {
        // The fixture's join token is for default/was: here that account plays the node proxy.
        let fixture = try await HandlerFixture("impersonation", durable: true, trustedNodeAccounts: ["istio-system/ztunnel", "default/was"])
        defer { fixture.dir.remove() }
        let target = "spiffe://cluster.local/ns/shop/sa/cart"
        let call = fixture.call(csr: try csr(uris: [target]), metadata: ["ImpersonatedIdentity": target])
        let chain = try await fixture.handler.createCertificate(call)
        #expect(try Certificate(pemEncoded: chain[0]).uriSANs == [target])
        let record = try #require(try await fixture.ledger.issuances(matching: IssuanceQuery()).first)
        #expect(record.spiffeID == target)
        #expect(record.namespace == "shop" && record.serviceAccount == "cart")
        #expect(record.requester == "node:spiffe://cluster.local/ns/default/sa/was (token:\(fixture.token.id))", "\(record.requester)")
        #expect(record.authMethod == "token")
    }

    @Test(
        "Refused with istiod's status and message: an untrusted caller, and values that are not exactly spiffe://cluster.local/ns/NS/sa/SA",
        arguments: [
            ("istio-system/ztunnel", "spiffe://cluster.local/ns/shop/sa/cart", "is not one of the trusted node accounts (istio-system/ztunnel)"),
            ("default/was", "spiffe://other.domain/ns/shop/sa/cart", "is not a workload SPIFFE ID of trust domain cluster.local"),
            ("default/was", "spiffe://cluster.local/ns/shop/sa/cart/extra", "is not a workload SPIFFE ID"),
            ("default/was", "spiffe://cluster.local/ns/shop", "is not a workload SPIFFE ID"),
            ("default/was", "spiffe://cluster.local/workload/cart", "is not a workload SPIFFE ID"),
            ("default/was", "SPIFFE://cluster.local/ns/shop/sa/cart", "is not a workload SPIFFE ID"),
            ("default/was", "spiffe://cluster.local/ns/Shop/sa/cart", "is not a workload SPIFFE ID"),
            ("default/was", "shop/cart", "is not a workload SPIFFE ID"),
            ("default/was", "{\"uri\":\"spiffe://cluster.local/ns/shop/sa/cart\"}", "is not a workload SPIFFE ID"),
        ])
    func refusals(trusted: String, impersonated: String, why: String) async throws {
        let fixture = try await HandlerFixture("impersonation", trustedNodeAccounts: [trusted])
        defer { fixture.dir.remove() }
        let call = fixture.call(csr: try csr(uris: ["spiffe://cluster.local/ns/shop/sa/cart"]), metadata: ["ImpersonatedIdentity": impersonated])
        Self.expectIstiodRefusal(await fixture.failure(call))
        let rejection = try #require(try await fixture.ledger.rejections(since: nil, limit: nil).first)
        #expect(rejection.reasonCode == "impersonation")
        #expect(rejection.requester == "token:\(fixture.token.id)")
        #expect(rejection.message.contains(why), "\(rejection.message)")
        #expect(rejection.message.contains("on behalf of spiffe://cluster.local/ns/default/sa/was"))
        #expect(try await fixture.ledger.issuances(matching: IssuanceQuery()).isEmpty)
        #expect(fixture.log.all.contains { $0.hasPrefix("notice refused an impersonation") })
    }

    @Test("A trusted caller still gets only the impersonated identity: a CSR naming another one is refused")
    func csrMustMatch() async throws {
        let fixture = try await HandlerFixture("impersonation", trustedNodeAccounts: ["default/was"])
        defer { fixture.dir.remove() }
        let call = fixture.call(
            csr: try csr(uris: ["spiffe://cluster.local/ns/kube-system/sa/admin"]), metadata: ["ImpersonatedIdentity": "spiffe://cluster.local/ns/shop/sa/cart"])
        #expect(await fixture.failure(call)?.code == .permissionDenied)
    }

    @Test("Without ImpersonatedIdentity, an empty CertSigner and unknown keys of any type do not stop issuance")
    func otherKeys() async throws {
        let fixture = try await HandlerFixture("impersonation")
        defer { fixture.dir.remove() }
        var request = Google_Protobuf_Struct()
        request.fields = [
            "CertSigner": Google_Protobuf_Value(stringValue: ""), "WorkloadIP": Google_Protobuf_Value(numberValue: 10),
            "ClusterID": Google_Protobuf_Value(nilLiteral: ()),
        ]
        let call = fixture.call(csr: try csr(uris: ["spiffe://cluster.local/ns/default/sa/was"]), metadata: CertificateCall.metadata(request))
        #expect(try await fixture.handler.createCertificate(call).count == 2)
    }
}
