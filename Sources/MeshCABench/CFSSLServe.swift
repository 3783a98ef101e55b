import Dispatch
import Foundation
import MeshCACore
import MeshCAErrors
import MeshCATestSupport
import Synchronization
import X509
import MeshCAPlatform

/// Phase 3: the peer a user could install instead, `cfssl serve` (Debian's golang-cfssl,
/// 1.2.0+git20160825), with its SQLite certificate database, given the same CSRs at the same
/// concurrency levels over HTTP (`POST /api/v1/cfssl/sign`), from this same process.
///
/// Setup, all at run time: an ECDSA P-256 root from `cfssl gencert -initca`; a signing profile with
/// meshca's default lifetime (24h) and usages; and the certificate database created with the schema of
/// cfssl's `certdb/sqlite/migrations/001_CreateCertificates.sql` (the Debian package ships no migration
/// files). The database gets the same durability as meshca's ledger: WAL journal and synchronous=FULL,
/// so each recorded certificate costs one fsync of the WAL. cfssl writes the row before it answers, so
/// both CAs keep a record of everything they hand out.
///
/// cfssl 1.2 copies no URI SANs from a CSR, so its certificates lack the SPIFFE ID (slightly less to encode).
final class CFSSLServe: Sendable {
    let process: BackgroundProcess
    let port: Int
    let database: String
    /// Every serial received so far (decimal, as cfssl's database keeps them).
    private let recorded = Mutex<Set<String>>([])

    private init(process: BackgroundProcess, port: Int, database: String) {
        self.process = process
        self.port = port
        self.database = database
    }

    /// The cfssl executable: `explicit`, else `cfssl` on PATH, else installed with apt-get when `install` allows.
    static func locate(explicit: String?, install: Bool) throws -> String? {
        if let explicit { return explicit }
        if let found = which("cfssl") { return found }
        guard install else { return nil }
        print("cfssl is not installed; installing the Debian package golang-cfssl (apt-get install -y golang-cfssl)")
        var attempt = try Command.runBlocking("apt-get", ["install", "-y", "-qq", "golang-cfssl"], environment: ["DEBIAN_FRONTEND": "noninteractive", "PATH": path])
        if attempt.status != 0 {
            _ = try Command.runBlocking("apt-get", ["update", "-qq"], environment: ["PATH": path])
            attempt = try Command.runBlocking("apt-get", ["install", "-y", "-qq", "golang-cfssl"], environment: ["DEBIAN_FRONTEND": "noninteractive", "PATH": path])
        }
        guard attempt.status == 0, let found = which("cfssl") else {
            throw BenchError(.missingTool, "Could not install golang-cfssl (apt-get said: \(attempt.stderr.suffix(300))). Install it as root, pass --cfssl PATH, or run with --skip-cfssl.")
        }
        return found
    }

