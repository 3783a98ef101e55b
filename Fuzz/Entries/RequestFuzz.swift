import GRPCCore
import MeshCACore
import MeshCATransport
import SwiftProtobuf

/// The body of a `CreateCertificate` call: `Istio_V1_Auth_IstioCertificateRequest(serializedBytes:)`, then
/// `IstioCertificateService.createCertificate`, which reads the CSR, `validity_duration` and the `metadata`
/// Struct (`CertSigner`, `ImpersonatedIdentity`) into a `CertificateCall`. The signer behind it issues the way
/// the daemon does once a caller is authenticated (as spiffe://cluster.local/ns/default/sa/fuzz).
enum RequestFuzz {
    static let service = IstioCertificateService(signer: Signer(), peers: PeerRegistry())

    static func run(_ bytes: [UInt8]) async {
        guard let message = try? Istio_V1_Auth_IstioCertificateRequest(serializedBytes: bytes) else { return }
        // What was decoded encodes again.
        precondition((try? message.serializedBytes() as [UInt8]) != nil, "a decoded request does not encode")
        let request = ServerRequest(metadata: ["authorization": "Bearer fuzz"], message: message)
        await withServerContextRPCCancellationHandle { cancellation in
            let context = ServerContext(
                descriptor: Istio_V1_Auth_IstioCertificateService.Method.CreateCertificate.descriptor,
                remotePeer: "ipv4:127.0.0.1:40000", localPeer: "ipv4:127.0.0.1:15012", cancellation: cancellation)
            _ = try? await service.createCertificate(request: request, context: context)
        }
    }

    struct Signer: CertificateSigner {
        func createCertificate(_ call: CertificateCall) async throws -> [String] {
            _ = call.metadata["CertSigner"]
            _ = call.metadata["ImpersonatedIdentity"]
            let issuance = try Fixtures.authority.issue(
                IssuanceRequest(csrPEM: call.csrPEM, identity: Fixtures.identity, requestedTTL: call.requestedTTL),
                at: Fixtures.now)
            return Fixtures.authority.istioCertChain(for: issuance)
        }
    }
}
