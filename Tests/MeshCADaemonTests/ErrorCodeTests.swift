import MeshCAAgent
import MeshCACore
import MeshCADaemon
import MeshCAErrors
import MeshCAHarness
import MeshCAIO
import MeshCALedger
import MeshCAPKCS11
import MeshCATransport
import Testing

/// Every target's error codes: a closed list of kebab-case names that the ledger stores, metrics label and
/// `--json` prints. They may grow; none may be renamed or reused, which this list pins down.
@Suite("Error codes are closed, kebab-case, unique per type, and never renamed")
struct ErrorCodeTests {
    func names<Code: ErrorCode>(_ type: Code.Type) -> [String] { Code.allCases.map(\.rawValue) }

    @Test("Each code is kebab-case and unique within its type")
    func shape() {
        for list in [
            names(IssuanceError.Code.self), names(DaemonError.Code.self), names(LedgerError.Code.self), names(AgentError.Code.self),
            names(HandshakeFailure.Code.self), names(CAClientError.Code.self), names(PKCS11Error.Code.self), names(CAError.Code.self),
        ] {
            #expect(Set(list).count == list.count, "\(list)")
            for name in list {
                #expect(name.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "-" } && !name.hasPrefix("-"), "\(name)")
            }
        }
    }

    @Test("The codes stored in ledgers and printed by --json are all still there")
    func stable() {
        // Issuance refusals: the reason codes of the ledger's rejection rows.
        let issuance = Set(names(IssuanceError.Code.self))
        for code in [
            "invalid-trust-domain", "invalid-spiffe-id", "invalid-name", "invalid-duration", "malformed-csr", "bad-csr-signature",
            "unsupported-key", "identity-mismatch", "forbidden-san", "ca-requested", "ttl-too-long", "signer-not-valid",
            "foreign-trust-domain", "invalid-signer", "invalid-token", "invalid-revocation-reason", "malformed-crl", "signing-failed",
            "unacceptable-answer",
        ] {
            #expect(issuance.contains(code), "\(code)")
        }
        let daemon = Set(names(DaemonError.Code.self))
        for code in ["no-ca", "ca-exists", "not-recorded", "rotation-stage", "rotation-refused", "signer-unavailable", "unknown-serial"] {
            #expect(daemon.contains(code), "\(code)")
        }
        // The daemon's own refusals, in the same rejection rows and in meshca_rejections_total.
        let refusals = Set(names(CAError.Code.self))
        for code in ["unauthenticated", "impersonation", "token-rejected", "repeated-request", "rate-limited", "auth-rate-limited", "unknown-signer"] {
            #expect(refusals.contains(code), "\(code)")
        }
        let ledger = Set(names(LedgerError.Code.self))
        for code in ["cannot-open", "not-a-ledger", "locked", "newer-schema", "disk-full", "token-rejected", "ledger-key", "unavailable", "other"] {
            #expect(ledger.contains(code), "\(code)")
        }
    }
}
