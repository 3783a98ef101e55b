import Foundation
import Logging
import MeshCAIO
import MeshCALedger
import ServiceLifecycle

/// Refreshes the expiry gauges (``CAMetrics/publish(_:)``) from ``Doctor/expiryFacts(now:ledger:)`` at start
/// and then every `interval`, so a root rotation, a renewed serving certificate or an agent that stopped
/// renewing shows on `/metrics` within a minute.
///
/// On SQLite it reads through a connection of its own: the daemon's SQLite ledger runs every query on the queue its
/// group commits use, and a scan of a large ledger there would hold up issuance. A PostgreSQL ledger (`ledger`)
/// has a pool of connections, so the daemon's own is used.
struct ExpiryGaugeRefresh: Service {
    let doctor: Doctor
    /// The daemon's ledger when it can take this scan beside issuance (PostgreSQL); nil opens the state
    /// directory's `ledger.db` once more.
    var ledger: (any LedgerStore)?
    let metrics: CAMetrics
    let logger: Logger
    var interval: Duration = .seconds(60)
    var time: ServiceTime = .system

    func run() async throws {
        var ledger = self.ledger
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
