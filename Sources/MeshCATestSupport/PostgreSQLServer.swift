import Foundation
import Synchronization
import MeshCAPlatform

/// A PostgreSQL server for tests: the distribution's server binaries (`/usr/lib/postgresql/*/bin`, package
/// `postgresql`), `initdb` into a temporary directory and `pg_ctl start` on a free loopback port, with `trust`
/// authentication on loopback except for one role, ``passwordUser``, which must give its password (SCRAM).
///
/// PostgreSQL refuses to run as root: when the tests run as root, `initdb` and `pg_ctl` run as the `postgres`
/// user (`runuser -u postgres --`) on a data directory that user owns.
///
/// ``shared`` is started once per test process and stopped when it exits (`pg_ctl stop -m immediate`, from an
/// `atexit` handler, and from a watchdog process that waits for the test process's end, so even a crashed test
/// process leaves no server behind). Each test takes a database of its own with ``createDatabase()``. A test that
/// stops the server (to see the ledger lose its connection) starts a private one with ``start()`` and stops it.
///
/// `initdb` runs once per test process, into a template directory that every server's data directory is copied from
/// (a copy takes milliseconds; `initdb` a second and a half of CPU). The template goes with the shared server's
/// directory, by the same exit handler and watchdog.
public final class PostgreSQLServer: Sendable {
    /// The loopback address the server listens on.
    public let host = "127.0.0.1"
    /// The port it listens on.
    public let port: Int
    /// The superuser tests connect as (no password).
    public let superuser = "postgres"
    /// A role that must log in with ``password`` (SCRAM), for tests of password authentication.
    public let passwordUser = "meshca_password"
    /// ``passwordUser``'s password.
    public let password = "correct horse battery staple"
    /// The data directory (also the Unix socket directory).
    public let dataDirectory: String
    /// The temporary directory holding it, removed by ``remove()`` and at exit.
    private let directory: String
    private let binDirectory: String
    private let runAsPostgres: Bool
    /// Whether the server flushes its WAL to disk (`fsync=on`); tests run without, benchmarks with.
    public let fsync: Bool
    private let counter = Mutex(0)

    /// Whether the server binaries are installed; tests that need PostgreSQL are skipped, saying so, when not.
    public static var isAvailable: Bool { binDirectory() != nil }

    /// Why PostgreSQL tests are skipped when ``isAvailable`` is false.
    public static let unavailableReason =
        "PostgreSQL is not installed (apt-get install postgresql; scripts/test.sh installs it)"

    /// The server shared by every test of this process, started by the first test that asks.
    public static var shared: PostgreSQLServer {
        get async throws { try await sharedStart.value }
    }

    private static let sharedStart = Task<PostgreSQLServer, any Error> {
        let server = try await PostgreSQLServer.start()
        registerForExit(server)
        return server
    }

    private init(port: Int, directory: String, binDirectory: String, runAsPostgres: Bool, fsync: Bool) {
        self.port = port
        self.fsync = fsync
        self.directory = directory
        self.dataDirectory = directory + "/data"
        self.binDirectory = binDirectory
        self.runAsPostgres = runAsPostgres
    }

    /// A new server of its own in a new temporary directory; the caller stops it with ``stop()``.
    ///
    /// Tests take the default, `fsync=off` (nothing they check depends on surviving a power cut, and it is faster);
    /// a benchmark of the ledger's durability passes `fsync: true`, PostgreSQL's own default.
    public static func start(fsync: Bool = false) async throws -> PostgreSQLServer {
        guard let bin = binDirectory() else { throw BackgroundProcessError(unavailableReason) }
        let runAsPostgres = getuid() == 0
        let template = try await templateData.value
        let directory = try directoryForServer(runAsPostgres: runAsPostgres)
        let data = directory.file("data")
        let port = try freePort()
        let server = PostgreSQLServer(
            port: port, directory: directory.path, binDirectory: bin, runAsPostgres: runAsPostgres, fsync: fsync)
        // `cp -a` keeps the owner (postgres) and the 0700 mode initdb gave the template.
        let copied = try spawnAndWait(["/bin/cp", "-a", template, data], log: directory.file("tools.log"))
        guard copied == 0 else { throw BackgroundProcessError("cp -a \(template) \(data) failed (status \(copied))") }
        let hba = """
            host all meshca_password 127.0.0.1/32 scram-sha-256
            host all all 127.0.0.1/32 trust
            local all all trust

            """
        try hba.write(toFile: data + "/pg_hba.conf", atomically: false, encoding: .utf8)
        try await server.startServer()
        try await server.psql(
            "CREATE ROLE \(server.passwordUser) LOGIN PASSWORD '\(server.password)'", database: "postgres")
        return server
    }

    /// The candidates ``freePort()`` hands out in turn, counted from a start chosen by the process id.
    private static let portsTaken = Atomic<Int>(0)

