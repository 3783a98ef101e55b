import Foundation
import MeshCACore
import X509

extension CAState {
    /// The CA a command on the CA host works with: the one in `directory`, or, when there is none yet (the first
    /// `meshca issue` on a machine), one created with the defaults. `notice` gets a line saying it was created, and
    /// one per warning about the CA files.
    static func forCommand(in directory: StateDirectory, now: Date, notice: (String) -> Void) throws -> CAState {
        let (ca, created) = try loadOrCreate(in: directory, options: .init(), now: now)
        if created {
            notice(
                "no CA in \(directory.path) yet; created one for trust domain \(ca.trustDomain.name) "
                    + "(ec-p256, root valid until \(ca.signer.certificate.notValidAfter.formatted(.iso8601)))")
        }
        ca.warnings.forEach(notice)
        return ca
    }
}
