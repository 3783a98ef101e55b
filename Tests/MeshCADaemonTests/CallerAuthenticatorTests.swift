import Foundation
import MeshCACore
import MeshCADaemon
import MeshCAIO
import MeshCALedger
import MeshCATestSupport
import MeshCATransport
import Testing
import X509

/// mTLS renewal is granted only to a certificate this CA issued and recorded, unrevoked, with nothing
/// revoked above it: a chain that merely verifies to the bundle is not enough.
@Suite("CallerAuthenticator: mTLS renewal needs a certificate recorded by this CA")
struct CallerAuthenticatorTests {
    struct Fixture {
        let state: CAState
        let ledger: SQLiteLedger
        let service: IssuanceService
        let authenticator: CallerAuthenticator

        init(_ dir: TemporaryDirectory) throws {
            state = try CAState.create(in: StateDirectory(path: dir.file("state")), options: .init(), now: Date())
            ledger = try SQLiteLedger(path: dir.file("state/ledger.db"))
            let authority = CertificateAuthority(trustDomain: state.trustDomain, signer: state.signer)
            service = IssuanceService(authority: authority, ledger: ledger)
            authenticator = CallerAuthenticator(
                authority: authority, tokens: TokenAuthenticator(ledger: ledger, trustDomain: state.trustDomain), jwt: nil,
                ledger: ledger)
        }

        /// A workload certificate for `sa` issued and recorded by this CA.
        func issued(_ sa: String = "was") async throws -> Certificate {
            try await service.issue(
                request(sa), requester: Requester(name: "local:test(uid 1)", authMethod: "local"), at: Date()
            ).certificate
        }

        /// An intermediate made and recorded the way `meshca intermediate create` does it, and its key.
        func intermediate() async throws -> (certificate: Certificate, key: Certificate.PrivateKey) {
            let key = try KeyType.ecP256.generate()
            let now = Date()
            let certificate = try service.authority.issueIntermediate(
                publicKey: key.publicKey, commonName: "meshca intermediate", ttl: .seconds(86_400), at: now)
            try await ledger.record(
                IssuanceRecord(
                    certificate: certificate, trustDomain: state.trustDomain, issuedAt: now, requestedTTL: .seconds(86_400),
                    issuer: state.signer.certificate, requester: Requester(name: "local:test(uid 1)", authMethod: "local")))
            return (certificate, key)
        }

        func authenticate(_ chain: [Certificate]) async throws -> AuthenticatedCaller {
            try await authenticator.authenticate(
                CertificateCall(csrPEM: "", requestedTTL: nil, remotePeer: "ipv4:127.0.0.1:1", clientChain: chain), at: Date())
        }

        /// The message of the AuthenticationFailure `chain` gets.
        func refusal(_ chain: [Certificate]) async -> String? {
            do {
                _ = try await authenticate(chain)
                return nil
            } catch let failure as AuthenticationFailure {
                #expect(failure.method == "mtls")
                return failure.message
            } catch {
                return "unexpected \(error)"
            }
        }
    }

    static func request(_ sa: String, ns: String = "default") throws -> IssuanceRequest {
        let id = try SPIFFEID(trustDomain: TrustDomain("cluster.local"), namespace: ns, serviceAccount: sa)
        return IssuanceRequest(csrPEM: try WorkloadCSR.pem(WorkloadCSR.make(for: id, key: KeyType.ecP256.generate())), identity: id)
    }

    func request(_ sa: String, ns: String = "default") throws -> IssuanceRequest { try Self.request(sa, ns: ns) }

    @Test("A certificate this CA issued renews, as the identity it carries")
    func recordedLeafRenews() async throws {
        let dir = try TemporaryDirectory("auth")
        defer { dir.remove() }
        let fixture = try Fixture(dir)
        let leaf = try await fixture.issued()
        let caller = try await fixture.authenticate([leaf] + fixture.state.signer.bundle)
        #expect(caller.identity.uri == "spiffe://cluster.local/ns/default/sa/was")
        #expect(caller.requester == Requester(name: "mtls:\(leaf.serialHex)", authMethod: "mtls"))
    }

    @Test("A leaf signed by an intermediate of this CA passes the handshake check but is refused: not recorded, then revoked chain")
    func intermediateSignedLeafRefused() async throws {
        let dir = try TemporaryDirectory("auth")
        defer { dir.remove() }
        let fixture = try Fixture(dir)
        let (intermediate, key) = try await fixture.intermediate()
        let rogue = TestPKI(
            trustDomain: fixture.state.trustDomain,
            signer: try SigningIdentity(certificate: intermediate, privateKey: key, bundle: fixture.state.signer.bundle))
        let leaf = try rogue.issue("admin", ns: "kube-system", at: Date()).issuance.certificate
        // Path validation alone accepts it: this is the chain the TLS listener lets through.
        #expect(await fixture.authenticator.verifyClientChain([leaf, intermediate]))

        let unrecorded = try #require(await fixture.refusal([leaf, intermediate]))
        #expect(unrecorded.contains("was not issued by this CA"))
        #expect(unrecorded.contains(leaf.serialHex))

        _ = try await fixture.ledger.revoke(serial: intermediate.serialHex, reason: "cACompromise", at: Date())
        let revoked = try #require(await fixture.refusal([leaf, intermediate]))
        #expect(revoked.contains("chain contains a revoked certificate"))
        #expect(revoked.contains(intermediate.serialHex) && revoked.contains("cACompromise"))
    }

    @Test("A recorded serial on a different certificate is refused: the whole certificate must match")
    func copiedSerialRefused() async throws {
        let dir = try TemporaryDirectory("auth")
        defer { dir.remove() }
        let fixture = try Fixture(dir)
        let genuine = try await fixture.issued("admin")
        let (intermediate, key) = try await fixture.intermediate()
        let forged = try Certificate(
            version: .v3, serialNumber: genuine.serialNumber, publicKey: try KeyType.ecP256.generate().publicKey,
            notValidBefore: genuine.notValidBefore, notValidAfter: genuine.notValidAfter, issuer: intermediate.subject,
            subject: genuine.subject, signatureAlgorithm: .ecdsaWithSHA256, extensions: genuine.extensions, issuerPrivateKey: key)
        let message = try #require(await fixture.refusal([forged, intermediate]))
        #expect(message.contains("records a different certificate with that serial"))
    }

    @Test("A revoked certificate cannot renew; the message says when and why")
    func revokedLeafRefused() async throws {
        let dir = try TemporaryDirectory("auth")
        defer { dir.remove() }
        let fixture = try Fixture(dir)
        let leaf = try await fixture.issued()
        _ = try await fixture.ledger.revoke(serial: leaf.serialHex, reason: "keyCompromise", at: Date())
        let message = try #require(await fixture.refusal([leaf]))
        #expect(message.contains("was revoked at") && message.contains("keyCompromise"))
    }
}
