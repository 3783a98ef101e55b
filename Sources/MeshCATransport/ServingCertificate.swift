import NIOSSL
import Synchronization

/// The certificate chain and key the TLS listener presents, replaceable while it runs.
///
/// Every new handshake reads the current value (through NIOSSL's per-connection context callback),
/// so renewing the serving certificate needs no restart and does not touch open connections.
public final class ServingCertificate: Sendable {
    private struct Current: @unchecked Sendable {
        // NIOSSLCertificate and NIOSSLPrivateKey are immutable wrappers around reference-counted BoringSSL
        // objects that BoringSSL allows to be shared across threads; they are only read after creation.
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
    }

    private let current: Mutex<Current>

    /// Starts with `chainPEM` (leaf first) and its private key `keyPEM`.
    public init(chainPEM: String, keyPEM: String) throws {
        current = Mutex(try Self.load(chainPEM: chainPEM, keyPEM: keyPEM))
    }

    /// Replaces the chain and key for every later handshake.
    public func update(chainPEM: String, keyPEM: String) throws {
        let next = try Self.load(chainPEM: chainPEM, keyPEM: keyPEM)
        current.withLock { $0 = next }
    }

    var chain: [NIOSSLCertificate] { current.withLock { $0.chain } }
    var key: NIOSSLPrivateKey { current.withLock { $0.key } }

    /// The per-handshake override handing out the current chain and key.
    var override: NIOSSLContextConfigurationOverride {
        let snapshot = current.withLock { $0 }
        var override = NIOSSLContextConfigurationOverride()
        override.certificateChain = snapshot.chain.map { .certificate($0) }
        override.privateKey = .privateKey(snapshot.key)
        return override
    }

    private static func load(chainPEM: String, keyPEM: String) throws -> Current {
        Current(
            chain: try NIOSSLCertificate.fromPEMBytes(Array(chainPEM.utf8)),
            key: try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem)
        )
    }
}
