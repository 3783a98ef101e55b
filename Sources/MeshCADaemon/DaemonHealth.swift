import Foundation
import GRPCCore
import Logging
import MeshCACore
import MeshCAIO
import MeshCALedger
import MeshCATransport
import ServiceLifecycle
import X509

/// Decides, every `interval`, whether the CA can issue: the ledger answers a read, the CA files in the state
/// directory load (certificate, key, bundle; a half-written or deleted file fails), and the certificate the CA
/// signs with is within its validity. Publishes the answer to the gRPC health service's ``HealthStatusBoard``
/// (`SERVING` or `NOT_SERVING`) and the ledger's sizes to ``CAMetrics``, and logs each change with its reason.
struct DaemonHealthMonitor: Service {
    let directory: StateDirectory
    let ledger: any LedgerStore
    let authority: CertificateAuthority
    let board: HealthStatusBoard
    let metrics: CAMetrics
    let logger: Logger
    var interval: Duration = .seconds(1)
    var now: @Sendable () -> Date = { Date() }

    func run() async throws {
        var lastProblem: String?? = .none
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let problem = await check(at: now())
            if problem != lastProblem {
                if let problem {
                    logger.error("not serving: \(problem)", metadata: ["code": "not-serving"])
                } else if lastProblem != nil {
                    logger.notice("serving again: the ledger and the CA are usable")
                }
                lastProblem = problem
            }
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                return
            }
        }
    }

    /// Runs the checks once, publishes the result, and returns what is wrong (nil when serving).
    @discardableResult
    func check(at now: Date) async -> String? {
        var problems: [String] = []
        var ledgerUsable = true
        do {
            metrics.publishLedger(try await ledger.statistics())
        } catch {
            ledgerUsable = false
            problems.append("the ledger cannot be read (\(error))")
        }
        var caUsable = true
        let directory = self.directory
        do {
            _ = try await StateDirectory.offCooperativePool { try CAState.load(from: directory) }
        } catch {
            caUsable = false
            problems.append("the CA files cannot be used (\(error))")
        }
        let signing = authority.signingIdentity.certificate
        if now < signing.notValidBefore || now > signing.notValidAfter {
            caUsable = false
            problems.append(
                "the signing CA certificate is valid only from \(signing.notValidBefore.formatted(.iso8601)) "
                    + "to \(signing.notValidAfter.formatted(.iso8601))")
        }
        metrics.publishHealth(ledger: ledgerUsable, ca: caUsable)
        board.set(serving: problems.isEmpty)
        return problems.isEmpty ? nil : problems.joined(separator: "; ")
    }
}

/// Counts every gRPC call by method and final status in `meshca_grpc_requests_total` (Istio's CA API, the health
/// service, and calls to unknown methods alike).
struct RequestStatusCounter: ServerInterceptor {
    let metrics: CAMetrics

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let method = context.descriptor.fullyQualifiedMethod
        let metrics = self.metrics
        var response: StreamingServerResponse<Output>
        do {
            response = try await next(request, context)
        } catch {
            metrics.requestCompleted(method: method, code: Self.code(of: error))
            throw error
        }
        switch response.accepted {
        case .failure(let error):
            metrics.requestCompleted(method: method, code: Self.name(error.code))
        case .success(var contents):
            let produce = contents.producer
            contents.producer = { writer in
                do {
                    let trailers = try await produce(writer)
                    metrics.requestCompleted(method: method, code: "OK")
                    return trailers
                } catch {
                    metrics.requestCompleted(method: method, code: Self.code(of: error))
                    throw error
                }
            }
            response.accepted = .success(contents)
        }
        return response
    }

    /// The status an error ends a call with, as GRPCCore maps it (anything not an RPC error is UNKNOWN).
    static func code(of error: any Error) -> String {
        if let rpc = error as? RPCError { return name(rpc.code) }
        if let convertible = error as? any RPCErrorConvertible { return name(convertible.rpcErrorCode) }
        return "UNKNOWN"
    }

    /// The code as gRPC spells it (`INVALID_ARGUMENT`).
    static func name(_ code: RPCError.Code) -> String {
        name(Status.Code(code))
    }

    static func name(_ code: Status.Code) -> String {
        switch code {
        case .ok: "OK"
        case .cancelled: "CANCELLED"
        case .unknown: "UNKNOWN"
        case .invalidArgument: "INVALID_ARGUMENT"
        case .deadlineExceeded: "DEADLINE_EXCEEDED"
        case .notFound: "NOT_FOUND"
        case .alreadyExists: "ALREADY_EXISTS"
        case .permissionDenied: "PERMISSION_DENIED"
        case .resourceExhausted: "RESOURCE_EXHAUSTED"
        case .failedPrecondition: "FAILED_PRECONDITION"
        case .aborted: "ABORTED"
        case .outOfRange: "OUT_OF_RANGE"
        case .unimplemented: "UNIMPLEMENTED"
        case .internalError: "INTERNAL"
        case .unavailable: "UNAVAILABLE"
        case .dataLoss: "DATA_LOSS"
        case .unauthenticated: "UNAUTHENTICATED"
        default: "CODE_\(code.rawValue)"
        }
    }
}
