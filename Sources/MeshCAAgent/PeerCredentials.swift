import GRPCCore
import NIOCore
import MeshCAPlatform

/// Who is on the other end of a Unix socket, as the kernel recorded it when the peer called `connect()`.
///
/// The Workload API admits callers by uid (PROTOCOLS.md §5.3: "the server identifies the caller out of
/// band, for example from the socket's peer credentials"). The values come from `SO_PEERCRED`, which
/// the peer cannot choose: they are the credentials of the process that connected. A descriptor
/// handed to another process keeps the connector's credentials, as with every SO_PEERCRED user
/// (SPIRE included).
///
/// gRPC handlers never see the socket, so ``PeerCredentialsStamp`` copies these values into each
/// request's metadata under ``uidKey``, ``gidKey`` and ``pidKey`` after removing any values the client
/// sent.
package struct PeerCredentials: Sendable, Equatable, CustomStringConvertible {
    /// The connecting process's effective user id.
    package let uid: UInt32
    /// The connecting process's effective group id.
    package let gid: UInt32
    /// The connecting process's id (in the agent's pid namespace; 0 when the peer is in another one).
    package let pid: Int32

    /// Metadata key carrying the caller's uid, set only by the server.
    package static let uidKey = "meshca-peer-uid"
    /// Metadata key carrying the caller's gid, set only by the server.
    package static let gidKey = "meshca-peer-gid"
    /// Metadata key carrying the caller's pid, set only by the server.
    package static let pidKey = "meshca-peer-pid"

    /// Credentials from explicit values.
    package init(uid: UInt32, gid: UInt32, pid: Int32) {
        self.uid = uid
        self.gid = gid
        self.pid = pid
    }

    package var description: String { "uid \(uid), gid \(gid), pid \(pid)" }

    /// The credentials the server stamped into `metadata`, or `nil` when they are missing or ambiguous.
    ///
    /// Exactly one value per key is required. ``PeerCredentialsStamp`` removes client-sent values and
    /// adds one, so two values mean the stamp did not run; failing closed then keeps a client-sent
    /// header from ever deciding admission.
    package init?(metadata: Metadata) {
        func single(_ key: String) -> String? {
            let values = Array(metadata[stringValues: key])
            return values.count == 1 ? values[0] : nil
        }
        guard let uid = single(Self.uidKey).flatMap(UInt32.init), let gid = single(Self.gidKey).flatMap(UInt32.init),
            let pid = single(Self.pidKey).flatMap(Int32.init)
        else { return nil }
        self.init(uid: uid, gid: gid, pid: pid)
    }

    /// Reads `SO_PEERCRED` from a connected Unix socket channel.
    ///
    /// The future succeeds with `nil` when the channel is not a socket or the platform has no
    /// `SO_PEERCRED` (the caller is then refused, never admitted by default).
    package static func read(from channel: any Channel) -> EventLoopFuture<PeerCredentials?> {
        #if os(Linux)
            guard let provider = channel as? any SocketOptionProvider else {
                return channel.eventLoop.makeSucceededFuture(nil)
            }
            let future: EventLoopFuture<KernelPeerCredentials> = provider.unsafeGetSocketOption(
                level: SocketOptionLevel(SOL_SOCKET),
                name: SocketOptionName(SO_PEERCRED)
            )
            return future.map { raw in PeerCredentials(uid: raw.uid, gid: raw.gid, pid: raw.pid) }
                .recover { _ in nil }
        #else
            return channel.eventLoop.makeSucceededFuture(nil)
        #endif
    }
}

#if os(Linux)
    /// The memory layout of Linux's `struct ucred` (`pid_t pid; uid_t uid; gid_t gid;`).
    ///
    /// Glibc declares `struct ucred` only under `_GNU_SOURCE`, which Swift's Glibc module does not set, so
    /// the three 32-bit fields are mirrored here. Swift lays out a struct of trivial fields in declaration
    /// order with natural alignment, which matches the C struct (12 bytes, no padding). The Workload API
    /// tests admit only the test process's own uid, so a layout mismatch fails them.
    private struct KernelPeerCredentials: Sendable {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
    }
#endif
