#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import GRPCCore
import GRPCNIOTransportHTTP2
import MeshCACore
@_exported import MeshCAErrors
import NIOCore
import NIOSSL
import SwiftASN1
import SwiftProtobuf
import X509

/// A client of a meshca (or istiod) CA endpoint: `CreateCertificate` over TLS, optionally with a
/// client certificate (renewal over mTLS).
///
/// The server is verified against `trust` (RFC 5280 path validation plus the host name or IP in the
/// address): either a bundle of roots, or the SHA-256 fingerprint of a root carried by a join token,
/// in which case the server must present that root in its chain. There is no way to skip verification.
public struct CAClient: Sendable {
    /// How the client decides to trust the server.
    public enum Trust: Sendable {
        /// Roots from a `root-cert.pem`.
        case roots([Certificate])
        /// A root identified by its SHA-256 fingerprint (hex), which the server must send in its chain.
        case pinnedRoot(sha256: String)

        /// The pinned root's fingerprint, for ``pinnedRoot(sha256:)``.
        public var pinnedRootSHA256: String? {
            if case .pinnedRoot(let fingerprint) = self { return fingerprint }
            return nil
        }
    }

    /// A client certificate for mTLS: chain PEM (leaf first) and key PEM.
    public struct ClientIdentity: Sendable {
        public var chainPEM: String
        public var keyPEM: String
        public init(chainPEM: String, keyPEM: String) {
            self.chainPEM = chainPEM
            self.keyPEM = keyPEM
        }
    }

    /// The server's host name or IP address: what its certificate must name.
    public let host: String
    /// The server's port.
    public let port: Int
    /// The IP address connected to when ``host`` is a name already resolved (one endpoint of several), else nil.
    public let resolvedIP: String?
    /// How the server is verified.
    public let trust: Trust
    /// The client certificate presented, if any.
    public let identity: ClientIdentity?
    /// The per-call deadline.
    public var timeout: Duration = .seconds(15)

    /// A client for `address` (`host:port`).
    public init(address: String, trust: Trust, identity: ClientIdentity? = nil) throws {
        let parsed: HostPort
        do {
            parsed = try HostPort.parse(address)
        } catch {
            throw CAClientError(.badAddress, "\"\(address)\" is not HOST:PORT: \(error.why) (for example 127.0.0.1:15012 or [::1]:15012).")
        }
        guard parsed.port > 0 else { throw CAClientError(.badAddress, "\"\(address)\": the CA's port cannot be 0.") }
        self.host = parsed.host
        self.port = parsed.port
        self.resolvedIP = nil
        self.trust = trust
        self.identity = identity
    }

    /// A client for one endpoint of a CA with several (``CAAddresses``): it connects to the endpoint's resolved IP
    /// when it has one, and checks the server's certificate against the address as given, as for a single address.
    public init(endpoint: CAEndpoint, trust: Trust, identity: ClientIdentity? = nil) {
        self.host = endpoint.address.host
        self.port = endpoint.address.port
        self.resolvedIP = endpoint.resolvedIP
        self.trust = trust
        self.identity = identity
    }

    /// Sends one `CreateCertificate` over a new connection and returns Istio's `cert_chain` (leaf,
    /// intermediates, root bundle).
    ///
    /// `headers` carries gRPC metadata (`authorization`, ...); `requestMetadata` becomes the request's
    /// Struct, which istio-agent always fills with `CertSigner`.
    public func createCertificate(
        csrPEM: String,
        ttl: Duration?,
        headers: Metadata = [:],
        requestMetadata: [String: String] = ["CertSigner": ""]
    ) async throws -> [String] {
        try await withConnection { connection in
            try await connection.createCertificate(csrPEM: csrPEM, ttl: ttl, headers: headers, requestMetadata: requestMetadata)
        }
    }

    /// Opens one connection (one TLS handshake) for many calls, closed when `body` returns.
    public func withConnection<Result: Sendable>(_ body: (Connection) async throws -> Result) async throws -> Result {
        var config = HTTP2ClientTransport.Posix.Config.defaults
        // Connecting to a resolved IP: SNI and :authority still carry the name, as when gRPC resolves it itself.
        if resolvedIP != nil { config.http2.authority = HostPort(host: host, port: port).description }
        let transport = try HTTP2ClientTransport.Posix(target: target, transportSecurity: try transportSecurity(), config: config)
        let timeout = self.timeout
        return try await withGRPCClient(transport: transport) { client in
            try await body(Connection(client: Istio_V1_Auth_IstioCertificateService.Client(wrapping: client), timeout: timeout))
        }
    }

