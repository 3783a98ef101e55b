import GRPCCore
import Logging
import MeshCACore
import MeshCATransport

/// The SPIFFE Workload API (PROTOCOLS.md §5) over the agent's current credentials.
///
/// Every RPC first checks the `workload.spiffe.io: true` header (`INVALID_ARGUMENT` without it), then
/// the caller's uid, which ``PeerCredentialsStamp`` copied from the socket's `SO_PEERCRED`
/// (`PERMISSION_DENIED` when it is not in `allowedUIDs`). `FetchX509SVID` and `FetchX509Bundles` send the
/// full current state at once and again on every change, and never end with OK; they end with
/// `UNAVAILABLE` when the agent shuts down. Before the first certificate they answer `UNAVAILABLE`,
/// which SPIFFE clients retry. JWT and WIT RPCs answer `UNIMPLEMENTED`.
struct WorkloadAPIService: SpiffeWorkloadAPI.ServiceProtocol {
    /// The metadata key every Workload API request must carry, with the single value `true`.
    static let securityHeader = "workload.spiffe.io"

    let credentials: CredentialsBroadcast
    let allowedUIDs: Set<UInt32>
    let shutdown: WorkloadAPIShutdown
    let logger: Logger
    /// Told +1 when a stream opens and -1 when it closes.
    var streamsChanged: @Sendable (Int) -> Void = { _ in }

    func fetchX509SVID(
        request: ServerRequest<X509SVIDRequest>,
        context: ServerContext
    ) async throws -> StreamingServerResponse<X509SVIDResponse> {
        let caller = try admit(request.metadata, rpc: "FetchX509SVID")
        return try stream("FetchX509SVID", to: caller, context: context, message: Self.x509SVIDResponse(for:))
    }

    func fetchX509Bundles(
        request: ServerRequest<X509BundlesRequest>,
        context: ServerContext
    ) async throws -> StreamingServerResponse<X509BundlesResponse> {
        let caller = try admit(request.metadata, rpc: "FetchX509Bundles")
        return try stream("FetchX509Bundles", to: caller, context: context, message: Self.x509BundlesResponse(for:))
    }

    func fetchJWTSVID(
        request: ServerRequest<JWTSVIDRequest>,
        context: ServerContext
    ) async throws -> ServerResponse<JWTSVIDResponse> {
        try refuseUnsupported("FetchJWTSVID", request.metadata)
    }

    func fetchJWTBundles(
        request: ServerRequest<JWTBundlesRequest>,
        context: ServerContext
    ) async throws -> StreamingServerResponse<JWTBundlesResponse> {
        try refuseUnsupported("FetchJWTBundles", request.metadata)
    }

    func validateJWTSVID(
        request: ServerRequest<ValidateJWTSVIDRequest>,
        context: ServerContext
    ) async throws -> ServerResponse<ValidateJWTSVIDResponse> {
        try refuseUnsupported("ValidateJWTSVID", request.metadata)
    }

    func fetchWITSVID(
        request: ServerRequest<WITSVIDRequest>,
        context: ServerContext
    ) async throws -> StreamingServerResponse<WITSVIDResponse> {
        try refuseUnsupported("FetchWITSVID", request.metadata)
    }

    func fetchWITBundles(
        request: ServerRequest<WITBundlesRequest>,
        context: ServerContext
    ) async throws -> StreamingServerResponse<WITBundlesResponse> {
        try refuseUnsupported("FetchWITBundles", request.metadata)
    }

