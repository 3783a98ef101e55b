import Foundation
@testable import MeshCAAgent
import Testing

@Suite("The agent's /status document")
struct AgentStatusTests {
    @Test("Every key is present, unknown values are null, times are RFC 3339 and the budget counts down to zero")
    func document() throws {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        var status = AgentStatus(spiffeID: "spiffe://cluster.local/ns/default/sa/was")
        let before = try #require(try JSONSerialization.jsonObject(with: Data(status.json(at: now).utf8)) as? [String: Any])
        #expect(Set(before.keys) == [
            "state", "spiffe_id", "serial", "not_before", "not_after", "next_renewal", "last_error", "last_error_at",
            "renewals", "consecutive_failures", "obtained_by", "ca_address", "outage_budget_seconds",
            "crl_number", "crl_next_update", "crl_last_refusal", "crl_last_refusal_at",
        ])
        #expect(before["crl_number"] is NSNull)
        #expect(before["crl_last_refusal"] is NSNull)
        #expect(before["serial"] is NSNull)
        #expect(before["not_after"] is NSNull)
        #expect(before["ca_address"] is NSNull)
        #expect(before["state"] as? String == "starting")
        #expect(before["spiffe_id"] as? String == "spiffe://cluster.local/ns/default/sa/was")
        #expect(before["outage_budget_seconds"] as? Int == 0)

        status.state = "ok"
        status.serial = "0a1b"
        status.notAfter = now.addingTimeInterval(3600)
        status.renewals = 2
        status.obtainedBy = "mtls"
        status.caAddress = "127.0.0.1:15012"
        let after = try #require(try JSONSerialization.jsonObject(with: Data(status.json(at: now).utf8)) as? [String: Any])
        #expect(after["serial"] as? String == "0a1b")
        #expect(after["not_after"] as? String == "2027-01-15T09:00:00Z")
        #expect(after["outage_budget_seconds"] as? Int == 3600)
        #expect(after["renewals"] as? Int == 2)
        #expect(after["obtained_by"] as? String == "mtls")
        #expect(after["ca_address"] as? String == "127.0.0.1:15012")
        #expect(after["last_error"] is NSNull)
    }
}
