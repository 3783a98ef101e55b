import GRPCCore
import MeshCACore
@testable import MeshCADaemon
import MeshCAIO
import MeshCALedger
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

    @Test(
        "Each refusal the daemon decides itself gets its status from its code; a CAError that is no refusal is INTERNAL without details",
        arguments: [
            (CAError.Code.unauthenticated, RPCError.Code.unauthenticated), (.impersonation, .unauthenticated),
            (.tokenRejected, .unauthenticated), (.rateLimited, .resourceExhausted), (.authRateLimited, .resourceExhausted),
            (.unknownSigner, .invalidArgument), (.jwtKeysUnavailable, .internalError),
        ]
    )
    func daemonRefusals(code: CAError.Code, expected: RPCError.Code) {
        let mapped = rpcError(for: CAError(code, "why and what to do"))
        #expect(mapped.code == expected)
        #expect(mapped.message.contains("why and what to do") == (expected != .internalError))
    }

    @Test("A ledger that cannot commit and a CA key whose HSM cannot sign are UNAVAILABLE (retried), anything unexpected INTERNAL without details")
    func otherErrors() {
        #expect(rpcError(for: DaemonError(.notRecorded, "disk full at /var/lib/meshca")).code == .unavailable)
        // The CA key's HSM failing: retryable, and the module's details (paths, token names) stay in the ledger and log.
        let hsm = rpcError(for: IssuanceError(.signerUnavailable, "token \"meshca\" in /usr/lib/softhsm/libsofthsm2.so"))
        #expect(hsm.code == .unavailable)
        #expect(!hsm.message.contains("libsofthsm2"))
        #expect(rpcError(for: AuthenticationFailure(method: "token", "expired")).code == .unauthenticated)
        let unexpected = rpcError(for: DaemonError(.writeFailed, "secret path /etc/x"))
        #expect(unexpected.code == .internalError)
        #expect(!unexpected.message.contains("/etc/x"))
    }

    @Test(
        "A ledger that is busy or unreachable (a token lookup before issuance) is UNAVAILABLE without its location; a refused value is not",
        arguments: [
            (LedgerError.Code.locked, RPCError.Code.unavailable), (.ioError, .unavailable), (.cannotOpen, .unavailable),
            (.diskFull, .unavailable), (.notALedger, .internalError), (.duplicateSerial, .internalError),
        ])
    func ledgerErrors(code: LedgerError.Code, expected: RPCError.Code) {
        let mapped = rpcError(for: LedgerError(code: code, message: "postgres://meshca@db.internal:5432/meshca: connection refused"))
        #expect(mapped.code == expected)
        #expect(!mapped.message.contains("db.internal"))
    }
}
