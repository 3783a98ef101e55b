extension StringProtocol {
    /// The text without leading and trailing whitespace and newlines (`Character.isWhitespace`).
    ///
    /// Foundation's `trimmingCharacters(in:)` is not in FoundationEssentials, which is all the small
    /// `meshca-agent` executable links.
    package var trimmed: String {
        guard let first = firstIndex(where: { !$0.isWhitespace }), let last = lastIndex(where: { !$0.isWhitespace }) else { return "" }
        return String(self[first...last])
    }
}
