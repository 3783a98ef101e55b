extension StringProtocol {
    /// The text with every character that could end, rewrite or reorder a line shown as a visible escape:
    /// `\n`, `\r`, `\t`, and `\u{XX}` for the other C0 controls, DEL, the C1 controls (NEL included), the
    /// Unicode line and paragraph separators (U+2028, U+2029) and the bidirectional controls (U+061C,
    /// U+200E, U+200F, U+202A–U+202E, U+2066–U+2069).
    ///
    /// Apply it to anything taken from a request (a CSR's names, a token's claims, a peer address, an
    /// error built from them) before it reaches a log line, the ledger's message columns or a terminal,
    /// so that a request cannot forge a log line or hide text. Every other character, backslashes
    /// included, is kept: the result contains no control characters, and escaping it again changes
    /// nothing, so text escaped where it was made can safely be escaped again where it is shown.
    package var escapedForLog: String {
        guard unicodeScalars.contains(where: \.needsLogEscape) else { return String(self) }
        var result = ""
        result.reserveCapacity(utf8.count + 8)
        for scalar in unicodeScalars {
            switch scalar {
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.needsLogEscape: result += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }
}

extension Unicode.Scalar {
    /// Whether ``StringProtocol/escapedForLog`` replaces this scalar.
    fileprivate var needsLogEscape: Bool {
        switch value {
        case 0x00...0x1F, 0x7F...0x9F: true  // C0, DEL, C1 (NEL is U+0085)
        case 0x2028, 0x2029: true  // line and paragraph separators
        case 0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: true  // bidirectional controls
        default: false
        }
    }
}
