import Foundation
import MeshCACore
import MeshCATestSupport
import Testing
import X509

@Suite("Lifetimes, clock and signer validity")
struct IssuancePolicyTests {
    @Test("No requested lifetime gives 24h; notBefore is backdated two minutes")
    func defaults() throws {
        let issuance = try TestPKI(createdAt: TestPKI.fixedNow).issue(at: TestPKI.fixedNow).issuance
        let leaf = issuance.certificate
        #expect(leaf.notValidBefore == TestPKI.fixedNow.addingTimeInterval(-120))
        #expect(leaf.notValidAfter == TestPKI.fixedNow.addingTimeInterval(86_400))
        #expect(issuance.grantedTTL == .seconds(86_400))
        #expect(issuance.requestedTTL == nil)
    }

    @Test("A requested lifetime within the maximum is granted", arguments: [60, 3600, 90 * 86_400])
    func granted(seconds: Int64) throws {
        let issuance = try TestPKI(createdAt: TestPKI.fixedNow).issue(at: TestPKI.fixedNow, ttl: .seconds(seconds)).issuance
        #expect(issuance.certificate.notValidAfter == TestPKI.fixedNow.addingTimeInterval(TimeInterval(seconds)))
        #expect(issuance.requestedTTL == .seconds(seconds))
    }

    @Test("Zero or negative requested lifetimes mean the default, as istiod does", arguments: [0, -5])
    func nonPositive(seconds: Int64) throws {
        #expect(try TestPKI(createdAt: TestPKI.fixedNow).issue(at: TestPKI.fixedNow, ttl: .seconds(seconds)).issuance.grantedTTL == .seconds(86_400))
    }

    @Test("A lifetime above 90 days is refused, naming both values")
    func tooLong() throws {
        let ca = try TestPKI(createdAt: TestPKI.fixedNow)
        let error = issuanceError { _ = try ca.issue(at: TestPKI.fixedNow, ttl: .seconds(91 * 86_400)).issuance }
        #expect(error?.code == .ttlTooLong)
        #expect(error?.message.contains("91d") == true)
        #expect(error?.message.contains("90d") == true)
    }

    @Test("notAfter is capped at the CA's own notAfter, and the granted lifetime says so")
    func cappedByIssuer() throws {
        let ca = try TestPKI(createdAt: TestPKI.fixedNow, rootTTL: .seconds(2 * 86_400))
        let late = TestPKI.fixedNow.addingTimeInterval(86_400 + 3600)  // 23h before the root expires
        let issuance = try ca.issue(at: late, ttl: .seconds(7 * 86_400)).issuance
        #expect(issuance.certificate.notValidAfter == ca.root.notValidAfter)
        #expect(issuance.grantedTTL == .seconds(Int64(ca.root.notValidAfter.timeIntervalSince(late))))
    }

    @Test("An expired or not-yet-valid CA issues nothing", arguments: [-86_400.0, 3 * 86_400.0])
    func signerNotValid(offset: Double) throws {
        let ca = try TestPKI(createdAt: TestPKI.fixedNow, rootTTL: .seconds(2 * 86_400))
        let error = issuanceError { _ = try ca.issue(at: TestPKI.fixedNow.addingTimeInterval(offset)).issuance }
        #expect(error?.code == .signerNotValid)
    }

    @Test("A default above the maximum is a configuration error")
    func badPolicy() {
        #expect(issuanceError { _ = try IssuancePolicy(defaultTTL: .seconds(100), maxTTL: .seconds(10)) }?.code == .invalidDuration)
    }

    @Test("A key that does not belong to the CA certificate is refused")
    func mismatchedSigner() throws {
        let ca = try TestPKI(createdAt: TestPKI.fixedNow)
        let error = issuanceError {
            _ = try SigningIdentity(certificate: ca.root, privateKey: KeyType.ecP256.generate(), bundle: [ca.root])
        }
        #expect(error?.code == .invalidSigner)
        #expect(error?.message.contains("does not match") == true)
    }

    @Test("A leaf certificate cannot be used as a signer")
    func leafAsSigner() throws {
        let ca = try TestPKI(createdAt: TestPKI.fixedNow)
        let key = try KeyType.ecP256.generate()
        let id = try TestPKI.identity()
        let csr = try WorkloadCSR.pem(WorkloadCSR.make(for: id, key: key))
        let leaf = try ca.authority.issue(IssuanceRequest(csrPEM: csr, identity: id), at: TestPKI.fixedNow).certificate
        #expect(issuanceError { _ = try SigningIdentity(certificate: leaf, privateKey: key, bundle: [ca.root]) }?.code == .invalidSigner)
    }
}
