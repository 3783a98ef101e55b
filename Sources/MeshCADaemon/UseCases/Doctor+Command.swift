import Foundation
import MeshCAIO
import MeshCALedger

extension Doctor {
    /// `meshca doctor`: examines as of `now`, showing the ledger verification's progress on stderr (when it is a
    /// terminal) unless `quiet`.
    public func examine(now: Date, quiet: Bool) async -> DoctorReport {
        let progress = ProgressReporter("verifying the ledger", unit: "events", quiet: quiet)
        var doctor = self
        doctor.progress = progress.update(done:total:)
        let report = await doctor.examine(now: now)
        progress.finish()
        return report
    }
}

extension DoctorReport {
    /// An identity whose newest certificate runs out with its renewal overdue.
    public struct OverdueIdentity: Sendable {
        public let spiffeID: String
        /// Its newest certificate's serial, lowercase hex.
        public let serial: String
        public let issuedAt: Date
        public let notAfter: Date
    }

    /// ``identities`` as plain values.
    public var overdueIdentities: [OverdueIdentity] {
        identities.map { OverdueIdentity(spiffeID: $0.spiffeID, serial: $0.serial, issuedAt: $0.issuedAt, notAfter: $0.notAfter) }
    }
}
