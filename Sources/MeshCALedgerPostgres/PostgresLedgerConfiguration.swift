import Foundation
import MeshCALedger

/// Where a PostgreSQL ledger lives and how to reach it: `postgres://user@host:port/database?sslmode=...` (also
/// `postgresql://`), read as libpq reads such a URL, plus the password from a file, `PGPASSWORD` or `.pgpass`.
///
/// The password is never part of the URL (a URL ends up in process lists, shell history and logs): a URL with one
/// is refused. It comes from `passwordFile` when given, else `PGPASSWORD`, else the password file libpq reads
/// (`PGPASSFILE`, else `~/.pgpass`; lines `host:port:database:user:password`, `*` matching anything, which must not
/// be readable by group or others). No password at all is fine for `trust` or certificate authentication.
///
/// `sslmode` means what it means to libpq: `disable` (plain), `allow` and `prefer` (TLS when the server offers it,
/// certificate unchecked; `allow` is treated as `prefer`), `require` (TLS, certificate unchecked, unless
/// `sslrootcert` is given, which makes it `verify-ca` as in libpq), `verify-ca` (TLS, the server's certificate
/// chains to `sslrootcert`), `verify-full` (also the host name matches). The default is `prefer`. `sslrootcert`
/// defaults to `~/.postgresql/root.crt`; `sslrootcert=system` uses the system's trust store.
public struct PostgresLedgerConfiguration: Sendable, Equatable {
    /// libpq's TLS modes, weakest first.
    public enum SSLMode: String, Sendable, CaseIterable {
        case disable, allow, prefer, require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    /// The server's host name or address.
    public var host: String
    /// The server's port (5432 unless the URL says otherwise).
    public var port: Int
    /// The role to log in as.
    public var user: String
    /// The password, or nil (trust or certificate authentication).
    public var password: String?
    /// The database holding the ledger.
    public var database: String
    /// How TLS is used; see the type's documentation.
    public var sslMode: SSLMode
    /// The CA certificates (PEM file) that verify the server for `verify-ca` and `verify-full`, or "system".
    public var sslRootCert: String?
    /// `application_name` as the server shows it in `pg_stat_activity`.
    public var applicationName: String
    /// How long a query waits for a connection to the server before failing with `LedgerError.Code.unavailable`.
    public var connectTimeout: Duration
    /// How long a group commit may wait, once it has its connection, for its transaction to begin (the chain lock,
    /// which another replica may hold) or for one of its writes to complete, before its writes fail with
    /// `LedgerError.Code.unavailable` and the connection is closed (a server that stopped answering).
    public var answerTimeout: Duration
    /// Connections this ledger keeps to the server at most (one for its group commits, the rest for reads).
    public var maximumConnections: Int
    /// Signs a checkpoint of the chain every `checkpointInterval` events (when a signer is given to `open`).
    public var checkpointInterval: Int

    /// The URL with the password left out (there is never one in it) and the query options as given: for messages
    /// and logs.
    public var redactedURL: String {
        var text = "postgres://\(Self.escape(user))@\(host.contains(":") ? "[\(host)]" : host):\(port)/\(Self.escape(database))"
        var options = ["sslmode=\(sslMode.rawValue)"]
        if let sslRootCert { options.append("sslrootcert=\(sslRootCert)") }
        text += "?" + options.joined(separator: "&")
        return text
    }

    /// Whether `text` names a PostgreSQL ledger (a `postgres://` or `postgresql://` URL) rather than an SQLite file.
    public static func isPostgresURL(_ text: String) -> Bool {
        let lower = text.lowercased()
        return lower.hasPrefix("postgres://") || lower.hasPrefix("postgresql://")
    }