    /// A loopback port free now, below Linux's ephemeral range (32768-60999 by default): no socket whose port the
    /// kernel chooses (a test's server on port 0, any client's connection) can take it, so a server a test stops
    /// gets its port back when it starts again. Each call tries the next candidate, so two servers of one process
    /// never get the same one.
    static func freePort() throws -> Int {
        let first = Int(getpid())
        for _ in 0..<1000 {
            let candidate = 20000 + (first + portsTaken.add(1, ordering: .relaxed).oldValue) % 12000
            guard let (socket, _) = try? LoopbackSocket.make(port: candidate) else { continue }
            close(socket)
            return candidate
        }
        throw BackgroundProcessError("no free loopback port between 20000 and 31999 for a PostgreSQL server")
    }

    /// A new temporary directory for a server, owned by `postgres` when the tests run as root.
    private static func directoryForServer(runAsPostgres: Bool) throws -> TemporaryDirectory {
        let directory = try TemporaryDirectory("postgres")
        if runAsPostgres {
            try FileManager.default.setAttributes([.ownerAccountName: "postgres", .posixPermissions: 0o700], ofItemAtPath: directory.path)
        }
        return directory
    }

    /// The data directory `initdb` made once for this process, which ``start(fsync:)`` copies.
    private static let templateData = Task<String, any Error> {
        guard let bin = binDirectory() else { throw BackgroundProcessError(unavailableReason) }
        let runAsPostgres = getuid() == 0
        let directory = try directoryForServer(runAsPostgres: runAsPostgres)
        templateDirectory.withLock { $0 = directory.path }
        atexit {
            if let directory = PostgreSQLServer.templateDirectory.withLock({ $0 }) {
                try? FileManager.default.removeItem(atPath: directory)
            }
        }
        let template = PostgreSQLServer(port: 0, directory: directory.path, binDirectory: bin, runAsPostgres: runAsPostgres, fsync: false)
        try await template.tool(
            "initdb", ["-D", template.dataDirectory, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"])
        return template.dataDirectory
    }

    /// Starts the server (again, after ``stop()``) and waits until it accepts connections.
    public func startServer() async throws {
        try await tool("pg_ctl", [
            "start", "-w", "-D", dataDirectory, "-l", dataDirectory + "/server.log",
            "-o", "-p \(port) -k \(dataDirectory) -c listen_addresses=\(host) -c fsync=\(fsync ? "on" : "off")",
        ])
    }

    /// Stops the server at once (`pg_ctl stop -m immediate`): connections are cut as in a crash.
    public func stop() async throws {
        try await tool("pg_ctl", ["stop", "-m", "immediate", "-D", dataDirectory])
    }

    /// Sends `signal` to the server and every process it started (SIGSTOP makes a server that keeps its connections
    /// open and answers nothing, as behind a network partition; SIGCONT lets it go on).
    public func signalAll(_ signal: Int32) throws {
        let pidFile = try String(contentsOfFile: dataDirectory + "/postmaster.pid", encoding: .utf8)
        guard let postmaster = pidFile.split(separator: "\n").first.flatMap({ Int32($0) }) else {
            throw BackgroundProcessError("no process id in \(dataDirectory)/postmaster.pid")
        }
        var pids = [postmaster]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry),
                let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { continue }
            // Fields after the command's closing parenthesis: state, then the parent's process id.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, Int32(fields[1]) == postmaster { pids.append(pid) }
        }
        for pid in pids { kill(pid, signal) }
    }

