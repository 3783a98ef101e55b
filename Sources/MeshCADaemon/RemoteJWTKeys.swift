import AsyncHTTPClient
import Foundation
import JWTKit
import Logging
import MeshCACore
import MeshCAIO
import NIOCore
import NIOHTTP1
import NIOSSL
import ServiceLifecycle
import Synchronization

/// The JWT verification keys of a cluster, fetched over HTTPS (`jwks-url`): the API server's `/openid/v1/jwks`,
/// or the `jwks_uri` named by an OIDC discovery document (a URL ending in `/.well-known/openid-configuration`).
///
/// Fetched at start, then every `refresh`, and again when a token names a key id (`kid`) the set does not hold, at
/// most once every 15 s (so a flood of tokens with made-up key ids costs one request per 15 s). A failed fetch keeps
/// the last good key set and is logged and counted; `meshca_jwt_keys_age_seconds` says how old the set in use is.
/// Requests carry `Authorization: Bearer` with the contents of `tokenFile` when given (read at every fetch, as the
/// kubelet rotates projected tokens), and trust the roots in `caFile` when given (else the system's).
public final class RemoteJWTKeys: Service, Sendable {
    /// Where and how to fetch.
    public struct Source: Sendable {
        public var url: String
        public var caFile: String?
        public var tokenFile: String?
        public var refresh: Duration
        /// How long one fetch may take. AsyncHTTPClient keeps retrying a refused connection until then, so a server
        /// that is down costs this much per fetch.
        public var timeout: Duration

        public init(
            url: String, caFile: String? = nil, tokenFile: String? = nil, refresh: Duration = .seconds(300), timeout: Duration = .seconds(15)
        ) {
            self.url = url
            self.caFile = caFile
            self.tokenFile = tokenFile
            self.refresh = refresh
            self.timeout = timeout
        }
    }

    /// A fetched key set.
    public struct KeySet: Sendable {
        public let keys: JWTKeyCollection
        /// The key ids it holds (keys without one are tried for every token).
        public let keyIDs: Set<String>
        public let fetchedAt: Date
    }

    /// At most one refresh for an unknown key id per this interval.
    public static let unknownKeyInterval: TimeInterval = 15

    public let source: Source
    /// How requests verify the server: `source.caFile`'s roots, else the system's.
    private let tls: TLSConfiguration
    private let time: ServiceTime
    private let logger: Logger
    private let metrics: CAMetrics?
    private struct State {
        var current: KeySet?
        var lastError: String?
        var lastUnknownKeyRefresh: Date?
    }
    private let state = Mutex(State())

    /// A key source for `source`; nothing is fetched until ``refresh()`` or ``run()``.
    public init(source: Source, time: ServiceTime = .system, logger: Logger, metrics: CAMetrics? = nil) throws {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile = source.caFile {
            do {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
            } catch {
                throw DaemonError(
                    .unreadableFile,
                    "jwks-ca-file \(caFile) holds no PEM certificate meshca can read (\(error)). In a pod, give "
                        + "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt.")
            }
        }
        self.source = source
        self.tls = tls
        self.time = time
        self.logger = logger
        self.metrics = metrics
        metrics?.publishJWTKeys { [weak self] in self?.current?.fetchedAt }
    }

    /// The key set in use, if one was ever fetched.
    public var current: KeySet? { state.withLock { $0.current } }

    /// Why the last fetch failed, if it did.
    public var lastError: String? { state.withLock { $0.lastError } }

    /// Fetches the key set now; on failure keeps the one in use and returns false.
    @discardableResult
    public func refresh() async -> Bool {
        do {
            let set = try await fetch()
            state.withLock {
                $0.current = set
                $0.lastError = nil
            }
            logger.info("fetched the JWT keys", metadata: ["url": "\(source.url)", "keys": "\(set.keyIDs.sorted().joined(separator: ","))"])
            return true
        } catch {
            let message = "\(error)"
            let kept = state.withLock { state -> Date? in
                state.lastError = message
                return state.current?.fetchedAt
            }
            metrics?.jwtKeysRefreshFailed()
            logger.error(
                "cannot fetch the JWT keys; \(kept == nil ? "JWT authentication refuses every token until a fetch succeeds" : "keeping the last good key set")",
                metadata: ["url": "\(source.url)", "error": "\(message.escapedForLog)", "kept_from": "\(kept.map { $0.formatted(.iso8601) } ?? "none")"])
            return false
        }
    }

    /// How long a request waits for the fetch its token started (by ``ServiceTime``'s clock). The fetch itself goes
    /// on, up to `source.timeout`, and serves the requests after it: a key server that hangs costs a request this
    /// much, and its caller an UNAUTHENTICATED answer rather than running into its own deadline.
    public static let requestWait: Duration = .seconds(2)

