import Foundation
import Logging
import MeshCALedger
import NIOCore
import NIOSSL
import PostgresNIO
import Synchronization

/// The SQL the ledger shares with SQLite, in PostgreSQL's dialect, and values in and out of postgres-nio.
///
/// The statements of the record types (`IssuanceRecord.selectSQL`, `IssuanceQuery.statement()`, ...) are written
/// once, with SQLite's placeholders; here `?` becomes `$1`, `$2`, ... in order, `?N` becomes `$N`, and SQLite's
/// implicit `rowid` becomes the `row_id` column that stands in for it. Only fixed SQL fragments pass through here;
/// every value is a bound parameter.
enum PostgresSQL {
    /// `sql` with SQLite placeholders and `rowid` translated. The ledger's statements are a fixed set of texts, so
    /// each is translated once and remembered (an issuance runs about ten of them).
    static func translate(_ sql: String) -> String {
        if let known = translated.withLock({ $0[sql] }) { return known }
        let result = translating(sql)
        translated.withLock { cache in
            // A bound, should a caller ever build statement texts from values: start over rather than grow.
            if cache.count >= 512 { cache.removeAll() }
            cache[sql] = result
        }
        return result
    }

    /// What ``translate(_:)`` returned for each statement text so far.
    private static let translated = Mutex<[String: String]>([:])

    private static func translating(_ sql: String) -> String {
        var out = ""
        var next = 1
        var characters = Array(sql)[...]
        while let character = characters.popFirst() {
            guard character == "?" else {
                out.append(character)
                continue
            }
            let digits = characters.prefix { $0.isASCII && $0.isNumber }
            if digits.isEmpty {
                out += "$\(next)"
                next += 1
            } else {
                out += "$" + String(digits)
                characters = characters.dropFirst(digits.count)
            }
        }
        return out.replacingOccurrences(of: #"\browid\b"#, with: "row_id", options: .regularExpression)
    }

    /// The values as postgres-nio bindings: BIGINT, TEXT, BYTEA or NULL.
    static func bindings(_ values: [SQLiteStatement.Value]) -> PostgresBindings {
        var bindings = PostgresBindings(capacity: values.count)
        for value in values {
            switch value {
            case .integer(let integer): bindings.append(integer)
            case .text(let text): bindings.append(text)
            case .blob(let bytes): bindings.append(ByteBuffer(bytes: bytes))
            case .null: bindings.appendNull()
            }
        }
        return bindings
    }

    /// A row's cells as values: integers and booleans as `.integer`, BYTEA as `.blob`, everything else as text.
    static func values(_ row: PostgresRow) throws -> [SQLiteStatement.Value] {
        try row.map { cell -> SQLiteStatement.Value in
            guard let bytes = cell.bytes else { return .null }
            switch cell.dataType {
            case .int8, .int4, .int2: return .integer(try cell.decode(Int64.self))
            case .bool: return .integer(try cell.decode(Bool.self) ? 1 : 0)
            case .bytea: return .blob(Array(bytes.readableBytesView))
            default: return .text(try cell.decode(String.self))
            }
        }
    }
}

extension PostgresLedger {
    /// How TLS is used for `configuration`'s `sslmode`: not at all, when the server offers it, or always; and the
    /// TLS settings (trust roots and host name checking per `verify-ca`/`verify-full`).
    static func tlsSettings(
        _ configuration: PostgresLedgerConfiguration
    ) throws -> (use: TLSUse, tls: TLSConfiguration) {
        var tls = TLSConfiguration.makeClientConfiguration()
        switch configuration.sslMode {
        case .disable:
            return (.never, tls)
        case .allow, .prefer, .require:
            tls.certificateVerification = .none
            return (configuration.sslMode == .require ? .always : .whenOffered, tls)
        case .verifyCA, .verifyFull:
            tls.certificateVerification = configuration.sslMode == .verifyFull ? .fullVerification : .noHostnameVerification
            if let root = configuration.sslRootCert, root != "system" {
                do {
                    tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(root))
                } catch {
                    throw LedgerError(
                        code: .cannotOpen,
                        message: "Cannot use the PostgreSQL ledger \(configuration.redactedURL): sslrootcert \(root) "
                            + "is not a readable PEM file of CA certificates (\(error)). To fix it, point sslrootcert "
                            + "at the CA certificate that signed the server's certificate.")
                }
            }
            return (.always, tls)
        }
    }

    /// When a connection uses TLS.
    enum TLSUse { case never, whenOffered, always }

    /// The session settings every connection starts with: `synchronous_commit=on` whatever the server's default,
    /// and the application name.
    static func startupParameters(_ configuration: PostgresLedgerConfiguration) -> [(String, String)] {
        [("application_name", configuration.applicationName), ("synchronous_commit", "on")]
    }

    /// The postgres-nio client settings for `configuration`: TLS per `sslmode`, the pool's size, and the session
    /// settings.
    static func clientConfiguration(_ configuration: PostgresLedgerConfiguration) throws -> PostgresClient.Configuration {
        let (use, tls) = try tlsSettings(configuration)
        let mode: PostgresClient.Configuration.TLS =
            switch use {
            case .never: .disable
            case .whenOffered: .prefer(tls)
            case .always: .require(tls)
            }
        var client = PostgresClient.Configuration(
            host: configuration.host, port: configuration.port, username: configuration.user,
            password: configuration.password, database: configuration.database, tls: mode)
        client.options.connectTimeout = configuration.connectTimeout
        client.options.maximumConnections = max(configuration.maximumConnections, 2)
        client.options.minimumConnections = 0
        client.options.additionalStartupParameters = startupParameters(configuration)
        if configuration.sslMode == .verifyFull { client.options.tlsServerName = configuration.host }
        return client
    }

    /// Connects once, outside the pool, and hangs up: so a refused login, a missing database or a server that does
    /// not speak TLS is reported at once with its own error, where the pool would keep retrying until the deadline.
    static func probe(_ configuration: PostgresLedgerConfiguration, logger: Logger) async throws {
        let (use, tls) = try tlsSettings(configuration)
        let mode: PostgresConnection.Configuration.TLS =
            switch use {
            case .never: .disable
            case .whenOffered: .prefer(try NIOSSLContext(configuration: tls))
            case .always: .require(try NIOSSLContext(configuration: tls))
            }
        var settings = PostgresConnection.Configuration(
            host: configuration.host, port: configuration.port, username: configuration.user,
            password: configuration.password, database: configuration.database, tls: mode)
        settings.options.connectTimeout = TimeAmount(configuration.connectTimeout)
        settings.options.additionalStartupParameters = startupParameters(configuration)
        if configuration.sslMode == .verifyFull { settings.options.tlsServerName = configuration.host }
        do {
            let connection = try await PostgresConnection.connect(configuration: settings, id: 0, logger: logger)
            try? await connection.close()
        } catch {
            throw failure(error, operation: "connect to the ledger", location: configuration.redactedURL, database: configuration.database)
        }
    }
}
