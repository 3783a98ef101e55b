import Foundation
import Logging
import MeshCAIO
import MeshCALedger
import ServiceLifecycle

/// Refreshes the expiry gauges (``CAMetrics/publish(_:)``) from ``Doctor/expiryFacts(now:ledger:)`` at start
/// and then every `interval`, so a root rotation, a renewed serving certificate or an agent that stopped
/// renewing shows on `/metrics` within a minute.
///
/// It reads through a connection of its own: the daemon's ledger runs every query on the queue its group
/// commits use, and a scan of a large ledger there would hold up issuance.
struct ExpiryGaugeRefresh: Service {
    let doctor: Doctor
    let metrics: CAMetrics
    let logger: Logger
    var interval: Duration = .seconds(60)
    var time: ServiceTime = .system

    func run() async throws {
        var ledger: SQLiteLedger?
        await time.every(interval, immediately: true) { now in
            if ledger == nil { ledger = try? SQLiteLedger(path: doctor.directory.ledgerPath) }
            let facts = await doctor.expiryFacts(now: now, ledger: ledger)
            metrics.publish(facts)
            if facts.expiringIdentities == nil {
                logger.warning(
                    "could not count identities with overdue renewals for meshca_identities_expiring; run meshca doctor"
                )
            }
        }
    }
}
