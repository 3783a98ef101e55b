import Foundation
import MeshCACore
import MeshCAIO
import MeshCALedger
import Prometheus
import Synchronization

/// The daemon's operational metrics, beside the CA ones in `CAMetrics.swift`:
///
/// | Metric | Type | Moved by |
/// |---|---|---|
/// | `meshca_ledger_database_bytes` | gauge | ``publishLedger(_:)`` (``DaemonHealthMonitor``, every few seconds) |
/// | `meshca_ledger_wal_bytes` | gauge | ``publishLedger(_:)`` |
/// | `meshca_ledger_events` | gauge | ``publishLedger(_:)`` |
/// | `meshca_ledger_checkpoint_age_seconds` | gauge, computed at each scrape (absent before the first checkpoint) | ``publishLedger(_:)`` |
/// | `meshca_ledger_checkpoint_timestamp_seconds` | gauge, Unix seconds | ``publishLedger(_:)`` |
/// | `meshca_ledger_usable` / `meshca_ca_usable` | gauge, 1 or 0 | ``publishHealth(ledger:ca:)`` |
/// | `meshca_crl_next_update_timestamp_seconds` | gauge, Unix seconds, read at each scrape | ``publishCRL(_:)`` |
/// | `meshca_grpc_requests_total{method,code}` | counter | ``requestCompleted(method:code:)`` |
/// | `meshca_jwt_keys_age_seconds` | gauge, computed at each scrape (absent before the first fetch) | ``publishJWTKeys(fetchedAt:)`` (`jwks-url`) |
/// | `meshca_jwt_keys_refresh_failures_total` | counter | ``jwtKeysRefreshFailed()`` |
/// | `meshca_build_info{version,commit}` | gauge, always 1 | ``addProcessMetrics()`` |
/// | `process_resident_memory_bytes`, `process_open_fds`, `process_max_fds`, `process_start_time_seconds`, `process_cpu_seconds_total` | read from /proc/self at each scrape | ``addProcessMetrics()`` |
extension CAMetrics {
    private func gauge(_ name: String, _ help: String) -> Gauge {
        registry.makeGauge(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help))
    }

    /// Publishes the ledger's sizes, event count and newest checkpoint.
    public func publishLedger(_ statistics: LedgerStatistics) {
        gauge("meshca_ledger_database_bytes", "Size of the ledger's SQLite database file in bytes.")
            .set(statistics.databaseBytes)
        gauge("meshca_ledger_wal_bytes", "Size of the ledger's write-ahead log (the -wal file) in bytes.")
            .set(statistics.walBytes)
        gauge("meshca_ledger_events", "Events on the ledger's hash chain (issuances, revocations, rejections, token events).")
            .set(statistics.eventCount)
        guard let checkpoint = statistics.newestCheckpointAt else { return }
        gauge("meshca_ledger_checkpoint_timestamp_seconds", "When the newest signed checkpoint of the ledger's hash chain was made, in Unix seconds.")
            .set(checkpoint.timeIntervalSince1970)
        newestCheckpoint.withLock { $0 = checkpoint }
    }

    /// Publishes whether the last health check could read the ledger and load the CA (1) or not (0).
    public func publishHealth(ledger: Bool, ca: Bool) {
        gauge("meshca_ledger_usable", "1 when the last health check could read the ledger, else 0.").set(Int64(ledger ? 1 : 0))
        gauge("meshca_ca_usable", "1 when the last health check could load the CA files and the signing certificate is within its validity, else 0.")
            .set(Int64(ca ? 1 : 0))
    }

    /// Publishes, at every scrape, the `nextUpdate` of the CRL `current` returns (nothing while there is none).
    public func publishCRL(_ current: @escaping @Sendable () -> CertificateRevocationList?) {
        let nextUpdate = gauge(
            "meshca_crl_next_update_timestamp_seconds",
            "The nextUpdate of the CRL the daemon publishes, in Unix seconds: relying parties treat it as stale after this.")
        onScrape {
            if let crl = current() { nextUpdate.set(crl.nextUpdate.timeIntervalSince1970) }
            return ""
        }
    }

    /// Publishes, at every scrape, how old the JWT key set fetched from `jwks-url` is (nothing before the first fetch).
    public func publishJWTKeys(fetchedAt: @escaping @Sendable () -> Date?) {
        let age = gauge(
            "meshca_jwt_keys_age_seconds",
            "Seconds since the JWT keys in use were fetched from jwks-url; grows while refreshes fail (the last good set stays in use).")
        jwtKeysRefreshFailures.increment(by: Int64(0))
        let now = self.now
        onScrape {
            if let fetched = fetchedAt() { age.set(max(0, now().timeIntervalSince(fetched))) }
            return ""
        }
    }

    /// Counts a failed fetch of the JWT keys from `jwks-url`.
    public func jwtKeysRefreshFailed() {
        jwtKeysRefreshFailures.increment()
    }

    private var jwtKeysRefreshFailures: Counter {
        registry.makeCounter(
            descriptor: MetricNameDescriptor(
                metricName: "meshca_jwt_keys_refresh_failures_total", unitName: "",
                helpText: "Fetches of the JWT keys from jwks-url that failed (the last good key set stayed in use)."))
    }

    /// Counts one finished gRPC call by its full method name and final status code (`OK`, `INVALID_ARGUMENT`, ...).
    public func requestCompleted(method: String, code: String) {
        let descriptor = MetricNameDescriptor(
            metricName: "meshca_grpc_requests", unitName: "total",
            helpText: "gRPC calls handled, by method and final status code.")
        registry.makeCounter(descriptor: descriptor, labels: [("method", method), ("code", code)]).increment()
    }

    /// Adds `meshca_build_info`, the `process_*` metrics and the checkpoint age to every scrape.
    public func addProcessMetrics() {
        onScrape { [self] in
            if let checkpoint = newestCheckpoint.withLock({ $0 }) {
                gauge("meshca_ledger_checkpoint_age_seconds", "Seconds since the newest signed checkpoint of the ledger's hash chain was made.")
                    .set(now().timeIntervalSince(checkpoint).rounded(.down))
            }
            return BuildInfo.exposition() + ProcessMetrics.exposition()
        }
    }
}