    /// Parses `url` and finds the password; `environment` is the process environment (PGPASSWORD, PGPASSFILE,
    /// PGUSER, HOME, USER). Throws `LedgerError` (`.cannotOpen`) naming the value, the rule and the fix.
    public init(url: String, passwordFile: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        guard Self.isPostgresURL(url), let components = URLComponents(string: url) else {
            throw Self.invalid(
                "'\(url)' is not a PostgreSQL URL",
                fix: "write it as postgres://USER@HOST:PORT/DATABASE?sslmode=verify-full")
        }
        if components.password != nil {
            throw Self.invalid(
                "the ledger URL contains a password, which would be visible in process lists, shell history and logs",
                fix: "remove it from the URL and put it in a password file (--ledger-password-file), in PGPASSWORD, or in "
                    + "~/.pgpass (mode 0600)")
        }
        guard let host = components.host, !host.isEmpty else {
            throw Self.invalid(
                "'\(Self.withoutPassword(url))' names no host",
                fix: "write it as postgres://USER@HOST:PORT/DATABASE")
        }
        self.host = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        self.port = components.port ?? 5432
        let user = components.user?.removingPercentEncoding ?? environment["PGUSER"] ?? environment["USER"] ?? ""
        guard !user.isEmpty else {
            throw Self.invalid(
                "'\(url)' names no user (and neither PGUSER nor USER is set)",
                fix: "write it as postgres://USER@HOST:PORT/DATABASE")
        }
        self.user = user
        let path = components.percentEncodedPath.hasPrefix("/")
            ? String(components.percentEncodedPath.dropFirst()) : components.percentEncodedPath
        self.database = path.isEmpty ? user : (path.removingPercentEncoding ?? path)
        self.sslMode = .prefer
        self.sslRootCert = nil
        self.applicationName = "meshca"
        self.connectTimeout = .seconds(5)
        self.answerTimeout = .seconds(15)
        self.maximumConnections = 8
        self.checkpointInterval = 1000
        for item in components.queryItems ?? [] {
            let value = item.value ?? ""
            switch item.name {
            case "sslmode":
                guard let mode = SSLMode(rawValue: value) else {
                    throw Self.invalid(
                        "sslmode '\(value)' is not one of \(SSLMode.allCases.map(\.rawValue).joined(separator: ", "))",
                        fix: "use sslmode=verify-full (with sslrootcert=FILE) for a server across a network, or "
                            + "sslmode=disable on a trusted local socket")
                }
                sslMode = mode
            case "sslrootcert":
                sslRootCert = value
            case "application_name":
                applicationName = value
            case "connect_timeout":
                guard let seconds = Int(value), seconds > 0 else {
                    throw Self.invalid(
                        "connect_timeout '\(value)' is not a whole number of seconds above 0",
                        fix: "write e.g. connect_timeout=5")
                }
                connectTimeout = .seconds(seconds)
            default:
                throw Self.invalid(
                    "the ledger URL option '\(item.name)' is not supported",
                    fix: "use only sslmode, sslrootcert, application_name and connect_timeout")
            }
        }
        // libpq: with a root certificate given, `require` verifies the chain as `verify-ca` does.
        if sslMode == .require, sslRootCert != nil { sslMode = .verifyCA }
        if sslMode == .verifyCA || sslMode == .verifyFull {
            let home = environment["HOME"] ?? NSHomeDirectory()
            let root = sslRootCert ?? (home as NSString).appendingPathComponent(".postgresql/root.crt")
            if root != "system", !FileManager.default.isReadableFile(atPath: root) {
                throw Self.invalid(
                    "sslmode=\(sslMode.rawValue) needs the CA certificates that signed the server's certificate, "
                        + "but \(root) cannot be read",
                    fix: "add sslrootcert=FILE (a PEM file) to the URL, or sslrootcert=system for the system's "
                        + "trust store")
            }
            sslRootCert = root
        }
        password = try Self.password(
            file: passwordFile, environment: environment, host: self.host, port: port, database: database, user: user)
    }

    /// The password: from `file`, else PGPASSWORD, else the first matching line of the .pgpass file.
    private static func password(
        file: String?, environment: [String: String], host: String, port: Int, database: String, user: String
    ) throws -> String? {
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw invalid("the ledger password file \(file) cannot be read", fix: "check its path and permissions")
            }
            var text = String(decoding: data, as: UTF8.self)
            while text.hasSuffix("\n") || text.hasSuffix("\r") { text.removeLast() }
            return text
        }
        if let password = environment["PGPASSWORD"] { return password }
        let home = environment["HOME"] ?? NSHomeDirectory()
        let passFile = environment["PGPASSFILE"] ?? (home as NSString).appendingPathComponent(".pgpass")
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: passFile) else { return nil }
        if let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue, mode & 0o077 != 0 {
            throw invalid(
                "the password file \(passFile) has mode \(String(mode & 0o777, radix: 8)), so group or others can "
                    + "read it (libpq ignores such a file)",
                fix: "run chmod 0600 \(passFile)")
        }
        guard let data = FileManager.default.contents(atPath: passFile) else { return nil }
        for line in String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline) {
            let fields = pgpassFields(String(line))
            guard !line.hasPrefix("#"), fields.count == 5 else { continue }
            let wanted = [host, String(port), database, user]
            if zip(fields.prefix(4), wanted).allSatisfy({ $0 == "*" || $0 == $1 }) { return fields[4] }
        }
        return nil
    }

    /// A .pgpass line's fields: separated by `:`, with `\:` and `\\` standing for `:` and `\`.
    static func pgpassFields(_ line: String) -> [String] {
        var fields: [String] = []
        var current = ""
        var escaped = false
        for character in line {
            if escaped {
                current.append(character)
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if character == ":" && fields.count < 4 {
                fields.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        fields.append(current)
        return fields
    }

    private static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .urlUserAllowed.subtracting(CharacterSet(charactersIn: ":@/"))) ?? text
    }

    /// `url` with anything between `//` and `@` after the first `:` cut, for a message about a URL that had one.
    private static func withoutPassword(_ url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url.range(of: "@", range: scheme.upperBound..<url.endIndex),
            let colon = url.range(of: ":", range: scheme.upperBound..<at.lowerBound)
        else { return url }
        return String(url[..<colon.lowerBound]) + String(url[at.lowerBound...])
    }

    private static func invalid(_ problem: String, fix: String) -> LedgerError {
        LedgerError(code: .cannotOpen, message: "Cannot use the PostgreSQL ledger: \(problem). To fix it, \(fix).")
    }
}
