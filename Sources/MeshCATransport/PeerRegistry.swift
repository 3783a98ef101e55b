import Synchronization
import X509

/// The client certificates verified during TLS handshakes, by connection.
///
/// grpc-swift's custom listener API hands the RPC handler only the peer's address, not its TLS
/// session, so the listener records each verified client certificate chain here under the
/// connection's remote address (`ipv4:127.0.0.1:53412`, gRPC's own spelling) and removes it when the
/// connection closes. A TCP remote address is unique among open connections, so a lookup can never
/// return another connection's certificate.
public final class PeerRegistry: Sendable {
    private let peers = Mutex<[String: [Certificate]]>([:])

    /// An empty registry.
    public init() {}

    /// Records the verified chain (leaf first) of the connection from `address`.
    func register(_ chain: [Certificate], for address: String) {
        peers.withLock { $0[address] = chain }
    }

    /// Forgets the connection from `address`.
    func remove(_ address: String) {
        _ = peers.withLock { $0.removeValue(forKey: address) }
    }

    /// The verified client certificate chain of the connection a request came in on, if it sent one.
    public func chain(forRemotePeer address: String) -> [Certificate]? {
        peers.withLock { $0[address] }
    }

    /// How many connections with a verified client certificate are open.
    public var count: Int { peers.withLock { $0.count } }
}
