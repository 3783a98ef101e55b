import COpenSSL

/// The entries of OpenSSL's per-thread error queue, drained after a failed call, with the reason codes
/// the diagnosis looks for.
struct OpenSSLErrors: Sendable, Equatable {
    /// One queued error.
    struct Entry: Sendable, Equatable {
        /// `ERR_LIB_SSL`, `ERR_LIB_X509`, ...
        let library: Int32
        /// The library's reason code, e.g. `SSL_R_WRONG_VERSION_NUMBER`.
        let reason: Int32
        /// `ERR_error_string_n`'s text, e.g. `error:0A00010B:SSL routines::wrong version number`.
        let text: String
    }

    /// Oldest first.
    var entries: [Entry] = []

    /// Empties this thread's queue into a value. Call it right after the failing OpenSSL call, on the same thread.
    static func drain() -> OpenSSLErrors {
        var entries: [Entry] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            let text = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            entries.append(Entry(library: meshca_ERR_GET_LIB(code), reason: meshca_ERR_GET_REASON(code), text: text))
        }
        return OpenSSLErrors(entries: entries)
    }

    /// Whether the queue is empty.
    var isEmpty: Bool { entries.isEmpty }

    /// Whether an SSL-library entry carries `reason` (an `SSL_R_*` constant).
    func contains(sslReason reason: Int32) -> Bool {
        entries.contains { $0.library == ERR_LIB_SSL && $0.reason == reason }
    }

    /// The TLS alert the peer sent, when OpenSSL recorded one (`SSL_R_SSLV3_ALERT_*` / `SSL_R_TLSV1*_ALERT_*`
    /// are the alert number plus `SSL_AD_REASON_OFFSET`).
    var receivedAlert: TLSAlert? {
        for entry in entries where entry.library == ERR_LIB_SSL {
            let number = entry.reason - Int32(SSL_AD_REASON_OFFSET)
            if (0..<256).contains(number) { return TLSAlert(number: number) }
        }
        return nil
    }

    /// All entries' texts, joined with `; `.
    var text: String { entries.map(\.text).joined(separator: "; ") }

    /// Appends another drain (a later call on the same thread).
    mutating func append(_ other: OpenSSLErrors) { entries += other.entries }
}
