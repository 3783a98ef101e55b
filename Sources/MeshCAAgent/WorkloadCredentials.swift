import Foundation
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
    /// The CA's current CRL (DER) when the agent fetches one (`--crl-url`); sent in the Workload API's `crl`
    /// fields. ``CredentialsBroadcast`` keeps it across renewals.
    public var crl: [UInt8]?

    /// Creates credentials.
    public init(
        spiffeID: SPIFFEID, chain: [Certificate], privateKeyPKCS8: [UInt8], privateKeyPEM: String,
        bundle: [Certificate], crl: [UInt8]? = nil
    ) {
        self.spiffeID = spiffeID
        self.chain = chain
        self.privateKeyPKCS8 = privateKeyPKCS8
        self.privateKeyPEM = privateKeyPEM
        self.bundle = bundle
        self.crl = crl
    }

    /// The leaf certificate.
    public var leaf: Certificate { chain[0] }
}

/// Hands the current credentials to every interested reader, and each change to every subscriber.
///
/// Each subscription first yields the current value (when there is one), then every later value, as
/// the Workload API requires: the full state at once, and again on every change. The CRL is published
/// separately (``publish(crl:)``) and attached to every credentials value from then on.
public final class CredentialsBroadcast: Sendable {
    private struct State {
        var current: WorkloadCredentials?
        var crl: [UInt8]?
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
            if credentials.crl == nil { credentials.crl = state.crl }
            state.current = credentials
            for subscriber in state.subscribers.values { subscriber.yield(credentials) }
        }
    }

    /// Makes `crl` (DER) the CRL sent with the credentials, and re-sends the current credentials with it when it
    /// changed.
    public func publish(crl: [UInt8]) {
        state.withLock { state in
            guard state.crl != crl else { return }
            state.crl = crl
            guard var current = state.current else { return }
            current.crl = crl
            state.current = current
            for subscriber in state.subscribers.values { subscriber.yield(current) }
        }
    }

    /// The CRL last published, if any.
    public var crl: [UInt8]? { state.withLock { $0.crl } }

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
