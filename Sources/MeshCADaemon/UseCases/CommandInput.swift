import Foundation
import MeshCACore
import MeshCAIO
import MeshCAPKCS11

/// The values `meshca`'s flags and arguments name, read and checked for the use cases, so the executable parses
/// them without the modules that define them. A value that cannot be used throws ``CAError`` `invalid-argument`;
/// other errors (none expected) pass through.
public enum CommandInput {

    /// A duration such as `90s`, `24h` or `7d`.
    public static func duration(_ text: String) throws -> Duration {
        try invalid { try HumanDuration.parse(text) }
    }

    /// A certificate key type (`ec-p256`, ...).
    public static func keyType(_ text: String) throws -> KeyType {
        try invalid { try KeyType(parsing: text) }
    }

    /// Every key type's name, for help texts.
    public static var keyTypeNames: [String] { KeyType.allCases.map(\.rawValue) }

    /// The key type used when none is given.
    public static var defaultKeyType: String { KeyType.ecP256.rawValue }

    /// An HSM key's PKCS#11 URI (`--key`); nil for none.
    public static func hsmKey(_ text: String?) throws(CAError) -> PKCS11URI? {
        guard let text else { return nil }
        do { return try PKCS11URI(parsing: text) } catch { throw invalidArgument(error.message) }
    }

    /// A Kubernetes namespace and service account name.
    public static func kubernetesIdentity(namespace: String, serviceAccount: String) throws {
        try invalid {
            try KubernetesName.validate(namespace, as: .namespace)
            try KubernetesName.validate(serviceAccount, as: .serviceAccount)
        }
    }

    /// A SPIFFE trust domain.
    public static func trustDomain(_ text: String) throws -> TrustDomain {
        try invalid { try TrustDomain(text) }
    }

    /// A SPIFFE ID (`spiffe://...`); nil for none.
    public static func spiffeID(_ text: String?) throws -> SPIFFEID? {
        guard let text else { return nil }
        return try invalid { try SPIFFEID(parsing: text) }
    }

    /// `--ledger` (else `MESHCA_LEDGER`) and its password file.
    public static func ledger(url: String?, passwordFile: String?) throws -> LedgerLocation {
        do {
            return try LedgerLocation.resolve(explicit: url, passwordFile: passwordFile)
        } catch let error as DaemonError {
            throw invalidArgument(error.message)
        }
    }

    /// `body`'s value; its ``IssuanceError`` (a value the CA does not accept) becomes ``CAError`` `invalid-argument`.
    private static func invalid<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as IssuanceError {
            throw invalidArgument(error.message)
        }
    }

    /// A ``CAError`` `invalid-argument` saying `message`.
    static func invalidArgument(_ message: String) -> CAError {
        CAError(.invalidArgument, message)
    }

    /// Whether `text` is `HOST:PORT` (`[v6]:PORT`).
    public static func isHostPort(_ text: String) -> Bool {
        hostPort(text) != nil
    }

    /// The host and port of `HOST:PORT` (`[v6]:PORT`); nil when `text` is not one.
    public static func hostPort(_ text: String) -> (host: String, port: Int)? {
        (try? HostPort.parse(text)).map { ($0.host, $0.port) }
    }

    /// `path` made absolute against the working directory.
    public static func absolutePath(_ path: String) -> String {
        FilePaths.absolute(path)
    }
}

/// How `meshca` shows values in text output.
public enum CommandText {
    /// `text` with newlines and terminal control sequences escaped, as the ledger's text fields are shown.
    public static func escaped(_ text: String) -> String {
        text.escapedForLog
    }

    /// A duration as `2h30m`, `7d`.
    public static func duration(_ duration: Duration) -> String {
        HumanDuration.format(duration)
    }
}
