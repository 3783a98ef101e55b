import Foundation
import MeshCACore
import MeshCAErrors
import Prometheus
import Synchronization
import X509

/// The CA's Prometheus metrics, named as istiod names them where Istio has a name, so existing
/// Istio dashboards and alerts keep working when meshca stands in for istiod's CA.
///
/// One instance per daemon. Every method is safe to call from any task: the underlying collectors
/// are lock-protected by swift-prometheus. ``exposition()`` renders the text served at `/metrics`.
///
/// | Metric | Type | Moved by |
/// |---|---|---|
/// | `citadel_server_csr_count` | counter | ``csrReceived()`` |
/// | `citadel_server_success_cert_issuance_count` | counter | ``issued(duration:)`` |
/// | `citadel_server_authentication_failure_count` | counter | ``authenticationFailed()`` |
/// | `citadel_server_csr_parsing_err_count` | counter | ``rejected(reason:)`` with `malformed-csr` or `bad-csr-signature` |
/// | `citadel_server_csr_sign_err_count{error}` | counter | ``signingFailed(error:)`` |
/// | `citadel_server_id_extraction_err_count` | counter | ``identityExtractionFailed()`` |
/// | `meshca_rejections_total{reason}` | counter | ``rejected(reason:)`` |
/// | `citadel_server_root_cert_expiry_timestamp` | gauge, Unix seconds | ``setRootExpiry(_:)`` |
/// | `citadel_server_cert_chain_expiry_timestamp` | gauge, Unix seconds | ``setChainExpiry(_:)`` |
/// | `citadel_server_root_cert_expiry_seconds` | gauge, seconds left (negative once expired), computed at each scrape | ``setRootExpiry(_:)`` |
/// | `citadel_server_cert_chain_expiry_seconds` | gauge, seconds left, computed at each scrape | ``setChainExpiry(_:)`` |
/// | `meshca_serving_cert_expiry_timestamp` | gauge, Unix seconds | ``setServingCertificateExpiry(_:)`` |
/// | `meshca_issuance_duration_seconds` | histogram | ``issued(duration:)`` |
/// | `meshca_certificate_expiry_timestamp_seconds{role,fingerprint}` | gauge, Unix seconds | ``publish(_:)`` |
/// | `meshca_identities_expiring` | gauge | ``publish(_:)`` |
///
/// `CAMetrics+Operations.swift` adds the ledger, CRL, gRPC status, build and process metrics.
public final class CAMetrics: Sendable {
    /// The registry holding every metric below. Other components may register their own metrics here
    /// so that one `/metrics` page shows everything; names must not collide with the ones above.
    public let registry: PrometheusCollectorRegistry

    /// The rejection reasons that also count as CSR parsing errors in Istio's terms.
    public static let parsingReasons: Set<String> = [
        IssuanceError.Code.malformedCSR.rawValue, IssuanceError.Code.badCSRSignature.rawValue,
    ]

    /// Histogram bounds for ``issued(duration:)``: 0.5 ms to 5 s in 1-2.5-5 steps. A signature takes
    /// well under a millisecond; the ledger's fsync and a busy writer make up the rest.
    public static let issuanceBuckets: [Duration] = [
        .microseconds(500), .milliseconds(1), .microseconds(2500), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .milliseconds(2500), .seconds(5),
    ]

    private let csrCount: Counter
    private let issuanceCount: Counter
    private let authenticationFailures: Counter
    private let parsingErrors: Counter
    private let identityExtractionErrors: Counter
    private let rootExpiry: Gauge
    private let chainExpiry: Gauge
    private let servingExpiry: Gauge
    private let issuanceDuration: DurationHistogram
    /// The (role, fingerprint) series ``publish(_:)`` last set, so the next call can drop the ones that went away.
    let publishedExpirySeries = Mutex<Set<[String]>>([])
    /// The root and chain expiry last published, for the `_seconds` gauges computed at scrape time.
    private let expiryDates = Mutex<(root: Date?, chain: Date?)>((nil, nil))
    private let rootExpirySeconds: Gauge
    private let chainExpirySeconds: Gauge
    /// When the ledger's newest checkpoint was made, for `meshca_ledger_checkpoint_age_seconds`.
    let newestCheckpoint = Mutex<Date?>(nil)
    /// The current time, for the gauges computed at scrape time.
    let now: @Sendable () -> Date
    /// Run at the start of every ``exposition()``; each returns text to append (or "").
    let scrapeHooks = Mutex<[@Sendable () -> String]>([])

