#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import NIOCore
import NIOPosix
import MeshCAPlatform

/// Why a connection could not be made, in words for a person: "connection refused: nothing listens on that port"
/// rather than `SingleConnectionFailure(...)`. Used by the CLI's network errors (`meshca agent status`,
/// `meshca issue --server`, `meshca version --server`) and the agent's CRL fetch.
package enum ConnectionFailure {
    /// The words for `error` when it is a socket-level failure SwiftNIO reports, or nil when it is something else.
    package static func words(for error: any Error) -> String? {
        switch error {
        case let error as NIOConnectionError:
            if let errno = error.connectionErrors.lazy.compactMap({ ($0.error as? IOError)?.errnoCode }).first {
                return words(errno: errno)
            }
            if error.connectionErrors.isEmpty || error.dnsAError != nil && error.dnsAAAAError != nil {
                return "the host name could not be resolved to an address (check its spelling and DNS)"
            }
            return error.connectionErrors.lazy.compactMap { words(for: $0.error) }.first
                ?? error.connectionErrors.first.map { "connect failed: \($0.error)" }
        case let error as IOError:
            return words(errno: error.errnoCode)
        case is SocketAddressError:
            return "the host name could not be resolved to an address (check its spelling and DNS)"
        case let error as ChannelError:
            if case .connectTimeout = error { return "the connection timed out: nothing answered (the host may be down, or a firewall drops the packets)" }
            return nil
        default:
            return nil
        }
    }

    /// The words for a socket `errno`.
    package static func words(errno: Int32) -> String {
        switch errno {
        case ECONNREFUSED: "connection refused: nothing listens on that port"
        case ETIMEDOUT: "the connection timed out: nothing answered"
        case EHOSTUNREACH: "no route to the host (it is down or the network is unreachable)"
        case ENETUNREACH: "the network is unreachable"
        case ECONNRESET: "the connection was reset by the other side"
        case EADDRNOTAVAIL: "the address is not available on this machine"
        default: "connect failed: \(String(cString: strerror(errno)))"
        }
    }
}
