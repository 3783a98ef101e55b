#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import MeshCAIO

/// The agent's `/metrics` page (Prometheus text format), rendered from its status at each scrape: the
/// certificate's expiry and the time left, the next renewal, renewals and failures by reason, the Workload API
/// streams open, the CRL's age, the build, and the `process_*` metrics.
public enum AgentMetrics {
    /// The page for `status` as of `now`; `workloadAPIStreams` is nil when the agent serves no Workload API.
    public static func exposition(_ status: AgentStatus, at now: Date, workloadAPIStreams: Int?) -> String {
        var text = MetricsText()
        if let notAfter = status.notAfter {
            text.gauge(
                "meshca_agent_certificate_expiry_timestamp_seconds",
                help: "The notAfter of the agent's current certificate, in Unix seconds.",
                value: notAfter.timeIntervalSince1970.rounded(.down))
            text.gauge(
                "meshca_agent_certificate_expiry_seconds",
                help: "Seconds until the current certificate expires (0 once expired): how long the CA may stay unreachable.",
                value: Double(status.outageBudget(at: now)))
        }
        if let next = status.nextRenewal {
            text.gauge(
                "meshca_agent_next_renewal_timestamp_seconds",
                help: "When the next renewal (or retry after a failure) is due, in Unix seconds.",
                value: next.timeIntervalSince1970.rounded(.down))
        }
        text.counter(
            "meshca_agent_renewals_total",
            help: "Certificates obtained from the CA since the agent started (the bootstrap included, files reused at start not).",
            value: Double(status.renewals))
        for reason in AgentFailureReason.allCases {
            text.counter(
                "meshca_agent_renewal_failures_total",
                help: "Failed attempts to obtain a certificate since the agent started, by reason.",
                labels: [("reason", reason.rawValue)], value: Double(status.failures[reason] ?? 0))
        }
        if let caAddress = status.caAddress {
            text.gauge(
                "meshca_agent_ca_address_info",
                help: "The CA address that answered last, which the next renewal asks first (several with --ca repeated); always 1.",
                labels: [("address", caAddress)], value: 1)
        }
        text.gauge(
            "meshca_agent_consecutive_failures",
            help: "Failed attempts since the last certificate was obtained (0 when the last attempt succeeded).",
            value: Double(status.consecutiveFailures))
        if let workloadAPIStreams {
            text.gauge(
                "meshca_agent_workload_api_clients",
                help: "Open Workload API streams (FetchX509SVID, FetchX509Bundles): the workloads connected now.",
                value: Double(workloadAPIStreams))
        }
        if let thisUpdate = status.crlThisUpdate {
            text.gauge(
                "meshca_agent_crl_age_seconds",
                help: "Seconds since the CA signed the CRL the agent holds (its thisUpdate); --crl-url only.",
                value: max(0, now.timeIntervalSince(thisUpdate)).rounded(.down))
        }
        if let nextUpdate = status.crlNextUpdate {
            text.gauge(
                "meshca_agent_crl_next_update_timestamp_seconds",
                help: "The nextUpdate of the CRL the agent holds, in Unix seconds; --crl-url only.",
                value: nextUpdate.timeIntervalSince1970.rounded(.down))
        }
        return text.output + BuildInfo.exposition(name: "meshca_agent_build_info") + ProcessMetrics.exposition()
    }
}