    // Computed: MetricNameDescriptor is not Sendable, so it cannot be a stored static.
    private static var rejectionsDescriptor: MetricNameDescriptor {
        MetricNameDescriptor(
            metricName: "meshca_rejections",
            unitName: "total",
            helpText: "Certificate requests refused, by reason (ttl-too-long, identity-mismatch, rate-limited, ...)."
        )
    }

    /// Creates the metrics in a fresh registry, or in `registry` when the daemon shares one.
    ///
    /// Calling this twice with the same registry returns collectors for the same series.
    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(), now: @escaping @Sendable () -> Date = { Date() }) {
        self.registry = registry
        self.now = now
        func counter(_ name: String, _ help: String) -> Counter {
            registry.makeCounter(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help))
        }
        func gauge(_ name: String, _ help: String) -> Gauge {
            registry.makeGauge(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help))
        }
        csrCount = counter("citadel_server_csr_count", "The number of CSRs received by the CA.")
        issuanceCount = counter(
            "citadel_server_success_cert_issuance_count",
            "The number of certificates issued successfully."
        )
        authenticationFailures = counter(
            "citadel_server_authentication_failure_count",
            "The number of requests whose caller could not be authenticated."
        )
        parsingErrors = counter(
            "citadel_server_csr_parsing_err_count",
            "The number of CSRs that could not be parsed or whose signature did not verify."
        )
        identityExtractionErrors = counter(
            "citadel_server_id_extraction_err_count",
            "The number of verified credentials from which no SPIFFE identity could be taken (a client certificate that is not an X509-SVID of the trust domain, a JWT naming no service account)."
        )
        rootExpirySeconds = gauge(
            "citadel_server_root_cert_expiry_seconds",
            "The time remaining, in seconds, before the root cert will expire. A negative value indicates the cert is expired."
        )
        chainExpirySeconds = gauge(
            "citadel_server_cert_chain_expiry_seconds",
            "The time remaining, in seconds, before the CA's signing certificate chain will expire. A negative value indicates the cert is expired."
        )
        rootExpiry = gauge(
            "citadel_server_root_cert_expiry_timestamp",
            "The Unix time, in seconds, at which the root certificate expires."
        )
        chainExpiry = gauge(
            "citadel_server_cert_chain_expiry_timestamp",
            "The Unix time, in seconds, at which the CA's signing certificate chain expires."
        )
        servingExpiry = gauge(
            "meshca_serving_cert_expiry_timestamp",
            "The Unix time, in seconds, at which the daemon's own TLS serving certificate expires."
        )
        issuanceDuration = registry.makeDurationHistogram(
            descriptor: MetricNameDescriptor(
                metricName: "meshca_issuance_duration",
                unitName: "seconds",
                helpText: "Time spent in CreateCertificate for requests that were issued a certificate."
            ),
            buckets: Self.issuanceBuckets
        )
    }

    /// Counts one CreateCertificate request, before authentication, as istiod does.
    public func csrReceived() {
        csrCount.increment()
    }

    /// Counts one issued certificate and records how long the request took, from receipt to response.
    public func issued(duration: Duration) {
        issuanceCount.increment()
        issuanceDuration.record(duration)
    }

    /// Counts a caller that could not be authenticated (Istio's counter only). Call
    /// ``rejected(reason:)`` as well to count it among meshca's rejections.
    public func authenticationFailed() {
        authenticationFailures.increment()
    }

    /// Counts a refused request in `meshca_rejections_total` under `reason`: an `IssuanceError` code (the CA's rules,
    /// such as `ttl-too-long`) or a ``CAError`` code (the daemon's, such as `rate-limited` or `unauthenticated`), the
    /// same code as the ledger's rejection row. The reasons in ``parsingReasons`` also move
    /// `citadel_server_csr_parsing_err_count`.
    public func rejected(reason: some ErrorCode) {
        let label = Self.labelValue(reason.rawValue)
        registry.makeCounter(descriptor: Self.rejectionsDescriptor, labels: [("reason", label)]).increment()
        if Self.parsingReasons.contains(label) { parsingErrors.increment() }
    }

    /// Counts a request that passed every check but failed while signing or recording in the ledger, under
    /// `error`: the refusal's code (`signing-failed`, `signer-not-valid`, `invalid-signer`), the daemon error's
    /// code (`not-recorded`), or `internal` for anything else. Like Istio's counter of the same name, with its
    /// `error` label.
    public func signingFailed(error: String) {
        let descriptor = MetricNameDescriptor(
            metricName: "citadel_server_csr_sign_err_count", unitName: "",
            helpText: "The number of accepted CSRs that failed while signing or recording in the ledger, by error code.")
        registry.makeCounter(descriptor: descriptor, labels: [("error", Self.labelValue(error))]).increment()
    }

    /// Counts a verified credential that yielded no identity (Istio's `citadel_server_id_extraction_err_count`).
    public func identityExtractionFailed() {
        identityExtractionErrors.increment()
    }

    /// Publishes when the root certificate expires.
    public func setRootExpiry(_ date: Date) {
        rootExpiry.set(date.timeIntervalSince1970)
        expiryDates.withLock { $0.root = date }
    }

    /// Publishes when the CA's signing chain (its own certificate up to the root) expires.
    public func setChainExpiry(_ date: Date) {
        chainExpiry.set(date.timeIntervalSince1970)
        expiryDates.withLock { $0.chain = date }
    }

    /// Publishes the root and chain expiry of the CA that signs with `signer`: the earliest root of its bundle,
    /// and its own certificate. Called at start and whenever the CA files change (a root rotation).
    public func setCAExpiry(of signer: SigningIdentity) {
        setRootExpiry(signer.bundle.map(\.notValidAfter).min() ?? signer.certificate.notValidAfter)
        setChainExpiry(signer.certificate.notValidAfter)
    }

    /// Publishes when the daemon's gRPC serving certificate expires.
    public func setServingCertificateExpiry(_ date: Date) {
        servingExpiry.set(date.timeIntervalSince1970)
    }

    /// Runs `hook` at the start of every ``exposition()`` (on a NIO thread: quick, no blocking) and appends the text
    /// it returns, for values computed at scrape time or rendered outside the registry.
    public func onScrape(_ hook: @escaping @Sendable () -> String) {
        scrapeHooks.withLock { $0.append(hook) }
    }

    /// Every metric in the Prometheus text format, version 0.0.4.
    public func exposition() -> String {
        let now = self.now()
        let (root, chain) = expiryDates.withLock { ($0.root, $0.chain) }
        if let root { rootExpirySeconds.set(root.timeIntervalSince(now).rounded(.down)) }
        if let chain { chainExpirySeconds.set(chain.timeIntervalSince(now).rounded(.down)) }
        let extra = scrapeHooks.withLock { $0 }.map { $0() }.joined()
        return registry.emitToString() + extra
    }

    /// Keeps label values printable and bounded so a surprising reason cannot break the exposition.
    static func labelValue(_ reason: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789-_")
        let cleaned = String(reason.lowercased().prefix(64).map { allowed.contains($0) ? $0 : "_" })
        return cleaned.isEmpty ? "unknown" : cleaned
    }
}
