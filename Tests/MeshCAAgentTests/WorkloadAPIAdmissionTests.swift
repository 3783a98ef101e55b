import Foundation
import GRPCCore
import MeshCAAgent
import MeshCATestSupport
import MeshCATransport
import Testing

@Suite("Workload API admission: the security header, the caller's uid, unsupported RPCs", .timeLimit(.minutes(2)))
struct WorkloadAPIAdmissionTests {
    @Test(
        "A request without exactly one workload.spiffe.io: true gets INVALID_ARGUMENT",
        arguments: [[], ["TRUE"], ["false"], ["true", "true"]]
    )
    func requiresSecurityHeader(values: [String]) async throws {
        let fixture = try WorkloadAPIFixture()
        try fixture.publishNew()
        var metadata = Metadata()
        for value in values { metadata.addString(value, forKey: "workload.spiffe.io") }
        let sent = metadata
        try await fixture.withServer { _, _ in
            let code = await RPCResult.code { _ = try await fixture.firstSVIDResponse(metadata: sent) }
            #expect(code == .invalidArgument)
        }
    }

    @Test("The header check names the missing header, as SPIRE's message does")
    func headerMessage() async throws {
        let fixture = try WorkloadAPIFixture()
        try fixture.publishNew()
        try await fixture.withServer { _, _ in
            let error = await #expect(throws: RPCError.self) { _ = try await fixture.firstSVIDResponse(metadata: [:]) }
            #expect(error?.message.hasPrefix("security header missing from request") == true)
        }
    }

    @Test("A caller whose uid is not allowed gets PERMISSION_DENIED on both X.509 streams")
    func refusesOtherUID() async throws {
        let fixture = try WorkloadAPIFixture()
        try fixture.publishNew()
        try await fixture.withServer(allowedUIDs: [WorkloadAPIFixture.ownUID &+ 1]) { _, _ in
            let svid = await RPCResult.code { _ = try await fixture.firstSVIDResponse() }
            #expect(svid == .permissionDenied)
            let bundles = await RPCResult.code {
                try await fixture.withClient { api in
                    try await api.fetchX509Bundles(X509BundlesRequest(), metadata: WorkloadAPIFixture.securityHeader) {
                        var messages = $0.messages.makeAsyncIterator()
                        _ = try await messages.next()
                    }
                }
            }
            #expect(bundles == .permissionDenied)
        }
    }

    @Test("A client-sent meshca-peer-uid header cannot get a refused caller admitted")
    func spoofedUIDIsRefused() async throws {
        let fixture = try WorkloadAPIFixture()
        try fixture.publishNew()
        let allowed: UInt32 = WorkloadAPIFixture.ownUID &+ 4242
        var metadata = WorkloadAPIFixture.securityHeader
        metadata.addString(String(allowed), forKey: "meshca-peer-uid")
        metadata.addString("0", forKey: "meshca-peer-gid")
        metadata.addString("1", forKey: "meshca-peer-pid")
        let spoofed = metadata
        try await fixture.withServer(allowedUIDs: [allowed]) { _, _ in
            let code = await RPCResult.code { _ = try await fixture.firstSVIDResponse(metadata: spoofed) }
            #expect(code == .permissionDenied)
        }
    }

    @Test("An admitted caller that sends a fake meshca-peer-uid is still judged by its real uid (the fake is stripped)")
    func spoofedHeaderIsStripped() async throws {
        // Were the client's header kept next to the real one, two values would make the service refuse.
        let fixture = try WorkloadAPIFixture()
        try fixture.publishNew()
        var metadata = WorkloadAPIFixture.securityHeader
        metadata.addString(String(WorkloadAPIFixture.ownUID &+ 4242), forKey: "meshca-peer-uid")
        metadata.addString("1", forKey: "meshca-peer-pid")
        let spoofed = metadata
        try await fixture.withServer { _, _ in
            let response = try await fixture.firstSVIDResponse(metadata: spoofed)
            #expect(response?.svids.first?.spiffeID == "spiffe://cluster.local/ns/default/sa/was")
        }
    }

    @Test("JWT and WIT RPCs answer UNIMPLEMENTED, saying meshca serves X.509-SVIDs only")
    func unsupportedRPCs() async throws {
        let fixture = try WorkloadAPIFixture()
        try fixture.publishNew()
        let header = WorkloadAPIFixture.securityHeader
        try await fixture.withServer { _, _ in
            try await fixture.withClient { api in
                var jwt = JWTSVIDRequest()
                jwt.audience = ["spiffe://cluster.local/ns/default/sa/db"]
                let error = await #expect(throws: RPCError.self) {
                    _ = try await api.fetchJWTSVID(jwt, metadata: header)
                }
                #expect(error?.code == .unimplemented)
                #expect(error?.message.contains("X.509-SVIDs only") == true)

                let codes: [RPCError.Code?] = [
                    await RPCResult.code {
                        _ = try await api.validateJWTSVID(ValidateJWTSVIDRequest(), metadata: header)
                    },
                    await RPCResult.code {
                        try await api.fetchJWTBundles(JWTBundlesRequest(), metadata: header) {
                            for try await _ in $0.messages {}
                        }
                    },
                    await RPCResult.code {
                        try await api.fetchWITSVID(WITSVIDRequest(), metadata: header) {
                            for try await _ in $0.messages {}
                        }
                    },
                    await RPCResult.code {
                        try await api.fetchWITBundles(WITBundlesRequest(), metadata: header) {
                            for try await _ in $0.messages {}
                        }
                    },
                ]
                #expect(codes == Array(repeating: .unimplemented, count: 4))
            }
        }
    }

    @Test("Before the agent holds credentials, both X.509 RPCs answer UNAVAILABLE so clients retry")
    func unavailableWithoutCredentials() async throws {
        let fixture = try WorkloadAPIFixture()
        try await fixture.withServer { _, _ in
            let svid = await RPCResult.code { _ = try await fixture.firstSVIDResponse() }
            #expect(svid == .unavailable)
            let bundles = await RPCResult.code {
                try await fixture.withClient { api in
                    try await api.fetchX509Bundles(X509BundlesRequest(), metadata: WorkloadAPIFixture.securityHeader) {
                        for try await _ in $0.messages {}
                    }
                }
            }
            #expect(bundles == .unavailable)
            // The first credentials make the same socket serve at once.
            try fixture.publishNew()
            #expect(try await fixture.firstSVIDResponse()?.svids.count == 1)
        }
    }
}
