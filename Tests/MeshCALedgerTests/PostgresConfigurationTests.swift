import Foundation
import MeshCALedger
import MeshCALedgerPostgres
import MeshCATestSupport
import Testing

@Suite("PostgreSQL ledger URLs, passwords and sslmode")
struct PostgresConfigurationTests {
    @Test("A URL's parts, its defaults (port 5432, sslmode prefer), postgresql:// and the redacted form")
    func parts() throws {
        let configuration = try PostgresLedgerConfiguration(
            url: "postgresql://meshca@db.example:6432/ledger?sslmode=disable", passwordFile: nil, environment: [:])
        #expect(configuration.host == "db.example")
        #expect(configuration.port == 6432)
        #expect(configuration.user == "meshca")
        #expect(configuration.database == "ledger")
        #expect(configuration.sslMode == .disable)
        #expect(configuration.password == nil)
        #expect(configuration.redactedURL == "postgres://meshca@db.example:6432/ledger?sslmode=disable")

        let defaults = try PostgresLedgerConfiguration(url: "postgres://meshca@db", passwordFile: nil, environment: [:])
        #expect(defaults.port == 5432)
        #expect(defaults.database == "meshca")
        #expect(defaults.sslMode == .prefer)
    }

    @Test("A password in the URL is refused, without repeating it, and the message names the three places for one")
    func passwordInURL() throws {
        let error = try #require(throws: LedgerError.self) {
            _ = try PostgresLedgerConfiguration(
                url: "postgres://meshca:s3cret@db/ledger", passwordFile: nil, environment: [:])
        }
        #expect(error.code == .cannotOpen)
        #expect(!error.message.contains("s3cret"))
        for place in ["password file", "PGPASSWORD", "pgpass"] { #expect(error.message.contains(place)) }
    }

    @Test("An unknown sslmode, an unknown option and a verify mode without a readable root certificate are refused")
    func refusals() throws {
        for (url, named) in [
            ("postgres://m@db/l?sslmode=strict", "sslmode 'strict'"),
            ("postgres://m@db/l?sslcompression=1", "sslcompression"),
            ("postgres://m@db/l?sslmode=verify-full&sslrootcert=/nonexistent/root.pem", "/nonexistent/root.pem"),
            ("mysql://m@db/l", "not a PostgreSQL URL"),
        ] {
            let error = try #require(throws: LedgerError.self) {
                _ = try PostgresLedgerConfiguration(url: url, passwordFile: nil, environment: ["HOME": "/nonexistent"])
            }
            #expect(error.message.contains(named), "\(error.message)")
            #expect(error.message.contains("To fix it"))
        }
    }

    @Test("require with a root certificate verifies it, as libpq does; system trust is accepted")
    func requireWithRoot() async throws {
        try await TemporaryDirectory.with("tls") { directory in
            try directory.write("root.pem", "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
            let configuration = try PostgresLedgerConfiguration(
                url: "postgres://m@db/l?sslmode=require&sslrootcert=\(directory.file("root.pem"))", passwordFile: nil,
                environment: [:])
            #expect(configuration.sslMode == .verifyCA)
        }
        let system = try PostgresLedgerConfiguration(
            url: "postgres://m@db/l?sslmode=verify-full&sslrootcert=system", passwordFile: nil, environment: [:])
        #expect(system.sslMode == .verifyFull)
    }

    @Test("The password comes from the file, else PGPASSWORD, else the first matching .pgpass line")
    func passwordSources() async throws {
        try await TemporaryDirectory.with("pgpass") { directory in
            try directory.write("file", "from-file\n")
            try directory.write(
                "pgpass",
                "other:5432:*:meshca:wrong-host\n# a comment\ndb:5432:ledger:meshca:pa\\:ss\n*:*:*:*:fallback\n")
            chmod(directory.file("pgpass"), 0o600)
            let url = "postgres://meshca@db/ledger"
            let environment = ["PGPASSFILE": directory.file("pgpass")]
            #expect(try PostgresLedgerConfiguration(url: url, passwordFile: directory.file("file"), environment: environment).password == "from-file")
            #expect(try PostgresLedgerConfiguration(url: url, passwordFile: nil, environment: environment.merging(["PGPASSWORD": "env"]) { $1 }).password == "env")
            #expect(try PostgresLedgerConfiguration(url: url, passwordFile: nil, environment: environment).password == "pa:ss")
            #expect(try PostgresLedgerConfiguration(url: "postgres://x@y/z", passwordFile: nil, environment: environment).password == "fallback")

            chmod(directory.file("pgpass"), 0o644)
            let error = try #require(throws: LedgerError.self) {
                _ = try PostgresLedgerConfiguration(url: url, passwordFile: nil, environment: environment)
            }
            #expect(error.message.contains("chmod 0600 \(directory.file("pgpass"))"))
        }
    }
}
