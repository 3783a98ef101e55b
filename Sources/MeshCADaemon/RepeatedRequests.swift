import Foundation
import MeshCACore
import MeshCALedger
import SwiftASN1
import X509

/// Recognizes a request repeated after its answer was lost, so the client gets the certificate it was already
/// issued instead of a second one or, with a single-use join token now spent, a refusal.
///
/// A repeat is a request from the same requester (the same join token id, JWT subject or mTLS client
/// certificate, as the ledger's `requester` names it), for the same identity, whose CSR carries the same public
/// key as a certificate issued to that requester at most `window` ago, which is neither expired nor revoked.
/// gRPC clients retry a call cut off by a connection close (a GOAWAY that says nothing was processed), though the
/// CA may already have issued and recorded the certificate. The CSR must still prove possession of the key
/// before the certificate is handed out again (``IssuanceService`` checks it), so only the holder of the key
/// can get it, and it gets nothing it did not have the right to: the certificate was issued to it already.
public struct RepeatedRequests: Sendable {
    /// The default `retry-window`: long enough for a client's retries with backoff, short enough that a
    /// repeat is clearly the same request.
    public static let defaultWindow: Duration = .seconds(300)

    /// Where the earlier issuances are recorded.
    public let ledger: any IssuanceLedger
    /// How long after an issuance a repeat gets the same certificate; `.zero` turns the recognition off.
    public let window: Duration

    /// Recognizes repeats of issuances recorded in `ledger` during the last `window`.
    public init(ledger: any IssuanceLedger, window: Duration) {
        self.ledger = ledger
        self.window = window
    }

    /// The certificate already issued for this request at `now`, or nil: none within the window, the window is
    /// zero, the CSR cannot be read (the request is then refused as new, with the reason), or the ledger cannot
    /// be read (the request is then handled as new, exactly as without this check).
    public func earlierIssuance(csrPEM: String, identity: SPIFFEID, requester: Requester, at now: Date) async -> IssuanceRecord? {
        guard window > .zero, let key = Self.publicKeySHA256(csrPEM: csrPEM) else { return nil }
        let since = now.addingTimeInterval(-TimeInterval(window.components.seconds))
        guard
            let record = try? await ledger.newestIssuance(requester: requester.name, publicKeySHA256: key, issuedSince: since),
            record.spiffeID == identity.uri, record.status(at: now) == .valid
        else { return nil }
        return record
    }

    /// SHA-256 of the SubjectPublicKeyInfo in a PEM CSR, as the ledger records it; the CSR's signature is not
    /// checked here.
    static func publicKeySHA256(csrPEM: String) -> String? {
        let text = csrPEM.replacing("\r\n", with: "\n").trimmed
        return (try? CertificateSigningRequest(pemEncoded: text))?.publicKey.sha256Fingerprint
    }
}
