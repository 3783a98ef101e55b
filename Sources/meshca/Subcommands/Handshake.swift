import ArgumentParser
import Foundation
import MeshCADaemon
import MeshCAHarness

/// `meshca handshake`: run mTLS between two workloads' credential files (or against a real peer) on the
/// system OpenSSL, and explain what happened.
struct Handshake: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "handshake",
        abstract: "Run an mTLS handshake between two workloads' files, or against a real peer, and explain the result.",
        discussion: """
            Each DIR holds cert-chain.pem, key.pem and root-cert.pem. Three shapes:
              --server DIR [--client DIR|plaintext]   both sides here, over 127.0.0.1 (no --client: no client certificate)
              --connect HOST:PORT --certs DIR         be the client of a real server (a workload, openssl s_server)
              --listen HOST:PORT --certs DIR          be the server for real clients until Ctrl-C, or --once
            Each side verifies its peer against its own root-cert.pem with OpenSSL, then checks the SPIFFE ID: \
            exactly one URI SAN, the trust domain of its own identity, and the expected ID when given. A failure \
            prints `cause:`, `fix:` and the raw OpenSSL reason. Exit status: 0 when the handshake succeeded and \
            every expectation held (or PERMISSIVE accepted plaintext), 1 when not, 64 for a usage error.
            """
    )

    @Option(
        help: ArgumentHelp(
            "The server's credentials directory, or `plaintext` for a server without TLS.", valueName: "dir"))
    var server: String?

    @Option(
        help: ArgumentHelp(
            "The client's credentials directory, or `plaintext`. Omit it for a client without certificate.",
            valueName: "dir"))
    var client: String?

    @Option(help: ArgumentHelp("Be the client of a real server at this address.", valueName: "host:port"))
    var connect: String?

    @Option(
        help: ArgumentHelp("Be the server for real clients on this address (port 0 picks one).", valueName: "host:port")
    )
    var listen: String?

    @Option(help: ArgumentHelp("The credentials directory for --connect or --listen.", valueName: "dir"))
    var certs: String?

    @Option(
        help: ArgumentHelp(
            "The server's mode: strict (mTLS only) or permissive (also plaintext and clients without certificate).",
            valueName: "mode"))
    var mode: String = "strict"

    @Option(
        name: .customLong("expect-server-id"),
        help: ArgumentHelp("Accept only a server with this SPIFFE ID.", valueName: "spiffe-id"))
    var expectServerID: String?

    @Option(
        name: .customLong("expect-client-id"),
        help: ArgumentHelp("Accept only a client with this SPIFFE ID.", valueName: "spiffe-id"))
    var expectClientID: String?

    @Option(help: ArgumentHelp("The bound on connecting and on each read and write, e.g. 5s.", valueName: "duration"))
    var timeout: String = "5s"

    @Option(
        help: ArgumentHelp(
            "Also refuse a peer whose certificate this CRL revokes (PEM or DER; `meshca crl`, or /crl.pem of meshca serve). The CRL must be current and from the peer's CA.",
            valueName: "file"))
    var crl: String?

    @Flag(help: "With --listen: serve one connection, then exit with its result.")
    var once = false

    @Flag(help: "Print the report as JSON (with --listen: one JSON object per line).")
    var json = false

    func validate() throws {
        let shapes = [server, connect, listen].compactMap { $0 }.count
        guard shapes == 1 else {
            throw ValidationError(
                "Give exactly one of --server DIR (with --client), --connect HOST:PORT or --listen HOST:PORT.")
        }
        _ = try parsedMode()
        _ = try parseDuration(timeout, flag: "--timeout")
        _ = try usage("--expect-server-id: ") { try CommandInput.spiffeID(expectServerID) }
        _ = try usage("--expect-client-id: ") { try CommandInput.spiffeID(expectClientID) }
        if let server {
            if certs != nil {
                throw ValidationError("--certs is for --connect and --listen; with --server, give --client DIR.")
            }
            if once { throw ValidationError("--once is for --listen.") }
            if server == "plaintext" && (client ?? "") == "plaintext" {
                throw ValidationError(
                    "--server plaintext and --client plaintext leave no TLS to test; give one side a directory.")
            }
            if server == "plaintext" && expectServerID != nil {
                throw ValidationError("--expect-server-id needs a TLS server; --server plaintext has no identity.")
            }
            if client == "plaintext" && expectClientID != nil {
                throw ValidationError("--expect-client-id needs a TLS client; --client plaintext has no identity.")
            }
        } else {
            let flag = connect != nil ? "--connect" : "--listen"
            guard certs != nil else {
                throw ValidationError(
                    "\(flag) needs --certs DIR (a directory with cert-chain.pem, key.pem, root-cert.pem).")
            }
            if client != nil { throw ValidationError("--client is for --server; with \(flag), give --certs DIR.") }
            _ = try parsedAddress(connect ?? listen ?? "", flag: flag, allowZero: listen != nil)
            if connect != nil {
                if expectClientID != nil || once {
                    throw ValidationError("--expect-client-id and --once are for --listen and --server.")
                }
                if mode != "strict" {
                    throw ValidationError("--mode is the server's; with --connect the server is the real peer.")
                }
            } else if expectServerID != nil {
                throw ValidationError(
                    "--expect-server-id is for --connect and --server; with --listen this process is the server.")
            }
        }
    }

    func run() throws {
        let timeout = try parseDuration(timeout, flag: "--timeout")
        let revocations: RevocationList?
        do {
            // Loaded for the verifying side(s): the client with --connect, the server with --listen, both otherwise.
            revocations = try crl.map {
                try RevocationList.load(from: CommandInput.absolutePath($0), role: listen != nil ? .server : .client)
            }
        } catch let failure as HandshakeFailure {
            printError(
                "cause:  \(failure.cause)\nfix:    \(failure.fix)"
                    + (failure.rawReason.isEmpty ? "" : "\nraw:    \(failure.rawReason)"))
            throw ExitCode.failure
        }
        let expectedServerID = try usage("--expect-server-id: ") { try CommandInput.spiffeID(expectServerID) }
        let expectedClientID = try usage("--expect-client-id: ") { try CommandInput.spiffeID(expectClientID) }
        if let listen, let certs {
            try serve(listen, certificates: CommandInput.absolutePath(certs), timeout: timeout, revocations: revocations)
            return
        }
        let report: HandshakeReport
        if let connect, let certs {
            let (host, port) = try parsedAddress(connect, flag: "--connect", allowZero: false)
            report = ClientHandshake(
                host: host, port: port, certificates: CommandInput.absolutePath(certs),
                expectedServerID: expectedServerID, timeout: timeout, revocations: revocations
            ).run()
        } else {
            let serverSetup: LoopbackHandshake.Server =
                server == "plaintext" ? .plaintext : .credentials(directory: CommandInput.absolutePath(server ?? "."))
            let clientSetup: LoopbackHandshake.Client =
                switch client {
                case nil: .noCertificate
                case "plaintext": .plaintext
                case let directory?: .credentials(directory: CommandInput.absolutePath(directory))
                }
            report = LoopbackHandshake(
                server: serverSetup, client: clientSetup, mode: try parsedMode(),
                expectedServerID: expectedServerID, expectedClientID: expectedClientID, timeout: timeout,
                revocations: revocations
            ).run()
        }
        emit(json ? report.jsonText() + "\n" : report.renderText())
        if !report.isSuccess { throw ExitCode.failure }
    }

    /// `--listen`: serves until SIGINT/SIGTERM (or one connection with --once), printing each report.
    private func serve(_ address: String, certificates: String, timeout: Duration, revocations: RevocationList?) throws {
        let (host, port) = try parsedAddress(address, flag: "--listen", allowZero: true)
        let expectedClientID = try usage("--expect-client-id: ") { try CommandInput.spiffeID(expectClientID) }
        let mode = try parsedMode()
        let listener: HandshakeListener
        do {
            listener = try HandshakeListener(
                host: host, port: port, certificates: certificates, mode: mode, expectedClientID: expectedClientID,
                timeout: timeout, revocations: revocations
            )
        } catch let failure as HandshakeFailure {
            printError(
                "cause:  \(failure.cause)\nfix:    \(failure.fix)"
                    + (failure.rawReason.isEmpty ? "" : "\nraw:    \(failure.rawReason)"))
            throw ExitCode.failure
        }
        let banner =
            "listening on \(listener.address) (\(mode), files in \(certificates)); "
            + (once ? "serving one connection" : "Ctrl-C to stop")
        if json { printError(banner) } else { emit(banner + "\n") }
        let signals = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { listener.stop() }
            source.resume()
            return source
        }
        var lastSucceeded = true
        listener.serve(limit: once ? 1 : nil) { report in
            lastSucceeded = report.isSuccess
            emit(json ? report.jsonText(pretty: false) + "\n" : report.renderText() + "\n")
        }
        for source in signals { source.cancel() }
        if once && !lastSucceeded { throw ExitCode.failure }
    }

    private func parsedMode() throws -> HandshakeMode {
        guard let parsed = HandshakeMode(parsing: mode) else {
            throw ValidationError("--mode must be strict or permissive, not \"\(mode)\".")
        }
        return parsed
    }

    /// `host:port`, `[v6]:port`; the port must be a number (0 only where allowed).
    private func parsedAddress(_ text: String, flag: String, allowZero: Bool) throws -> (String, UInt16) {
        let example =
            "\(flag) takes HOST:PORT, e.g. 127.0.0.1:\(allowZero ? "0" : "8443") or [::1]:8443, not \"\(text)\"."
        guard let address = CommandInput.hostPort(text), !address.host.isEmpty,
            let port = UInt16(exactly: address.port), allowZero || port > 0
        else { throw ValidationError(example) }
        return (address.host, port)
    }

    /// Writes to standard output unbuffered, so a watching process sees each report as it happens.
    private func emit(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }
}
