import Foundation
import Prometheus
import Synchronization

/// The expiry gauges: one series per CA and serving certificate, and the number of identities whose renewal
/// is overdue. Filled from ``Doctor/expiryFacts(now:ledger:)`` so they say what `meshca doctor` says.
extension CAMetrics {
    /// `meshca_certificate_expiry_timestamp_seconds`.
    static let certificateExpiryName = "meshca_certificate_expiry_timestamp_seconds"
    /// `meshca_identities_expiring`.
    static let identitiesExpiringName = "meshca_identities_expiring"

    /// Publishes `facts`: `meshca_certificate_expiry_timestamp_seconds{role, fingerprint}` (the notAfter of each
    /// certificate, in Unix seconds; `role` is `root`, `intermediate`, `signing` or `serving`, `fingerprint` the
    /// certificate's lowercase SHA-256) and `meshca_identities_expiring`.
    ///
    /// Series of certificates no longer present (a retired root, a renewed serving certificate) are removed, so
    /// an alert on the minimum never fires on a certificate that is gone. When the identity count is unknown
    /// (the ledger could not be read) the gauge keeps its last value.
    public func publish(_ facts: ExpiryFacts) {
        let expiry = MetricNameDescriptor(
            metricName: Self.certificateExpiryName, unitName: "",
            helpText: "The Unix time, in seconds, at which a CA certificate (root, intermediate, signing) or the newest serving certificate expires.")
        var current = Set<[String]>()
        for fact in facts.certificates {
            let labels = [fact.role, fact.fingerprint]
            current.insert(labels)
            registry.makeGauge(descriptor: expiry, labels: [("role", fact.role), ("fingerprint", fact.fingerprint)])
                .set(fact.notAfter.timeIntervalSince1970)
        }
        let gone = publishedExpirySeries.withLock { published in
            defer { published = current }
            return published.subtracting(current)
        }
        for labels in gone {
            registry.unregisterGauge(registry.makeGauge(descriptor: expiry, labels: [("role", labels[0]), ("fingerprint", labels[1])]))
        }
        if let count = facts.expiringIdentities {
            let identities = MetricNameDescriptor(
                metricName: Self.identitiesExpiringName, unitName: "",
                helpText: "Identities whose newest certificate runs out within the doctor's window (30d) or ran out in it, with its renewal overdue (see meshca doctor).")
            registry.makeGauge(descriptor: identities).set(Int64(count))
        }
    }
}
