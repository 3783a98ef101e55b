#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import MeshCACore

#if canImport(Glibc)
import Glibc
#endif

/// Everything `meshca agent` needs, validated before it starts.
public struct AgentConfiguration: Sendable {
    /// How the agent proves its identity the first time (and after its certificate expired).
    public enum Bootstrap: Sendable, Equatable {
        /// A join token given on the command line.
        case token(String)
        /// A file holding a join token (re-read at each bootstrap).
        case tokenFile(String)
        /// A file holding a Kubernetes service-account JWT (re-read at each bootstrap, as the kubelet rotates it).
        case jwtFile(String)

        /// Whether the credential is read from a file at each use (and so may have been replaced since).
        var isFile: Bool {
            if case .token = self { return false }
            return true
        }
    }

    /// The CA's `HOST:PORT`.
    public var caAddress: String
    /// The identity requested.
    public var identity: SPIFFEID
    /// The directory the three files are written to.
    public var outDirectory: String
    /// The bootstrap credential.
    public var bootstrap: Bootstrap
    /// Roots to verify the CA against; nil uses the root pinned by the join token.
    public var rootCertFile: String?
    /// The requested certificate lifetime.
    public var ttl: Duration
    /// The workload key type.
    public var keyType: KeyType
    /// When to renew and how to retry.
    public var schedule: RenewalSchedule
    /// The Workload API socket path, or nil for none.
    public var workloadAPISocket: String?
    /// Unix uids admitted to the Workload API.
    public var workloadUIDs: Set<UInt32>
    /// A shell command run after every successful write.
    public var onRotate: String?
    /// Mode of `key.pem`.
    public var keyMode: mode_t
    /// Owner of the files, or nil.
    public var fileOwner: (uid: uid_t, gid: gid_t)?
    /// `HOST:PORT` of the status endpoint, or nil for none.
    public var statusAddress: (host: String, port: Int)?
    /// The CA's CRL over plain HTTP (`meshca serve`'s `http://MONITORING/crl`), or nil to fetch none.
    public var crlURL: URL?
    /// How often the CRL is fetched again (it is also fetched after every new certificate).
    public var crlRefreshInterval: Duration = .seconds(60)

    /// Creates a configuration.
    public init(
        caAddress: String,
        identity: SPIFFEID,
        outDirectory: String,
        bootstrap: Bootstrap,
        rootCertFile: String? = nil,
        ttl: Duration = .seconds(86_400),
        keyType: KeyType = .ecP256,
        schedule: RenewalSchedule,
        workloadAPISocket: String? = nil,
        workloadUIDs: Set<UInt32> = [UInt32(getuid())],
        onRotate: String? = nil,
        keyMode: mode_t = 0o600,
        fileOwner: (uid: uid_t, gid: gid_t)? = nil,
        statusAddress: (host: String, port: Int)? = ("127.0.0.1", 15020),
        crlURL: URL? = nil
    ) {
        self.crlURL = crlURL
        self.caAddress = caAddress
        self.identity = identity
        self.outDirectory = outDirectory
        self.bootstrap = bootstrap
        self.rootCertFile = rootCertFile
        self.ttl = ttl
        self.keyType = keyType
        self.schedule = schedule
        self.workloadAPISocket = workloadAPISocket
        self.workloadUIDs = workloadUIDs
        self.onRotate = onRotate
        self.keyMode = keyMode
        self.fileOwner = fileOwner
        self.statusAddress = statusAddress
    }
}
