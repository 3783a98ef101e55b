import GRPCCore
import MeshCACore
@testable import MeshCADaemon
import MeshCAIO
import Testing

@Suite("Mapping meshca errors to gRPC statuses")
struct RPCErrorMappingTests {
    @Test(
        "Each refusal gets the status Istio's agent handles correctly",
        arguments: [
            (IssuanceError.Code.identityMismatch, RPCError.Code.permissionDenied),
            (.foreignTrustDomain, .permissionDenied),
            (.malformedCSR, .invalidArgument),
            (.badCSRSignature, .invalidArgument),
            (.unsupportedKey, .invalidArgument),
            (.forbiddenSAN, .invalidArgument),
            (.caRequested, .invalidArgument),
            (.ttlTooLong, .invalidArgument),
            (.invalidToken, .unauthenticated),
            (.signerNotValid, .internalError),
            (.signingFailed, .internalError),
        ]
    )
    func issuanceErrors(code: IssuanceError.Code, expected: RPCError.Code) {
        let mapped = rpcError(for: IssuanceError(code, "why and what to do"))
        #expect(mapped.code == expected)
        #expect(mapped.message.contains("why and what to do"))
    }

    @Test("A ledger that cannot commit is UNAVAILABLE (retried), anything unexpected INTERNAL without details")
    func otherErrors() {
        #expect(rpcError(for: DaemonError(.notRecorded, "disk full at /var/lib/meshca")).code == .unavailable)
        #expect(rpcError(for: AuthenticationFailure(method: "token", "expired")).code == .unauthenticated)
        let unexpected = rpcError(for: DaemonError(.writeFailed, "secret path /etc/x"))
        #expect(unexpected.code == .internalError)
        #expect(!unexpected.message.contains("/etc/x"))
    }
}
