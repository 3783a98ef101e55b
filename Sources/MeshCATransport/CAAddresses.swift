import MeshCACore
import NIOPosix

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

import MeshCAPlatform

/// The addresses of a CA run as several replicas (`meshca agent --ca`, `meshca issue --server`, each repeated),
/// and the endpoints they lead to: an IP literal is one endpoint, a host name one per address it resolves to.
public struct CAAddresses: Sendable {
    /// The addresses as given, in order.
    public let configured: [HostPort]

    /// Parses each `HOST:PORT` (or `[IPv6]:PORT`); throws naming the first that is not one, or when there is none.
    public init(_ texts: [String]) throws(CAClientError) {
        var configured: [HostPort] = []
        for text in texts {
            let address: HostPort
            do {
                address = try HostPort.parse(text)
            } catch {
                throw CAClientError(
                    .badAddress, "\"\(text.escapedForLog)\" is not HOST:PORT: \(error.why) (for example 127.0.0.1:15012 or [::1]:15012)."
                )
            }
            guard address.port > 0 else { throw CAClientError(.badAddress, "\"\(text.escapedForLog)\": the CA's port cannot be 0.") }
            if !configured.contains(address) { configured.append(address) }
        }
        guard !configured.isEmpty else { throw CAClientError(.noAddress, "No CA address is given; give at least one HOST:PORT.") }
        self.configured = configured
    }

    /// Every endpoint, in the order given and, for a host name, in the resolver's order (resolved now, so a
    /// changed DNS record is followed), and the host names that did not resolve, as failed attempts.
    public func endpoints() async -> (endpoints: [CAEndpoint], unresolved: [CAAttempt]) {
        var endpoints: [CAEndpoint] = []
        var unresolved: [CAAttempt] = []
        for address in configured {
            if HostPort.ipv4Bytes(address.host) != nil || address.host.contains(":") {
                endpoints.append(CAEndpoint(address: address, resolvedIP: nil))
                continue
            }
            switch await Self.resolve(address.host) {
            case .success(let ips):
                for ip in ips where !endpoints.contains(CAEndpoint(address: address, resolvedIP: ip)) {
                    endpoints.append(CAEndpoint(address: address, resolvedIP: ip))
                }
            case .failure(let failure):
                unresolved.append(
                    CAAttempt(
                        endpoint: CAEndpoint(address: address, resolvedIP: nil), failure: failure.message,
                        kind: .unresolved))
            }
        }
        return (endpoints, unresolved)
    }

    /// The IP addresses of `host` from getaddrinfo(3), in its order, each once; run on NIO's thread pool, since
    /// getaddrinfo blocks. A failure is `unresolved-host`, its message a clause saying why.
    static func resolve(_ host: String) async -> Result<[String], CAClientError> {
        do {
            return .success(try await NIOThreadPool.singleton.runIfActive { try resolveBlocking(host) })
        } catch let failure as CAClientError {
            return .failure(failure)
        } catch {
            return .failure(CAClientError(.unresolvedHost, "the host name could not be resolved (\(error))"))
        }
    }

    private static func resolveBlocking(_ host: String) throws(CAClientError) -> [String] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
            hints.ai_socktype = SOCK_STREAM
        #endif
        hints.ai_flags = AI_ADDRCONFIG
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &list)
        guard status == 0 else {
            let reason = status == EAI_SYSTEM ? String(cString: strerror(errno)) : String(cString: gai_strerror(status))
            throw CAClientError(
                .unresolvedHost, "the host name could not be resolved to an address (\(reason); check its spelling and DNS)")
        }
        defer { freeaddrinfo(list) }
        var ips: [String] = []
        var next = list
        while let entry = next {
            if let ip = numericHost(entry.pointee), !ips.contains(ip) { ips.append(ip) }
            next = entry.pointee.ai_next
        }
        guard !ips.isEmpty else {
            throw CAClientError(.unresolvedHost, "the host name resolved to no IPv4 or IPv6 address (check its DNS records)")
        }
        return ips
    }

    /// The numeric text (`10.0.0.7`, `fd00::7`) of one getaddrinfo entry.
    private static func numericHost(_ entry: addrinfo) -> String? {
        guard let address = entry.ai_addr else { return nil }
        var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        let status = getnameinfo(address, entry.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST)
        guard status == 0 else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// One place the CA may answer: an address as given, connected to directly or through one IP address its host name
/// resolved to. Either way the CA's certificate is checked against the address as given (its host name or IP).
public struct CAEndpoint: Sendable, Hashable, CustomStringConvertible {
    /// The address as given; its host is the name the CA's certificate must carry.
    public let address: HostPort
    /// The IP address connected to when ``address`` is a host name, else nil.
    public let resolvedIP: String?

    /// Creates an endpoint; `resolvedIP` is one address of `address`'s host name.
    public init(address: HostPort, resolvedIP: String? = nil) {
        self.address = address
        self.resolvedIP = resolvedIP
    }

    /// `HOST:PORT`, followed by the IP address connected to for a host name: `meshca.example:15012 (10.0.0.7)`.
    public var description: String {
        guard let resolvedIP else { return address.description }
        return "\(address) (\(resolvedIP))"
    }
}