    /// Makes a CA, a signing profile and a certificate database in `directory`, then starts `cfssl serve`.
    static func start(binary: String, directory: TemporaryDirectory) async throws -> CFSSLServe {
        try makeCA(binary: binary, directory: directory)
        let database = directory.file("certs.db")
        try createDatabase(at: database)
        let dbConfig: [String: Any] = ["driver": "sqlite3", "data_source": "file:\(database)?_journal_mode=WAL&_sync=FULL&_busy_timeout=10000"]
        try JSONSerialization.data(withJSONObject: dbConfig).write(to: URL(fileURLWithPath: directory.file("db-config.json")))
        let port = try freePort()
        let process = try BackgroundProcess(binary, [
            "serve", "-address", "127.0.0.1", "-port", String(port), "-ca", directory.file("ca.pem"), "-ca-key", directory.file("ca-key.pem"),
            "-config", directory.file("config.json"), "-db-config", directory.file("db-config.json"), "-loglevel", "2",
        ])
        let deadline = ContinuousClock.now + .seconds(30)
        while (try? HTTPConnection(host: "127.0.0.1", port: port)) == nil {
            guard process.isRunning, ContinuousClock.now < deadline else {
                process.terminate()
                throw BenchError(.toolFailed, "cfssl serve did not start listening on 127.0.0.1:\(port): \(process.errorOutput.suffix(500))")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return CFSSLServe(process: process, port: port, database: database)
    }

    /// An ECDSA P-256 root (`cfssl gencert -initca`) in ca.pem and ca-key.pem, and the signing profile in config.json.
    static func makeCA(binary: String, directory: TemporaryDirectory) throws {
        try directory.write("ca-csr.json", #"{"CN": "meshca-bench cfssl root", "key": {"algo": "ecdsa", "size": 256}, "names": [{"O": "cluster.local"}]}"#)
        let made = try Command.runBlocking(binary, ["gencert", "-initca", "-loglevel", "5", directory.file("ca-csr.json")])
        guard made.status == 0, let output = try JSONSerialization.jsonObject(with: Data(made.stdout.utf8)) as? [String: Any],
            let cert = output["cert"] as? String, let key = output["key"] as? String
        else { throw BenchError(.toolFailed, "cfssl gencert -initca failed: \(made.stderr.suffix(500))") }
        try directory.write("ca.pem", cert)
        try directory.write("ca-key.pem", key)
        try directory.write(
            "config.json",
            #"{"signing": {"default": {"expiry": "24h", "usages": ["digital signature", "server auth", "client auth"]}}}"#
        )
    }

    /// Creates cfssl's certificate database in WAL mode.
    static func createDatabase(at path: String) throws {
        // The certificates table and index of cfssl's certdb/sqlite/migrations/001_CreateCertificates.sql
        // (cloudflare/cfssl), which the Debian package does not ship.
        let schema = """
            PRAGMA journal_mode = WAL;
            CREATE TABLE certificates (
              serial_number            blob NOT NULL,
              authority_key_identifier blob NOT NULL,
              ca_label                 blob,
              status                   blob NOT NULL,
              reason                   int,
              created_at               timestamp,
              expiry                   timestamp,
              revoked_at               timestamp,
              pem                      blob NOT NULL,
              PRIMARY KEY(serial_number, authority_key_identifier)
            );
            CREATE INDEX certificates_created_at ON certificates (created_at);
            CREATE INDEX certificates_revoked_at ON certificates (revoked_at);
            """
        let created = try SQLiteShell.run(database: path, schema)
        guard created.contains("wal") else { throw BenchError(.toolFailed, "could not put cfssl's database in WAL mode: \(created)") }
    }

    /// Sends each CSR (JSON-encoded before timing starts) with `level` requests in flight, one HTTP/1.1
    /// keep-alive connection and one thread per worker.
    func run(level: Int, csrs: [String]) async throws -> LevelResult {
        let bodies = try csrs.map { try [UInt8](JSONSerialization.data(withJSONObject: ["certificate_request": $0])) }
        let port = self.port
        var result = try await LevelResult.measure(concurrency: level, serverPID: process.pid, serial: Self.serial(ofResponse:)) {
            await Self.onThreads(level) { worker in
                var done: [LevelResult.Outcome] = []
                let connection: HTTPConnection
                do {
                    connection = try HTTPConnection(host: "127.0.0.1", port: port)
                } catch {
                    return [.failure(error as? BenchError ?? BenchError(.requestFailed, "\(error)"))]
                }
                for index in stride(from: worker, to: bodies.count, by: level) {
                    done.append(Self.sign(bodies[index], on: connection))
                }
                return done
            }
        }
        let expected = recorded.withLock { seen in
            seen.formUnion(result.serials.map(SerialText.decimal(fromHex:)))
            return seen
        }
        let inDatabase = Set(try SQLiteShell.run(database: database, "SELECT serial_number FROM certificates;").split(separator: "\n").map(String.init))
        result.recordedExactly = inDatabase == expected && result.serials.count == csrs.count
        return result
    }

    /// One sign request, timed from sending until the whole response has arrived.
    private static func sign(_ body: [UInt8], on connection: HTTPConnection) -> LevelResult.Outcome {
        let begin = ContinuousClock.now
        do {
            let (status, response) = try connection.post("/api/v1/cfssl/sign", json: body)
            let elapsed = ContinuousClock.now - begin
            guard status == 200 else { return .failure(BenchError(.badResponse, "HTTP \(status): \(String(decoding: response.prefix(300), as: UTF8.self))")) }
            return .success((String(decoding: response, as: UTF8.self), elapsed.milliseconds))
        } catch {
            return .failure(error as? BenchError ?? BenchError(.requestFailed, "\(error)"))
        }
    }

    /// The serial of the certificate in a sign response (`{"success": true, "result": {"certificate": "..."}}`).
    static func serial(ofResponse response: String) throws -> String {
        let object = try JSONSerialization.jsonObject(with: Data(response.utf8)) as? [String: Any]
        guard let result = object?["result"] as? [String: Any], let pem = result["certificate"] as? String,
            let certificate = try Certificate.parseAll(pem: pem).first
        else { throw BenchError(.badResponse, "no certificate in the response: \(response.prefix(300))") }
        return certificate.serialHex
    }

    /// Runs `work(worker)` for workers 0..<count, each on its own thread, and gathers their outcomes.
    private static func onThreads(_ count: Int, _ work: @escaping @Sendable (Int) -> [LevelResult.Outcome]) async -> [LevelResult.Outcome] {
        let gathered = Mutex<[LevelResult.Outcome]>([])
        let group = DispatchGroup()
        for worker in 0..<count {
            group.enter()
            let thread = Thread {
                let outcomes = work(worker)
                gathered.withLock { $0 += outcomes }
                group.leave()
            }
            thread.start()
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            group.notify(queue: .global()) { continuation.resume() }
        }
        return gathered.withLock { $0 }
    }

    /// The rows in cfssl's certificate database.
    func rowCount() throws -> Int {
        let text = try SQLiteShell.run(database: database, "SELECT count(*) FROM certificates;").trimmingCharacters(in: .whitespacesAndNewlines)
        guard let count = Int(text) else { throw BenchError(.badResponse, "sqlite3 answered \(text) to a row count of cfssl's database") }
        return count
    }

    /// Peak resident memory so far (VmHWM), in KiB.
    var peakRSS: Int? { ProcessStats.memory(pid: process.pid, field: "VmHWM") }

    /// Private resident memory now (RssAnon), in KiB.
    var anonymousRSS: Int? { ProcessStats.memory(pid: process.pid, field: "RssAnon") }

    func stop() { process.terminate() }

    private static var path: String { ProcessInfo.processInfo.environment["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin" }

    /// The full path of `name` on PATH.
    static func which(_ name: String) -> String? {
        path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// A TCP port on 127.0.0.1 that was free a moment ago.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw BenchError(.setupFailed, "could not find a free TCP port: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// Big-endian unsigned integers in text: cfssl's database keeps serials in decimal, certificates in bytes.
enum SerialText {
    /// The decimal text of the unsigned integer written as hex digits.
    static func decimal(fromHex hex: String) -> String {
        var digits = hex.compactMap { $0.hexDigitValue }
        var decimal: [Character] = []
        while digits.contains(where: { $0 != 0 }) {
            var remainder = 0
            for index in digits.indices {
                let value = remainder * 16 + digits[index]
                digits[index] = value / 10
                remainder = value % 10
            }
            decimal.append(Character(String(remainder)))
        }
        return decimal.isEmpty ? "0" : String(decimal.reversed())
    }
}
