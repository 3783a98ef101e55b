import Foundation
import GRPCCore
import MeshCAAgent
import MeshCACore
import MeshCATestSupport
import MeshCATransport
import Testing
import X509

@Suite("The CA's CRL on Workload API streams", .timeLimit(.minutes(2)))
struct WorkloadAPICRLTests {
    @Test("The CRL is sent in X509SVIDResponse.crl, kept across renewals, and a new CRL is streamed at once")
    func crlField() async throws {
        let fixture = try WorkloadAPIFixture()
        try fixture.publishNew()
        let signer = fixture.pki.signer
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
        fixture.broadcast.publish(crls: [first])
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

                    // New CRLs alone are a change: the stream sends them, one element per CRL (two during a root
                    // rotation's overlap).
                    let second = try crl(number: 2)
                    let third = try crl(number: 3)
                    fixture.broadcast.publish(crls: [second, third])
                    let afterCRL = try #require(try await messages.next())
                    #expect(afterCRL.crl == [Data(second), Data(third)])
                }
            }
        }
    }

    @Test("A fetched /crl.pem keeps every CRL from this workload's CAs and drops another CA's; a foreign CRL alone is refused")
    func acceptedCRLs() throws {
        func root(_ name: String) throws -> SigningIdentity {
            try TestPKI(createdAt: Date(), rootTTL: .seconds(86_400), commonName: name).signer
        }
        let ours = try root("current")
        let previous = try root("previous")
        let foreign = try root("foreign")
        func crl(_ issuer: SigningIdentity) throws -> CertificateRevocationList {
            try CertificateRevocationList.sign(
                entries: [], issuer: issuer, number: 7, thisUpdate: Date(), nextUpdate: Date().addingTimeInterval(3600))
        }
        let url = URL(string: "http://127.0.0.1:15014/crl.pem")!
        let body = Array([try crl(ours), try crl(foreign), try crl(previous)].map(\.pem).joined().utf8)
        let kept = try CRLFetcher.accepted(from: body, signedByOneOf: [ours.certificate, previous.certificate], url: url)
        #expect(kept.map(\.issuer) == [ours.certificate.subject, previous.certificate.subject])
        let der = try CRLFetcher.accepted(from: try crl(ours).derBytes, signedByOneOf: [ours.certificate], url: url)
        #expect(der.map(\.issuer) == [ours.certificate.subject])
        #expect(throws: (any Error).self) {
            try CRLFetcher.accepted(from: try crl(foreign).derBytes, signedByOneOf: [ours.certificate], url: url)
        }
    }
}
