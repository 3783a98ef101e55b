import Foundation
import MeshCACore
import MeshCATestSupport
import SwiftASN1
import Testing
import X509

@Suite("Certificate revocation lists")
struct CertificateRevocationListTests {
    static let serial = Certificate.SerialNumber(bytes: [0x8f, 0x1a, 0x2b, 0x3c])

    @Test(
        "A signed CRL reads back with its issuer, times, number and entries, and verifies with the CA key",
        arguments: [KeyType.ecP256, .ecP384, .rsa2048])
    func roundTrip(keyType: KeyType) throws {
        let ca = try TestPKI(keyType: keyType, createdAt: TestPKI.fixedNow)
        let entries = [
            CertificateRevocationList.Entry(
                serialNumber: Self.serial, revocationDate: TestPKI.fixedNow.addingTimeInterval(-60.5), reason: .keyCompromise),
            CertificateRevocationList.Entry(
                serialNumber: Certificate.SerialNumber(bytes: [0x01]), revocationDate: TestPKI.fixedNow, reason: .unspecified),
        ]
        let crl = try CertificateRevocationList.sign(
            entries: entries, issuer: ca.authority.signingIdentity, number: 42, thisUpdate: TestPKI.fixedNow,
            nextUpdate: TestPKI.fixedNow.addingTimeInterval(86_400))
        let read = try CertificateRevocationList(pemEncoded: crl.pem)
        #expect(read == crl)
        #expect(read.issuer == ca.root.subject)
        #expect(read.number == 42)
        #expect(read.thisUpdate == TestPKI.fixedNow)
        #expect(read.nextUpdate == TestPKI.fixedNow.addingTimeInterval(86_400))
        #expect(read.entry(for: Self.serial)?.reason == .keyCompromise)
        #expect(read.entry(for: Self.serial)?.revocationDate == TestPKI.fixedNow.addingTimeInterval(-61))
        #expect(read.entry(for: Certificate.SerialNumber(bytes: [0x01]))?.reason == .unspecified)
        #expect(read.isSigned(by: ca.root))
        let other = try TestPKI(keyType: keyType, createdAt: TestPKI.fixedNow)
        #expect(!read.isSigned(by: other.root))
    }

    @Test("A CRL with a flipped byte no longer verifies")
    func tampered() throws {
        let ca = try TestPKI(createdAt: TestPKI.fixedNow)
        let crl = try CertificateRevocationList.sign(
            entries: [.init(serialNumber: Self.serial, revocationDate: TestPKI.fixedNow, reason: .superseded)],
            issuer: ca.authority.signingIdentity, number: 1, thisUpdate: TestPKI.fixedNow,
            nextUpdate: TestPKI.fixedNow.addingTimeInterval(60))
        var bytes = crl.derBytes
        // The last byte of the serial 8f1a2b3c inside the TBS.
        let start = try #require(bytes.indices.first { Array(bytes[$0...].prefix(4)) == [0x8f, 0x1a, 0x2b, 0x3c] })
        bytes[start + 3] ^= 0x01
        let read = try CertificateRevocationList(derEncoded: bytes)
        #expect(read.entries.first?.serialNumber != Self.serial)
        #expect(!read.isSigned(by: ca.root))
    }

    @Test("An empty CRL leaves out the revokedCertificates field and still reads back")
    func empty() throws {
        let ca = try TestPKI(createdAt: TestPKI.fixedNow)
        let crl = try CertificateRevocationList.sign(
            entries: [], issuer: ca.authority.signingIdentity, number: 0, thisUpdate: TestPKI.fixedNow,
            nextUpdate: TestPKI.fixedNow.addingTimeInterval(60))
        let read = try CertificateRevocationList(derEncoded: crl.derBytes)
        #expect(read.entries.isEmpty)
        #expect(read.isSigned(by: ca.root))
    }

    @Test("Times from 2050 on are GeneralizedTime and read back")
    func generalizedTime() throws {
        let ca = try TestPKI(createdAt: TestPKI.fixedNow, rootTTL: .seconds(60 * 365 * 86_400))
        let later = Date(timeIntervalSince1970: 2_600_000_000)  // 2052
        let crl = try CertificateRevocationList.sign(
            entries: [.init(serialNumber: Self.serial, revocationDate: later, reason: .cessationOfOperation)],
            issuer: ca.authority.signingIdentity, number: 7, thisUpdate: later,
            nextUpdate: later.addingTimeInterval(3600))
        let read = try CertificateRevocationList(derEncoded: crl.derBytes)
        #expect(read.thisUpdate == later)
        #expect(read.entries.first?.revocationDate == later)
    }

    @Test("A nextUpdate not after thisUpdate is refused")
    func badValidity() throws {
        let ca = try TestPKI(createdAt: TestPKI.fixedNow)
        let error = issuanceError {
            _ = try CertificateRevocationList.sign(
                entries: [], issuer: ca.authority.signingIdentity, number: 1, thisUpdate: TestPKI.fixedNow,
                nextUpdate: TestPKI.fixedNow)
        }
        #expect(error?.code == .invalidDuration)
    }

    @Test("Bytes that are not a CRL are refused as malformed")
    func malformed() throws {
        let ca = try TestPKI(createdAt: TestPKI.fixedNow)
        #expect(throws: IssuanceError.self) { try CertificateRevocationList(derEncoded: ca.root.derBytes) }
        #expect(throws: IssuanceError.self) { try CertificateRevocationList(derEncoded: [0x01, 0x02]) }
        #expect(throws: IssuanceError.self) { try CertificateRevocationList(pemEncoded: ca.root.pem) }
    }

    @Test("Reasons are read by their RFC 5280 names in any case; unknown ones list the accepted names")
    func reasons() throws {
        #expect(try RevocationReason(parsing: "KEYCOMPROMISE") == .keyCompromise)
        #expect(RevocationReason.privilegeWithdrawn.code == 9)
        let hold = issuanceError { _ = try RevocationReason(parsing: "certificateHold") }
        #expect(hold?.code == .invalidRevocationReason)
        #expect(hold?.message.contains("keyCompromise, cACompromise") == true)
        #expect(hold?.message.contains("final") == true)
    }
}