    /// Checks the security header, then the caller's uid; returns the caller's credentials.
    func admit(_ metadata: Metadata, rpc: String) throws -> PeerCredentials {
        // SPIRE's rule: exactly one value, exactly `true` (case-sensitive).
        guard Array(metadata[stringValues: Self.securityHeader]) == ["true"] else {
            logger.notice("Workload API call refused: no security header", metadata: ["rpc": "\(rpc)"])
            throw RPCError(
                code: .invalidArgument,
                message: "security header missing from request: send gRPC metadata \(Self.securityHeader): true, "
                    + "as SPIFFE Workload API clients do"
            )
        }
        guard let caller = PeerCredentials(metadata: metadata) else {
            logger.warning(
                "Workload API call refused: the caller's Unix credentials (SO_PEERCRED) could not be read",
                metadata: ["rpc": "\(rpc)"])
            throw RPCError(
                code: .permissionDenied,
                message: "no identity issued: the meshca agent could not read this caller's Unix credentials"
            )
        }
        guard allowedUIDs.contains(caller.uid) else {
            logger.warning(
                "Workload API call refused: uid not allowed",
                metadata: [
                    "rpc": "\(rpc)", "uid": "\(caller.uid)", "pid": "\(caller.pid)",
                    "allowed_uids": "\(allowedUIDs.sorted().map(String.init).joined(separator: ","))",
                ]
            )
            throw RPCError(
                code: .permissionDenied,
                message: "no identity issued: uid \(caller.uid) is not admitted by this meshca agent; run the workload "
                    + "as an admitted user or add the uid with the agent's --workload-uid"
            )
        }
        return caller
    }

    /// Admits the caller (so refusals keep their usual codes), then answers `UNIMPLEMENTED`.
    private func refuseUnsupported<Response>(_ rpc: String, _ metadata: Metadata) throws -> Response {
        _ = try admit(metadata, rpc: rpc)
        throw RPCError(
            code: .unimplemented,
            message: "\(rpc) is not supported: meshca serves X.509-SVIDs only (FetchX509SVID, FetchX509Bundles), "
                + "not JWT-SVIDs or WIT-SVIDs"
        )
    }

    /// A response that sends `message(current)` at once and again whenever it changes, until the client
    /// leaves, gRPC cancels the RPC, or the server shuts down (then `UNAVAILABLE`, never OK).
    private func stream<Message: Sendable & Equatable>(
        _ rpc: String,
        to caller: PeerCredentials,
        context: ServerContext,
        message: @escaping @Sendable (WorkloadCredentials) -> Message
    ) throws -> StreamingServerResponse<Message> {
        guard credentials.current != nil else {
            throw RPCError(
                code: .unavailable,
                message: "no X.509-SVID yet: the meshca agent has not received its first certificate from the CA; "
                    + "retry with backoff"
            )
        }
        let credentials = credentials
        let shutdown = shutdown
        var streamLogger = logger
        streamLogger[metadataKey: "rpc"] = "\(rpc)"
        streamLogger[metadataKey: "uid"] = "\(caller.uid)"
        streamLogger[metadataKey: "pid"] = "\(caller.pid)"
        let logger = streamLogger
        logger.info("Workload API stream opened")
        let streamsChanged = streamsChanged

        return StreamingServerResponse { writer in
            streamsChanged(1)
            defer { streamsChanged(-1) }
            let ending: RPCError = try await withThrowingTaskGroup(of: RPCError?.self) { group in
                group.addTask {
                    // `updates()` yields the current credentials first; it ends only when this task is cancelled.
                    var last: Message?
                    for await current in credentials.updates() {
                        let next = message(current)
                        guard next != last else { continue }
                        try await writer.write(next)
                        last = next
                        logger.debug(
                            "Workload API stream sent an update", metadata: ["serial": "\(current.leaf.serialHex)"])
                    }
                    return nil
                }
                group.addTask {
                    for await _ in shutdown.signal() {}
                    return Task.isCancelled ? nil : Self.shuttingDown
                }
                group.addTask {
                    // gRPC signals a client cancel, a deadline and a transport shutdown here, not by
                    // cancelling this task.
                    try await context.cancellation.cancelled
                    return shutdown.isTriggered
                        ? Self.shuttingDown
                        : RPCError(code: .cancelled, message: "the Workload API stream was cancelled")
                }
                defer { group.cancelAll() }
                let first = try await group.next() ?? nil
                return first ?? RPCError(code: .cancelled, message: "the Workload API stream was cancelled")
            }
            logger.info("Workload API stream closed", metadata: ["code": "\(ending.code)"])
            throw ending
        }
    }

    /// How open streams end on shutdown: `UNAVAILABLE`, which SPIFFE clients retry.
    static let shuttingDown = RPCError(
        code: .unavailable,
        message: "the meshca agent is shutting down; reconnect to the Workload API"
    )
}
