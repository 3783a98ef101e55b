import GRPCCore
import MeshCADaemon
import MeshCALedger
import MeshCATestSupport
import MeshCATransport
import SwiftProtobuf
import Testing

@Suite("ImpersonatedIdentity is refused whatever type it is sent as")
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

    @Test("A string, number, bool, null, struct, list or empty value gets the same UNAUTHENTICATED refusal", arguments: values)
    func anyType(value: Google_Protobuf_Value) async throws {
        let fixture = try await HandlerFixture("impersonation")
        defer { fixture.dir.remove() }
        var request = Google_Protobuf_Struct()
        request.fields = ["CertSigner": Google_Protobuf_Value(stringValue: ""), "ImpersonatedIdentity": value]
        let call = fixture.call(csr: try csr(uris: ["spiffe://cluster.local/ns/default/sa/was"]), metadata: CertificateCall.metadata(request))
        let error = await fixture.failure(call)
        #expect(error?.code == .unauthenticated)
        #expect(error?.message.hasPrefix("meshca does not issue on behalf of another identity (ImpersonatedIdentity ") == true)
        let rejection = try #require(try await fixture.ledger.rejections(since: nil, limit: nil).first)
        #expect(rejection.reasonCode == "impersonation")
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
