import Foundation
import GRPCCore
@testable import MeshCAAgent
import MeshCACore
import MeshCAIO
import MeshCATestSupport
import MeshCATransport
import Testing

/// The agent's `/metrics` page: what it renders from the status, the reason codes of failed rounds, and the count
/// of open Workload API streams. The page served by a real agent is scraped in MeshCAIntegrationTests.
@Suite("Agent metrics")
struct AgentMetricsTests {
    /// The sample lines of a page, `name{labels}` -> value.
    static func samples(_ page: String) -> [String: Double] {
        var samples: [String: Double] = [:]
        for line in page.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            samples[String(line[..<space])] = value
        }
        return samples
    }

    @Test("The page shows expiry, seconds left, next renewal, renewals, failures by every reason, clients, CRL age and build")
    func rendersStatus() throws {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        var status = AgentStatus(spiffeID: "spiffe://cluster.local/ns/default/sa/was")
        status.notAfter = now.addingTimeInterval(3_600)
        status.nextRenewal = now.addingTimeInterval(1_800)
        status.renewals = 4
        status.consecutiveFailures = 2
        status.failures = [.caUnreachable: 2, .refused: 1]
        status.crlThisUpdate = now.addingTimeInterval(-90)
        status.crlNextUpdate = now.addingTimeInterval(86_400)
        status.caAddress = "meshca.example:15012 (10.0.0.7)"
        let page = AgentMetrics.exposition(status, at: now, workloadAPIStreams: 3)
        let samples = Self.samples(page)
        #expect(samples["meshca_agent_certificate_expiry_timestamp_seconds"] == 1_800_003_600)
        #expect(samples["meshca_agent_certificate_expiry_seconds"] == 3_600)
        #expect(samples["meshca_agent_next_renewal_timestamp_seconds"] == 1_800_001_800)
        #expect(samples["meshca_agent_renewals_total"] == 4)
        #expect(samples["meshca_agent_consecutive_failures"] == 2)
        #expect(samples["meshca_agent_renewal_failures_total{reason=\"ca-unreachable\"}"] == 2)
        #expect(samples["meshca_agent_renewal_failures_total{reason=\"refused\"}"] == 1)
        // Every reason is on the page from the start, so rate() and increase() see the first failure.
        for reason in ["bootstrap-refused", "invalid-answer", "write-failed", "configuration", "other"] {
            #expect(samples["meshca_agent_renewal_failures_total{reason=\"\(reason)\"}"] == 0, "\(reason)")
        }
        #expect(samples["meshca_agent_workload_api_clients"] == 3)
        #expect(samples["meshca_agent_ca_address_info{address=\"meshca.example:15012 (10.0.0.7)\"}"] == 1)
        #expect(samples["meshca_agent_crl_age_seconds"] == 90)
        #expect(samples["meshca_agent_crl_next_update_timestamp_seconds"] == 1_800_086_400)
        #expect(samples["meshca_agent_build_info{version=\"\(BuildInfo.version)\",commit=\"\(BuildInfo.commit)\"}"] == 1)
        #expect(page.contains("# TYPE meshca_agent_renewal_failures_total counter\n"))
        #expect(page.components(separatedBy: "# TYPE meshca_agent_renewal_failures_total").count == 2, "one TYPE line")

        // Expired: no time left (never negative). Before the first certificate, without a CRL or Workload API:
        // those series are absent rather than zero.
        #expect(Self.samples(AgentMetrics.exposition(status, at: now.addingTimeInterval(7_200), workloadAPIStreams: nil))["meshca_agent_certificate_expiry_seconds"] == 0)
        let starting = Self.samples(AgentMetrics.exposition(AgentStatus(spiffeID: status.spiffeID), at: now, workloadAPIStreams: nil))
        #expect(starting["meshca_agent_certificate_expiry_seconds"] == nil)
        #expect(starting["meshca_agent_workload_api_clients"] == nil)
        #expect(starting["meshca_agent_crl_age_seconds"] == nil)
        #expect(!starting.keys.contains { $0.hasPrefix("meshca_agent_ca_address_info") }, "no CA has answered yet")
        #expect(starting["meshca_agent_renewals_total"] == 0)
    }

    @Test("A failed round's reason comes from the error: gRPC status, bootstrap or renewal, write error, the CA's answer")
    func reasons() throws {
        let pki = try TestPKI()
        let now = Date()
        let valid = try pki.issue(at: now, ttl: .seconds(3_600)).issuance.certificate
        func reason(_ error: any Error, held: Bool = true) -> AgentFailureReason {
            AgentFailure.reason(error, held: held ? valid : nil, at: now)
        }
        #expect(reason(RPCError(code: .unavailable, message: "connection refused")) == .caUnreachable)
        #expect(reason(RPCError(code: .deadlineExceeded, message: "")) == .caUnreachable)
        #expect(reason(RPCError(code: .unauthenticated, message: "bad token"), held: false) == .bootstrapRefused)
        #expect(reason(RPCError(code: .unauthenticated, message: "revoked")) == .refused)
        #expect(reason(RPCError(code: .permissionDenied, message: "")) == .refused)
        #expect(reason(DaemonError(.writeFailed, "disk full")) == .writeFailed)
        #expect(reason(IssuanceError(.malformedCSR, "unreadable chain")) == .invalidAnswer)
        #expect(reason(AgentError(.bootstrapRefused, "refused twice")) == .bootstrapRefused)
        #expect(reason(AgentError(.unusableSetting, "no token file")) == .configuration)
        #expect(reason(CAClientError(.badAddress, "not HOST:PORT")) == .configuration)
        #expect(reason(CocoaError(.fileReadUnknown)) == .other)
    }

    @Test("Failed rounds against an unreachable CA count under ca-unreachable, one per attempt")
    func unreachableCounted() async throws {
        let (agent, closed, roots) = try UnreachableCA.agent()
        defer {
            withExtendedLifetime(closed) {}  // the port refuses connections until here
            roots.remove()
            Task { await agent.stop() }
        }
        for attempt in 1...3 {
            _ = try await agent.waitForStatus("failure \(attempt)") { $0.consecutiveFailures == attempt }
            if attempt < 3, let pending = agent.clock.pendingDeadlines.first { agent.clock.advance(by: pending) }
        }
        let samples = Self.samples(AgentMetrics.exposition(agent.status.current, at: agent.clock.date, workloadAPIStreams: nil))
        #expect(samples["meshca_agent_renewal_failures_total{reason=\"ca-unreachable\"}"] == 3)
        #expect(samples["meshca_agent_renewal_failures_total{reason=\"refused\"}"] == 0)
        #expect(samples["meshca_agent_consecutive_failures"] == 3)
        #expect(samples["meshca_agent_renewals_total"] == 0)
        #expect(samples["meshca_agent_next_renewal_timestamp_seconds"] != nil)
    }

    @Test("Workload API clients: an open FetchX509SVID stream counts, and stops counting when the client leaves")
    func openStreams() async throws {
        let fixture = try WorkloadAPIFixture()
        try fixture.publishNew()
        try await fixture.withServer { server, _ in
            #expect(server.openStreams == 0)
            try await fixture.withClient { api in
                try await api.fetchX509SVID(X509SVIDRequest(), metadata: WorkloadAPIFixture.securityHeader) { response in
                    var messages = response.messages.makeAsyncIterator()
                    _ = try await messages.next()
                    try await WorkloadAPIFixture.waitUntil("one open stream") { server.openStreams == 1 }
                }
            }
            try await WorkloadAPIFixture.waitUntil("no open stream after the client left") { server.openStreams == 0 }
        }
    }
}
