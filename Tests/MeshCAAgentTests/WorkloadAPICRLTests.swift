import Foundation
import GRPCCore
import MeshCAAgent
import MeshCACore
import MeshCATransport
import Testing
import X509

@Suite("The CA's CRL on Workload API streams", .timeLimit(.minutes(2)))
struct WorkloadAPICRLTests {
    @Test("The CRL is sent in X509SVIDResponse.crl, kept across renewals, and a new CRL is streamed at once")
    func crlField() async throws {
        let fixture = try WorkloadAPIFixture()
        try fixture.publishNew()
        let signer = fixture.authority.signingIdentity
        @Sendable func crl(number: Int64) throws -> [UInt8] {
            try CertificateRevocationList.sign(
                entries: [
                    .init(
                        serialNumber: .init(bytes: [0x0a, UInt8(number)]), revocationDate: Date(), reason: .superseded)
                ],
                issuer: signer, number: number, thisUpdate: Date(), nextUpdate: Date().addingTimeInterval(3600)
            ).derBytes
        }
        let first = try crl(number: 1)
        fixture.broadcast.publish(crl: first)
        try await fixture.withServer { _, _ in
            try await fixture.withClient { api in
                try await api.fetchX509SVID(X509SVIDRequest(), metadata: WorkloadAPIFixture.securityHeader) {
                    response in
                    var messages = response.messages.makeAsyncIterator()
                    let initial = try #require(try await messages.next())
                    #expect(initial.crl == [Data(first)])
                    let parsed = try CertificateRevocationList(derEncoded: [UInt8](initial.crl[0]))
                    #expect(parsed.isSigned(by: signer.certificate))

                    // A renewal keeps the CRL.
                    let renewed = try fixture.publishNew()
                    let afterRenewal = try #require(try await messages.next())
                    #expect(afterRenewal.crl == [Data(first)])
                    #expect(
                        try WorkloadAPIFixture.certificates(afterRenewal.svids[0].x509Svid).first?.serialNumber
                            == renewed.leaf.serialNumber)

                    // A new CRL alone is a change: the stream sends it.
                    let second = try crl(number: 2)
                    fixture.broadcast.publish(crl: second)
                    let afterCRL = try #require(try await messages.next())
                    #expect(afterCRL.crl == [Data(second)])
                }
            }
        }
    }
}