    /// Stops the server (when running) and deletes its directory.
    public func remove() async {
        try? await stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Creates a fresh database owned by ``passwordUser`` (so that role can connect and create tables too) and returns
    /// its name.
    public func createDatabase() async throws -> String {
        let name = "meshca_test_\(getpid())_\(counter.withLock { $0 += 1; return $0 })"
        // Owned by passwordUser: all rights on the database and (PostgreSQL 15 and later, where `public` belongs to
        // pg_database_owner) on its public schema, in one statement and one connection instead of three.
        try await psql("CREATE DATABASE \(name) OWNER \(passwordUser)", database: "postgres")
        return name
    }

    /// A `postgres://` URL for `database` as `user` (the superuser by default), without a password.
    public func url(database: String, user: String? = nil, options: String = "sslmode=disable") -> String {
        "postgres://\(user ?? superuser)@\(host):\(port)/\(database)?\(options)"
    }

    /// Runs `sql` with `psql` as the superuser on `database` and returns its unaligned output.
    ///
    /// Spawned like the server's tools (no Foundation Process, no pipes): its output goes to a file of its own.
    @discardableResult
    public func psql(_ sql: String, database: String) async throws -> String {
        let output = directory + "/psql-\(UUID().uuidString).out"
        defer { try? FileManager.default.removeItem(atPath: output) }
        let command = [
            binDirectory + "/psql", "-h", host, "-p", String(port), "-U", superuser, "-d", database, "-v",
            "ON_ERROR_STOP=1", "-At", "-c", sql,
        ]
        let status = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Int32, any Error>) in
            Thread.detachNewThread {
                continuation.resume(with: Result { try Self.spawnAndWait(command, log: output) })
            }
        }
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        guard status == 0 else { throw BackgroundProcessError("psql \(sql) failed (status \(status)): \(text)") }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Runs one of the server's tools, as `postgres` when this process is root, its output appended to `tools.log`
    /// in the server's directory.
    ///
    /// Spawned with posix_spawn and reaped with a blocking waitpid on a thread of its own, not with Foundation's
    /// Process: `pg_ctl start` leaves a daemon behind, and Process never noticed the exit of the `runuser` above it
    /// (the child stayed a zombie and the wait never ended).
    private func tool(_ name: String, _ arguments: [String]) async throws {
        let path = binDirectory + "/" + name
        let command = runAsPostgres ? ["/usr/sbin/runuser", "-u", "postgres", "--", path] + arguments : [path] + arguments
        let log = directory + "/tools.log"
        let status = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Int32, any Error>) in
            Thread.detachNewThread {
                continuation.resume(with: Result { try Self.spawnAndWait(command, log: log) })
            }
        }
        guard status == 0 else {
            let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            let server = (try? String(contentsOfFile: dataDirectory + "/server.log", encoding: .utf8)) ?? ""
            throw BackgroundProcessError("\(name) \(arguments.joined(separator: " ")) failed (status \(status)): "
                + "\(output.suffix(2000))\(server.suffix(2000))")
        }
    }

    /// Runs `command` with standard input from /dev/null and its output appended to `log`; returns its wait status.
    private static func spawnAndWait(_ command: [String], log: String) throws -> Int32 {
        let pid = try spawn(command, input: nil, log: log)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            guard errno == EINTR else { throw BackgroundProcessError("waitpid failed: errno \(errno)") }
        }
        return status
    }

    /// Starts `command` with standard input from `input` (else /dev/null) and its output appended to `log`, with no
    /// other descriptor of this process open in it (the test runner's pipes must not live on in a server).
    private static func spawn(_ command: [String], input: Int32?, log: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let input {
            posix_spawn_file_actions_adddup2(&actions, input, 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // glibc 2.34's posix_spawn_file_actions_addclosefrom_np, which Swift's Glibc module does not declare.
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        if let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") {
            _ = unsafeBitCast(symbol, to: CloseFrom.self)(&actions, 3)
        }
        let argv = command.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, command[0], &actions, nil, argv, environ)
        guard spawned == 0 else { throw BackgroundProcessError("cannot run \(command[0]): errno \(spawned)") }
        return pid
    }

    /// The newest `/usr/lib/postgresql/N/bin` holding `initdb` and `pg_ctl`.
    private static func binDirectory() -> String? {
        let root = "/usr/lib/postgresql"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return versions.compactMap(Int.init).sorted(by: >).map { "\(root)/\($0)/bin" }.first {
            FileManager.default.isExecutableFile(atPath: $0 + "/initdb")
                && FileManager.default.isExecutableFile(atPath: $0 + "/pg_ctl")
        }
    }

    // MARK: - Stopping at exit

    /// The shared server's stop command, for the exit handler (which can capture nothing).
    private static let stopCommand = Mutex<[String]?>(nil)
    private static let stopDirectory = Mutex<String?>(nil)
    /// The template of ``templateData``, removed at exit.
    private static let templateDirectory = Mutex<String?>(nil)

    private func stopArguments() -> [String] {
        let stop = [binDirectory + "/pg_ctl", "stop", "-m", "immediate", "-D", dataDirectory]
        return runAsPostgres ? ["/usr/sbin/runuser", "-u", "postgres", "--"] + stop : stop
    }

    /// Stops `server` when this process exits normally (atexit), and, through a watchdog in a session of its own
    /// that waits for the end of a pipe only this process holds, when it dies any other way (a crash, SIGKILL, or a
    /// signal to the whole process group).
    private static func registerForExit(_ server: PostgreSQLServer) {
        let arguments = server.stopArguments()
        stopCommand.withLock { $0 = arguments }
        stopDirectory.withLock { $0 = server.directory }
        atexit {
            guard let arguments = PostgreSQLServer.stopCommand.withLock({ $0 }) else { return }
            _ = try? PostgreSQLServer.spawnAndWait(arguments, log: "/dev/null")
            if let directory = PostgreSQLServer.stopDirectory.withLock({ $0 }) {
                try? FileManager.default.removeItem(atPath: directory)
            }
        }
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { return }
        _ = fcntl(ends[1], F_SETFD, FD_CLOEXEC)
        let quoted = arguments.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        let directories = [server.directory] + (templateDirectory.withLock { $0 }.map { [$0] } ?? [])
        let script = "cat >/dev/null; \(quoted); rm -rf " + directories.map { "'\($0)'" }.joined(separator: " ")
        _ = try? spawn(["/usr/bin/setsid", "/bin/sh", "-c", script], input: ends[0], log: "/dev/null")
        // The write end stays open (close-on-exec) for the life of this process; its end is the watchdog's signal.
        close(ends[0])
    }
}