    /// An open connection to the CA; calls on it may run concurrently (HTTP/2 streams).
    public struct Connection: Sendable {
        let client: Istio_V1_Auth_IstioCertificateService.Client<HTTP2ClientTransport.Posix>
        let timeout: Duration

        /// Sends one `CreateCertificate`; see ``CAClient/createCertificate(csrPEM:ttl:headers:requestMetadata:)``.
        public func createCertificate(
            csrPEM: String,
            ttl: Duration?,
            headers: Metadata = [:],
            requestMetadata: [String: String] = ["CertSigner": ""]
        ) async throws -> [String] {
            var request = Istio_V1_Auth_IstioCertificateRequest()
            request.csr = csrPEM
            request.validityDuration = ttl?.components.seconds ?? 0
            for (key, value) in requestMetadata {
                request.metadata.fields[key] = Google_Protobuf_Value(stringValue: value)
            }
            var options = CallOptions.defaults
            options.timeout = timeout
            return try await client.createCertificate(request, metadata: headers, options: options).certChain
        }
    }

    private var target: any ResolvableTarget {
        let connectTo = resolvedIP ?? host
        if HostPort.ipv4Bytes(connectTo) != nil { return .ipv4(address: connectTo, port: port) }
        if connectTo.contains(":") { return .ipv6(address: connectTo, port: port) }
        return .dns(host: host, port: port)
    }

    private func transportSecurity() throws -> HTTP2ClientTransport.Posix.TransportSecurity {
        let verify = ServerVerification(host: host, trust: trust)
        let configure: (inout HTTP2ClientTransport.Posix.TransportSecurity.TLS) -> Void = { tls in
            tls.serverCertificateVerification = .fullVerification
            // The callback below is the whole check, against `trust`; an empty store keeps NIOSSL from reading and
            // parsing the system's CA bundle (some 140 certificates) for every connection's context.
            tls.trustRoots = .certificates([])
            tls.customVerificationCallback = { certificates, promise in
                // NIO's bridge from the event loop to the async verifier.
                promise.completeWithTask { await verify.check(certificates) }
            }
        }
        guard let identity else { return .tls(configure: configure) }
        return .mTLS(
            certificateChain: try Certificate.parseAll(pem: identity.chainPEM).map { .bytes($0.derBytes, format: .der) },
            privateKey: .bytes(Array(identity.keyPEM.utf8), format: .pem),
            configure: configure
        )
    }
}

/// The server check used by ``CAClient``, kept apart so its rules are visible in one place.
struct ServerVerification: Sendable {
    let host: String
    let trust: CAClient.Trust

    func check(_ presented: [NIOSSLCertificate]) async -> NIOSSLVerificationResultWithMetadata {
        guard let chain = try? presented.map({ try Certificate(derEncoded: $0.toDERBytes()) }), let leaf = chain.first else {
            return .failed
        }
        let roots: [Certificate]
        switch trust {
        case .roots(let bundle):
            roots = bundle
        case .pinnedRoot(let fingerprint):
            roots = chain.filter { $0.sha256Fingerprint == fingerprint.lowercased() }
        }
        guard !roots.isEmpty else { return .failed }
        let isIP = HostPort.ipv4Bytes(host) != nil || host.contains(":")
        var verifier = Verifier(rootCertificates: CertificateStore(roots)) {
            RFC5280Policy()
            ServerIdentityPolicy(serverHostname: isIP ? nil : host, serverIP: isIP ? host : nil)
        }
        let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore(chain.dropFirst()))
        guard case .validCertificate = result else { return .failed }
        return .certificateVerified(VerificationMetadata(nil))
    }
}

/// A client-side problem: an address that is not `HOST:PORT`, none given, a host name that does not resolve, or
/// (as ``CAUnreachableError``) no CA answering.
public typealias CAClientError = CodedFailure<CAClientErrorCode>

/// The closed list of reasons for a ``CAClientError``; each `rawValue` is a stable kebab-case name.
public enum CAClientErrorCode: String, ErrorCode {
    /// An address that is not `HOST:PORT`, or has port 0.
    case badAddress = "bad-address"
    /// No CA address was given.
    case noAddress = "no-address"
    /// A host name that did not resolve to an address.
    case unresolvedHost = "unresolved-host"
    /// No endpoint of the CA answered (``CAUnreachableError``).
    case caUnreachable = "ca-unreachable"
}
