import MeshCAIO
import GRPCCore
import SwiftProtobuf
import X509

/// One `CreateCertificate` call, with everything the CA needs to authenticate and authorize it.
public struct CertificateCall: Sendable {
    /// The PEM CSR (`IstioCertificateRequest.csr`).
    public var csrPEM: String
    /// The requested lifetime; `nil` when `validity_duration` was ≤ 0 (use the default).
    public var requestedTTL: Duration?
    /// The request's `metadata` Struct (`CertSigner`, `ImpersonatedIdentity`, ...) as text; see ``metadata(_:)``.
    public var metadata: [String: String]
    /// The `authorization` header, e.g. `Bearer <token>`.
    public var authorization: String?
    /// The `clusterid` header, when sent.
    public var clusterID: String?
    /// The caller's address in gRPC's spelling, e.g. `ipv4:127.0.0.1:53412`.
    public var remotePeer: String
    /// The client certificate chain verified during the TLS handshake (leaf first), when one was sent.
    public var clientChain: [Certificate]?

    /// Creates a call description.
    public init(
        csrPEM: String,
        requestedTTL: Duration?,
        metadata: [String: String] = [:],
        authorization: String? = nil,
        clusterID: String? = nil,
        remotePeer: String,
        clientChain: [Certificate]? = nil
    ) {
        self.csrPEM = csrPEM
        self.requestedTTL = requestedTTL
        self.metadata = metadata
        self.authorization = authorization
        self.clusterID = clusterID
        self.remotePeer = remotePeer
        self.clientChain = clientChain
    }
}

extension CertificateCall {
    /// The request's `metadata` Struct as text: string values as sent, any other value (number, bool, null,
    /// list, struct) as its JSON text. Unknown keys are kept and left to the signer; a key sent with another
    /// type is never dropped, so `ImpersonatedIdentity: 1` or `null` is refused like a string would be.
    public static func metadata(_ metadata: Google_Protobuf_Struct) -> [String: String] {
        metadata.fields.mapValues { value in
            if case .stringValue(let string) = value.kind { return string }
            return value.kind == nil ? "null" : ((try? value.jsonString()) ?? "null")
        }
    }
}

/// What answers `CreateCertificate`: authenticates, authorizes, signs and records.
///
/// It returns Istio's `cert_chain` (leaf, intermediates, root bundle) or throws an `RPCError` whose code
/// and message go to the caller; any other error becomes `INTERNAL` with a generic message.
public protocol CertificateSigner: Sendable {
    /// Handles one call.
    func createCertificate(_ call: CertificateCall) async throws -> [String]
}

/// `istio.v1.auth.IstioCertificateService`, wire-compatible with Istio's `security/v1alpha1/ca.proto`.
public struct IstioCertificateService: Istio_V1_Auth_IstioCertificateService.ServiceProtocol {
    private let signer: any CertificateSigner
    private let peers: PeerRegistry

    /// Serves `signer`, looking up client certificates in `peers` (filled by ``TLSListener``).
    public init(signer: any CertificateSigner, peers: PeerRegistry) {
        self.signer = signer
        self.peers = peers
    }

    public func createCertificate(
        request: ServerRequest<Istio_V1_Auth_IstioCertificateRequest>,
        context: ServerContext
    ) async throws -> ServerResponse<Istio_V1_Auth_IstioCertificateResponse> {
        let message = request.message
        let call = CertificateCall(
            csrPEM: message.csr,
            requestedTTL: message.validityDuration > 0 ? .seconds(message.validityDuration) : nil,
            metadata: CertificateCall.metadata(message.metadata),
            authorization: request.metadata[stringValues: "authorization"].first(where: { _ in true }),
            clusterID: request.metadata[stringValues: "clusterid"].first(where: { _ in true }),
            remotePeer: context.remotePeer,
            clientChain: peers.chain(forRemotePeer: context.remotePeer)
        )
        let chain: [String]
        do {
            // Resumed on this connection's event loop, wherever the ledger's commit resumes it from.
            chain = try await withTaskExecutorPreference(EventLoopTaskExecutor.pinnedToCurrentEventLoop) {
                try await signer.createCertificate(call)
            }
        } catch let error as RPCError {
            throw error
        } catch {
            throw RPCError(code: .internalError, message: "internal error")
        }
        var response = Istio_V1_Auth_IstioCertificateResponse()
        response.certChain = chain
        return ServerResponse(message: response)
    }
}
