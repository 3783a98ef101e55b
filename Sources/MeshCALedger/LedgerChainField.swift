import Crypto
import Foundation

/// One value in an event's content, encoded so that no two different field lists share a byte string.
///
/// The encoding of a field list (what `content_sha256` is the SHA-256 of, and what `payload` holds):
///
///     fields = u32be(count) field*
///     field  = 0x00                              NULL
///            | 0x01 i64be(value)                 INTEGER (8 bytes, two's complement)
///            | 0x02 u32be(byte count) utf8       TEXT
///            | 0x03 u32be(byte count) bytes      BLOB
///
/// Every value carries its type and length, so a column's bytes can never be read as part of the next one,
/// and NULL, "" and an empty blob all differ.
package enum LedgerChainField: Sendable, Equatable, CustomStringConvertible {
    /// SQL NULL.
    case null
    /// A 64-bit integer (every timestamp is Unix seconds).
    case integer(Int64)
    /// UTF-8 text.
    case text(String)
    /// Raw bytes.
    case blob([UInt8])

    /// The canonical encoding of `fields`, as documented on the type.
    package static func encode(_ fields: [LedgerChainField]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(4 + fields.count * 16)
        appendUInt32(UInt32(fields.count), to: &bytes)
        for field in fields {
            switch field {
            case .null:
                bytes.append(0x00)
            case .integer(let value):
                bytes.append(0x01)
                withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
            case .text(let string):
                bytes.append(0x02)
                appendUInt32(UInt32(string.utf8.count), to: &bytes)
                bytes.append(contentsOf: string.utf8)
            case .blob(let blob):
                bytes.append(0x03)
                appendUInt32(UInt32(blob.count), to: &bytes)
                bytes.append(contentsOf: blob)
            }
        }
        return bytes
    }

    /// Reads back what `encode` wrote, or nil for bytes that are not such an encoding (a tampered payload).
    package static func decode(_ bytes: [UInt8]) -> [LedgerChainField]? {
        var reader = Reader(bytes: bytes)
        guard let count = reader.uint32() else { return nil }
        var fields: [LedgerChainField] = []
        for _ in 0..<count {
            guard let tag = reader.bytes(1)?.first else { return nil }
            switch tag {
            case 0x00:
                fields.append(.null)
            case 0x01:
                guard let raw = reader.bytes(8) else { return nil }
                fields.append(.integer(Int64(bitPattern: raw.reduce(0) { $0 << 8 | UInt64($1) })))
            case 0x02, 0x03:
                guard let length = reader.uint32(), let body = reader.bytes(Int(length)) else { return nil }
                fields.append(tag == 0x02 ? .text(String(decoding: body, as: UTF8.self)) : .blob(body))
            default:
                return nil
            }
        }
        return reader.isAtEnd ? fields : nil
    }

    /// The SHA-256 of `bytes`.
    package static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        Array(SHA256.hash(data: bytes))
    }

    /// The field as an operator would read it in a message: a number, a quoted string, NULL, or a blob's size.
    package var description: String {
        switch self {
        case .null: "NULL"
        case .integer(let value): String(value)
        case .text(let string): "\"\(string)\""
        case .blob(let bytes): "<\(bytes.count) bytes>"
        }
    }

    /// The value bound for this field in an SQL statement.
    var sqlValue: SQLiteStatement.Value {
        switch self {
        case .null: .null
        case .integer(let value): .integer(value)
        case .text(let string): .text(string)
        case .blob(let bytes): .blob(bytes)
        }
    }

    /// The field for a value bound to a statement, so an event's content is exactly what was written.
    init(_ value: SQLiteStatement.Value) {
        switch value {
        case .null: self = .null
        case .integer(let value): self = .integer(value)
        case .text(let string): self = .text(string)
        case .blob(let bytes): self = .blob(bytes)
        }
    }

    private static func appendUInt32(_ value: UInt32, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }

    /// A cursor over an encoding that refuses to read past its end.
    private struct Reader {
        let bytes: [UInt8]
        var offset = 0

        var isAtEnd: Bool { offset == bytes.count }

        mutating func bytes(_ count: Int) -> [UInt8]? {
            guard count >= 0, bytes.count - offset >= count else { return nil }
            defer { offset += count }
            return Array(bytes[offset..<offset + count])
        }

        mutating func uint32() -> UInt32? {
            bytes(4)?.reduce(0) { $0 << 8 | UInt32($1) }
        }
    }
}

extension LedgerChainField {
    /// The payload of a root-change event, the same on every engine: action, old and new root SHA-256, Unix
    /// seconds, actor, and the lagging SPIFFE IDs separated by spaces.
    package static func rootChange(
        _ action: String, oldRoot: String, newRoot: String, at: Date, actor: String, lagging: [String]
    ) -> [LedgerChainField] {
        [
            .text(action), .text(oldRoot), .text(newRoot), .integer(Int64(at.timeIntervalSince1970.rounded(.down))),
            .text(actor), .text(lagging.joined(separator: " ")),
        ]
    }
}
