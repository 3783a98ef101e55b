import Foundation
import GRPCCore
import Logging
import MeshCACore
import MeshCADaemon
import MeshCALedger
import MeshCATestSupport
import MeshCATransport
import Synchronization
import Testing
import X509

/// A `LogHandler` that keeps every entry, for checking what reaches the log.
final class CapturingLogHandler: LogHandler, Sendable {
    struct Entry: Sendable {
        let level: Logger.Level
        let message: String
        let metadata: [String: String]
    }

    private let entries = Mutex<[Entry]>([])

    var captured: [Entry] { entries.withLock { $0 } }

    var logger: Logger { Logger(label: "meshca.test") { _ in self } }

    func log(event: LogEvent) {
        let metadata = (event.metadata ?? [:]).mapValues { "\($0)" }
        entries.withLock { $0.append(Entry(level: event.level, message: "\(event.message)", metadata: metadata)) }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { nil }
        set {}
    }

    var metadata: Logger.Metadata {
        get { [:] }
        set {}
    }

    var logLevel: Logger.Level {
        get { .trace }
        set {}
    }
}

/// The daemon's request handler over a real CA, ledger and join token, for tests that drive
/// `CreateCertificateHandler` directly.
struct HandlerFixture {
    let dir: TemporaryDirectory
    let ledger: SQLiteLedger
    let handler: CreateCertificateHandler
    let log = CapturingLogHandler()
    let token: JoinToken

    init(_ name: String, jwt: JWTAuthenticator? = nil) async throws {
        dir = try TemporaryDirectory(name)
        let now = Date()
        let state = try CAState.create(in: StateDirectory(path: dir.file("state")), options: .init(), now: now)
        ledger = try SQLiteLedger(path: dir.file("state/ledger.db"))
        let authority = CertificateAuthority(trustDomain: state.trustDomain, signer: state.signer)
        token = JoinToken.generate(rootFingerprint: state.signer.certificate.sha256Fingerprint)
        try await ledger.createToken(
            JoinTokenRecord(
                id: token.id, secretSHA256: token.secretSHA256, namespace: "default", serviceAccount: "was",
                createdAt: now, expiresAt: now.addingTimeInterval(3600), maxUses: 10, createdBy: "test"
            )
        )
        handler = CreateCertificateHandler(
            service: IssuanceService(authority: authority, ledger: ledger),
            authenticator: CallerAuthenticator(
                authority: authority, tokens: TokenAuthenticator(ledger: ledger, trustDomain: state.trustDomain), jwt: jwt,
                ledger: ledger
            ),
            rateLimiter: nil,
            metrics: CAMetrics(),
            logger: log.logger
        )
    }

    /// A call with the fixture's join token.
    func call(csr: String, metadata: [String: String] = [:]) -> CertificateCall {
        CertificateCall(
            csrPEM: csr, requestedTTL: nil, metadata: metadata, authorization: "Bearer \(token.encoded)",
            remotePeer: "ipv4:127.0.0.1:40000"
        )
    }

    /// The RPC error `call` ends in, or nil when it succeeds.
    func failure(_ call: CertificateCall) async -> RPCError? {
        do {
            _ = try await handler.createCertificate(call)
            return nil
        } catch {
            return error as? RPCError
        }
    }
}

/// A PEM CSR asking for `uris`, signed with a fresh P-256 key.
func csr(uris: [String]) throws -> String {
    let extensions = try Certificate.Extensions { Critical(SubjectAlternativeNames(uris.map { .uniformResourceIdentifier($0) })) }
    let request = try CertificateSigningRequest(
        version: .v1, subject: DistinguishedName(), privateKey: KeyType.ecP256.generate(),
        attributes: .init([try .init(ExtensionRequest(extensions: extensions))]), signatureAlgorithm: .ecdsaWithSHA256
    )
    return try WorkloadCSR.pem(request)
}

@Suite("Request text is escaped before it reaches the log and the ledger")
struct RequestEscapingTests {
    static let forged =
        "spiffe://cluster.local/ns/default/sa/was\n2027-01-15T08:00:00+0000 info meshca: issued spiffe_id=spiffe://cluster.local/ns/kube-system/sa/admin"
    static let shown = "sa/was\\n2027-01-15T08:00:00+0000 info meshca: issued spiffe_id="

    @Test("A CSR URI with a newline shows up escaped in the log line and the rejection row, never as a second line")
    func csrURIWithNewline() async throws {
        let fixture = try await HandlerFixture("escape")
        defer { fixture.dir.remove() }
        let error = await fixture.failure(fixture.call(csr: try csr(uris: [Self.forged])))
        #expect(error?.code == .permissionDenied)
        #expect(error?.message.contains(Self.shown) == true)

        let refused = try #require(fixture.log.captured.first { $0.message == "refused" })
        #expect(refused.metadata["message"]?.contains(Self.shown) == true)
        for entry in fixture.log.captured {
            #expect(!entry.message.contains("\n") && !entry.metadata.values.contains { $0.contains("\n") })
        }
        #expect(!fixture.log.captured.contains { $0.message == "issued" })

        let rejection = try #require(try await fixture.ledger.rejections(since: nil, limit: nil).first)
        #expect(rejection.reasonCode == "identity-mismatch")
        #expect(rejection.message.contains(Self.shown))
        #expect(!rejection.message.contains("\n"))
    }

    @Test("An ImpersonatedIdentity with control characters is escaped in the refusal and its row")
    func impersonatedIdentity() async throws {
        let fixture = try await HandlerFixture("escape")
        defer { fixture.dir.remove() }
        let call = fixture.call(
            csr: try csr(uris: ["spiffe://cluster.local/ns/default/sa/was"]),
            metadata: ["ImpersonatedIdentity": "spiffe://cluster.local/ns/x/sa/y\r\n\u{1B}[2Kfake"]
        )
        let error = await fixture.failure(call)
        #expect(error?.code == .unauthenticated)
        #expect(error?.message.contains("sa/y\\r\\n\\u{1B}[2Kfake") == true)
        let rejection = try #require(try await fixture.ledger.rejections(since: nil, limit: nil).first)
        #expect(rejection.reasonCode == "impersonation")
        #expect(rejection.message.contains("sa/y\\r\\n\\u{1B}[2Kfake"))
    }
}
