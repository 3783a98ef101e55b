import Foundation

/// A filter over the issuance ledger. Every set field must match; nil fields do not filter.
///
/// Time-relative filters (`expiringWithin`, `status`) are evaluated against `now`, which defaults to the
/// current time but can be set to ask "what did the ledger look like at that moment".
public struct IssuanceQuery: Sendable {
    /// Only certificates for this Kubernetes namespace.
    public var namespace: String?
    /// Only certificates for this service account (usually together with `namespace`).
    public var serviceAccount: String?
    /// Only serials starting with this lowercase hex prefix (upper case is lowered). Uses the primary key
    /// index as the range `serial >= prefix AND serial < prefix + "g"`, since every hex digit sorts before "g".
    public var serialPrefix: String?
    /// Only certificates issued at or after this moment.
    public var issuedSince: Date?
    /// Only certificates still unexpired at `now` whose `notAfter` is at most `now + expiringWithin`:
    /// the ones a rotation check must look at. Revoked ones are included unless `status` excludes them.
    public var expiringWithin: Duration?
    /// Only certificates with this status at `now`, by the rule of `IssuanceRecord.status(at:)`.
    public var status: IssuanceStatus?
    /// The moment `expiringWithin` and `status` are evaluated at.
    public var now: Date
    /// When set, only the newest `limit` matches (by `issuedAt`, then serial); the result is still oldest
    /// first. Zero or less returns nothing.
    public var limit: Int?

    /// Creates a query; with no arguments it matches every issuance.
    public init(
        now: Date = Date(),
        namespace: String? = nil,
        serviceAccount: String? = nil,
        serialPrefix: String? = nil,
        issuedSince: Date? = nil,
        expiringWithin: Duration? = nil,
        status: IssuanceStatus? = nil,
        limit: Int? = nil
    ) {
        self.now = now
        self.namespace = namespace
        self.serviceAccount = serviceAccount
        self.serialPrefix = serialPrefix
        self.issuedSince = issuedSince
        self.expiringWithin = expiringWithin
        self.status = status
        self.limit = limit
    }
}
