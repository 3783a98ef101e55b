/// The lifetime rules for workload certificates, validated once and then trusted by the CA.
public struct IssuancePolicy: Sendable, Equatable {
    /// The lifetime given when the request asks for none (Istio's `DEFAULT_WORKLOAD_CERT_TTL`, 24h).
    public let defaultTTL: Duration
    /// The longest lifetime granted; a longer request is refused (Istio's `MAX_WORKLOAD_CERT_TTL`, 90 days).
    public let maxTTL: Duration
    /// How far notBefore is set into the past, so peers with a slow clock accept a fresh certificate.
    public let backdate: Duration

    /// The defaults istiod uses: 24h, at most 90 days, notBefore two minutes back.
    public static let standard = try! IssuancePolicy(defaultTTL: .seconds(86_400), maxTTL: .seconds(90 * 86_400))

    /// Checks that the values make sense together.
    public init(defaultTTL: Duration, maxTTL: Duration, backdate: Duration = .seconds(120)) throws {
        guard defaultTTL > .zero, maxTTL > .zero else {
            throw IssuanceError(.invalidDuration, "Certificate lifetimes must be longer than zero.")
        }
        guard defaultTTL <= maxTTL else {
            throw IssuanceError(
                .invalidDuration,
                "The default certificate lifetime (\(HumanDuration.format(defaultTTL))) is longer than the maximum "
                    + "(\(HumanDuration.format(maxTTL))). Lower the default or raise the maximum."
            )
        }
        guard backdate >= .zero else {
            throw IssuanceError(.invalidDuration, "The notBefore backdate must not be negative.")
        }
        self.defaultTTL = defaultTTL
        self.maxTTL = maxTTL
        self.backdate = backdate
    }

    /// The lifetime to grant for a request: the default when none (or ≤ 0) is asked for, the request
    /// itself when within the maximum. Above the maximum the request is refused, as istiod does, with
    /// a message naming both values.
    public func grantedTTL(forRequested requested: Duration?) throws -> Duration {
        guard let requested, requested > .zero else { return defaultTTL }
        guard requested <= maxTTL else {
            throw IssuanceError(
                .ttlTooLong,
                "The requested lifetime \(HumanDuration.format(requested)) is longer than the maximum of "
                    + "\(HumanDuration.format(maxTTL)). Ask for \(HumanDuration.format(maxTTL)) or less "
                    + "(short-lived certificates are renewed automatically)."
            )
        }
        return requested
    }
}
