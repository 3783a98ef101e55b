#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import MeshCACore
import SwiftASN1
import Synchronization
import X509

/// The identity an agent currently holds: what the Workload API hands out and the files contain.
public struct WorkloadCredentials: Sendable, Equatable {
    /// The SPIFFE ID in the leaf.
    public let spiffeID: SPIFFEID
    /// The leaf, then intermediates (no roots).
    public let chain: [Certificate]
    /// The private key as unencrypted PKCS#8 DER (the Workload API's format). Never logged.
    public let privateKeyPKCS8: [UInt8]
    /// The private key as PEM (`key.pem`).
    public let privateKeyPEM: String
    /// The trust bundle of the SVID's own trust domain.
    public let bundle: [Certificate]
    /// The CA's current CRLs (DER, one per issuing CA: two during a root rotation's overlap) when the agent
    /// fetches them (`--crl-url`), else empty; sent in the Workload API's `crl` fields. ``CredentialsBroadcast``
    /// keeps them across renewals.
    public var crls: [[UInt8]]

    /// Creates credentials.
    public init(
        spiffeID: SPIFFEID, chain: [Certificate], privateKeyPKCS8: [UInt8], privateKeyPEM: String,
        bundle: [Certificate], crls: [[UInt8]] = []
    ) {
        self.spiffeID = spiffeID
        self.chain = chain
        self.privateKeyPKCS8 = privateKeyPKCS8
        self.privateKeyPEM = privateKeyPEM
        self.bundle = bundle
        self.crls = crls
    }

    /// The leaf certificate.
    public var leaf: Certificate { chain[0] }
}

/// Hands the current credentials to every interested reader, and each change to every subscriber.
///
/// Each subscription first yields the current value (when there is one), then every later value, as
/// the Workload API requires: the full state at once, and again on every change. The CRLs are published
/// separately (``publish(crls:)``) and attached to every credentials value from then on.
public final class CredentialsBroadcast: Sendable {
    private struct State {
        var current: WorkloadCredentials?
        var crls: [[UInt8]] = []
        var subscribers: [UUID: AsyncStream<WorkloadCredentials>.Continuation] = [:]
    }

    private let state = Mutex(State())

    /// An empty broadcast.
    public init() {}

    /// The latest credentials, if any.
    public var current: WorkloadCredentials? { state.withLock { $0.current } }

    /// Makes `credentials` current and sends them to every subscriber.
    public func publish(_ credentials: WorkloadCredentials) {
        // Yielding under the lock keeps every subscriber's order equal to the publish order;
        // `yield` never blocks (the buffer keeps only the newest value).
        state.withLock { state in
            var credentials = credentials
            if credentials.crls.isEmpty { credentials.crls = state.crls }
            state.current = credentials
            for subscriber in state.subscribers.values { subscriber.yield(credentials) }
        }
    }

    /// Makes `crls` (DER each) the CRLs sent with the credentials, and re-sends the current credentials with
    /// them when they changed.
    public func publish(crls: [[UInt8]]) {
        state.withLock { state in
            guard state.crls != crls else { return }
            state.crls = crls
            guard var current = state.current else { return }
            current.crls = crls
            state.current = current
            for subscriber in state.subscribers.values { subscriber.yield(current) }
        }
    }

    /// The CRLs last published (empty before the first).
    public var crls: [[UInt8]] { state.withLock { $0.crls } }

    /// A stream of the current credentials followed by every change; it ends when the consumer stops.
    public func updates() -> AsyncStream<WorkloadCredentials> {
        let id = UUID()
        let (stream, continuation) = AsyncStream<WorkloadCredentials>.makeStream(bufferingPolicy: .bufferingNewest(1))
        state.withLock { state in
            state.subscribers[id] = continuation
            if let current = state.current { continuation.yield(current) }
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
        }
        return stream
    }

    /// How many subscribers are listening (for tests and status).
    public var subscriberCount: Int { state.withLock { $0.subscribers.count } }
}
