import Logging
import MeshCACore
import MeshCAIO
import NIOHTTP1

extension MonitoringServer {
    /// The CA's monitoring server (istiod's port 15014); nothing is bound until ``run()``.
    ///
    /// | Route | Answer |
    /// |---|---|
    /// | `GET /metrics` | 200, ``CAMetrics/exposition()`` as `text/plain; version=0.0.4` |
    /// | `GET /healthz` | 200 `ok` while the process runs |
    /// | `GET /readyz` | 200 `ready`, or 503 `not ready: <reason>` while the readiness closure returns a reason |
    /// | `GET /crl` | 200, the signing CA's CRL as DER, `application/pkix-crl` (RFC 5280 §4.2.1.13); 503 before the first |
    /// | `GET /crl.pem` | 200, the same CRL as PEM (`-----BEGIN X509 CRL-----`), then the old root's during a rotation |
    ///
    /// - Parameter readiness: Called on every `GET /readyz`, on a NIO thread, so it must be quick and must
    ///   not block. Returns `nil` when the daemon is ready, else a short reason such as `ledger not open`.
    /// - Parameter crl: Called on every `GET /crl` and `GET /crl.pem`, on a NIO thread (quick, no blocking): the
    ///   CRL to serve, or nil while none is published. Without it, those paths answer 404.
    /// - Parameter limits: Timeouts and the connection cap (`handshake-timeout`, `idle-timeout`, `max-connections`).
    /// - Parameter crlPEM: When given, `GET /crl.pem` serves its text instead of `crl`'s PEM: every CRL
    ///   published, which during a root rotation's overlap includes the old root's.
    public convenience init(
        host: String,
        port: Int,
        metrics: CAMetrics,
        readiness: @escaping @Sendable () -> String?,
        crl: (@Sendable () -> CertificateRevocationList?)? = nil,
        crlPEM: (@Sendable () -> String?)? = nil,
        limits: ConnectionLimits = .defaults,
        logger: Logger
    ) {
        var routes: [String: MonitoringRoute] = [
            "/metrics": { .ok(metrics.exposition(), contentType: "text/plain; version=0.0.4; charset=utf-8") },
            "/healthz": { .ok("ok\n") },
            "/readyz": {
                readiness().map { MonitoringResponse(.serviceUnavailable, "not ready: \($0)\n") } ?? .ok("ready\n")
            },
        ]
        if let crl {
            let unpublished = MonitoringResponse(.serviceUnavailable, "no CRL published yet; retry in a few seconds\n")
            routes["/crl"] = {
                crl().map { .ok(bytes: $0.derBytes, contentType: "application/pkix-crl") } ?? unpublished
            }
            routes["/crl.pem"] = {
                (crlPEM?() ?? crl()?.pem).map { .ok($0, contentType: "application/x-pem-file") } ?? unpublished
            }
        }
        // One line per route. The closures run on a NIO thread for every request.
        self.init(
            host: host, port: port, routes: routes, setting: "monitoring",
            bindHint: "Set --monitoring / MESHCA_MONITORING to a free HOST:PORT, e.g. 127.0.0.1:15014.", limits: limits,
            limitHint: "max-connections", logger: logger)
    }
}