    /// For a token naming a key id the set does not hold: fetches again unless that was done for an unknown key id
    /// within the last 15 s (by ``ServiceTime``'s clock), and waits for that fetch at most ``requestWait``. Returns
    /// whether a new set was fetched within that time.
    public func refreshForUnknownKey(_ keyID: String) async -> Bool {
        let now = time.now()
        let allowed = state.withLock { state -> Bool in
            if let last = state.lastUnknownKeyRefresh, now.timeIntervalSince(last) < Self.unknownKeyInterval { return false }
            state.lastUnknownKeyRefresh = now
            return true
        }
        guard allowed else { return false }
        logger.notice("a token names an unknown JWT key id; fetching the keys again", metadata: ["kid": "\(keyID.escapedForLog)"])
        let fetch = Task { await self.refresh() }
        let time = self.time
        return await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let answer = FirstAnswer(continuation)
            let timer = Task {
                _ = await time.sleep(for: Self.requestWait)
                answer.resume(false)
            }
            Task {
                answer.resume(await fetch.value)
                timer.cancel()
            }
        }
    }

    /// Resumes a continuation with the first of several answers; the later ones are dropped.
    private final class FirstAnswer: Sendable {
        private let continuation: Mutex<CheckedContinuation<Bool, Never>?>

        init(_ continuation: CheckedContinuation<Bool, Never>) {
            self.continuation = Mutex(continuation)
        }

        func resume(_ value: Bool) {
            continuation.withLock { $0.take() }?.resume(returning: value)
        }
    }

    /// Refreshes every `source.refresh` until graceful shutdown.
    public func run() async throws {
        await time.every(source.refresh, immediately: false) { _ in await refresh() }
    }

    private func fetch() async throws -> KeySet {
        var url = source.url
        if url.hasSuffix("/.well-known/openid-configuration") {
            let document = try await get(url, what: "the OIDC discovery document")
            guard let object = try? JSONSerialization.jsonObject(with: Data(document)) as? [String: Any],
                let jwksURI = object["jwks_uri"] as? String
            else {
                throw CAError(.jwtKeysUnavailable, "\(url) is not an OIDC discovery document with a jwks_uri")
            }
            url = jwksURI
        }
        let body = try await get(url, what: "a JWKS document")
        guard let jwks = try? JSONDecoder().decode(JWKS.self, from: Data(body)), !jwks.keys.isEmpty else {
            throw CAError(.jwtKeysUnavailable, "\(url) did not answer with a JWKS document (a JSON object with a non-empty \"keys\" list)")
        }
        let keys = JWTKeyCollection()
        do {
            try await keys.add(jwks: jwks)
        } catch {
            throw CAError(.jwtKeysUnavailable, "the JWKS document from \(url) holds a key meshca cannot use (\(error))")
        }
        return KeySet(keys: keys, keyIDs: Set(jwks.keys.compactMap { $0.keyIdentifier?.string }), fetchedAt: time.now())
    }

    private func get(_ url: String, what: String) async throws -> [UInt8] {
        var request = HTTPClientRequest(url: url)
        request.tlsConfiguration = tls
        request.headers.add(name: "Accept", value: "application/json")
        if let tokenFile = source.tokenFile {
            guard let data = FileManager.default.contents(atPath: tokenFile) else {
                throw CAError(.jwtKeysUnavailable, "cannot read jwks-token-file \(tokenFile); check the path and that this user may read it")
            }
            request.headers.add(name: "Authorization", value: "Bearer " + String(decoding: data, as: UTF8.self).trimmed)
        }
        let response: HTTPClientResponse
        do {
            // AsyncHTTPClient's process-wide client: nothing to shut down, whatever way the daemon stops.
            response = try await HTTPClient.shared.execute(request, timeout: .milliseconds(Int64(source.timeout.seconds * 1000)))
        } catch {
            throw CAError(.jwtKeysUnavailable, "cannot fetch \(what) from \(url): \(error)")
        }
        guard response.status == .ok else {
            let hint =
                response.status == .unauthorized || response.status == .forbidden
                ? " (give jwks-token-file a token allowed to read it; the API server lets service accounts read /openid/v1/jwks "
                    + "when the system:service-account-issuer-discovery ClusterRole is bound)" : ""
            throw CAError(.jwtKeysUnavailable, "\(url) answered \(response.status.code) \(response.status.reasonPhrase) to the request for \(what)\(hint)")
        }
        return Array(try await response.body.collect(upTo: 1 << 20).readableBytesView)
    }
}
