import MeshCALedger
import Testing

@Suite("The canonical encoding of event content")
struct LedgerChainEncodingTests {
    @Test("The encoding is the documented bytes: a count, then a tag and a length or fixed width per field")
    func knownAnswer() {
        let encoded = LedgerChainField.encode([.integer(1), .text("a"), .null, .blob([0xff])])
        #expect(
            encoded == [
                0, 0, 0, 4,
                0x01, 0, 0, 0, 0, 0, 0, 0, 1,
                0x02, 0, 0, 0, 1, 0x61,
                0x00,
                0x03, 0, 0, 0, 1, 0xff,
            ])
        #expect(LedgerChainField.encode([.integer(-1)]) == [0, 0, 0, 1, 0x01] + [UInt8](repeating: 0xff, count: 8))
    }

    @Test(
        "Field lists that a naive concatenation would confuse encode differently",
        arguments: [
            ([LedgerChainField.text("ab"), .text("c")], [LedgerChainField.text("a"), .text("bc")]),
            ([.null], [.text("")]),
            ([.text("")], [.blob([])]),
            ([.integer(0)], [.null]),
            ([.text("1")], [.integer(1)]),
            ([.text("a"), .null], [.text("a")]),
        ])
    func unambiguous(left: [LedgerChainField], right: [LedgerChainField]) {
        #expect(LedgerChainField.encode(left) != LedgerChainField.encode(right))
    }

    @Test("Decoding returns what was encoded and refuses truncated or padded bytes")
    func roundTrip() throws {
        let fields: [LedgerChainField] = [
            .text("spiffe://mesh.example/ns/payments/sa/api"), .integer(.min), .integer(.max), .null,
            .blob([0, 1, 2]), .text("zwölf \u{0}"),
        ]
        let encoded = LedgerChainField.encode(fields)
        #expect(LedgerChainField.decode(encoded) == fields)
        #expect(LedgerChainField.decode(Array(encoded.dropLast())) == nil)
        #expect(LedgerChainField.decode(encoded + [0]) == nil)
        #expect(LedgerChainField.decode([0, 0, 0, 1, 0x07]) == nil)
    }
}
