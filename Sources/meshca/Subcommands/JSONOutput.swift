import Foundation

/// Every `--json` output of `meshca`, through one encoder configuration: pretty-printed, keys sorted, slashes
/// unescaped. Field names are snake_case and never renamed; new fields may be added. Times are RFC 3339 UTC
/// strings.
enum JSONOutput {
    /// The one configuration.
    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// `value` as JSON text.
    static func render(_ value: some Encodable) throws -> String {
        String(decoding: try encoder().encode(value), as: UTF8.self)
    }

    /// A tree of dictionaries, arrays, strings, numbers, booleans and `NSNull` (absent values) as JSON text.
    static func render(object: Any) throws -> String {
        try render(Tree(object))
    }

    /// Prints `value` as JSON on standard output.
    static func print(_ value: some Encodable) throws {
        Swift.print(try render(value))
    }

    /// An untyped value encoded by the same encoder as typed ones.
    private struct Tree: Encodable {
        let value: Any
        init(_ value: Any) { self.value = value }

        struct Key: CodingKey {
            let stringValue: String
            init(stringValue: String) { self.stringValue = stringValue }
            var intValue: Int? { nil }
            init?(intValue: Int) { nil }
        }

        func encode(to encoder: any Encoder) throws {
            switch value {
            case let dictionary as [String: Any]:
                var container = encoder.container(keyedBy: Key.self)
                for (key, item) in dictionary { try container.encode(Tree(item), forKey: Key(stringValue: key)) }
            case let array as [Any]:
                var container = encoder.unkeyedContainer()
                for item in array { try container.encode(Tree(item)) }
            default:
                var container = encoder.singleValueContainer()
                switch value {
                case is NSNull: try container.encodeNil()
                case let bool as Bool: try container.encode(bool)
                case let string as String: try container.encode(string)
                case let int as Int: try container.encode(int)
                case let int as Int64: try container.encode(int)
                case let int as Int32: try container.encode(int)
                case let int as UInt32: try container.encode(int)
                case let double as Double: try container.encode(double)
                default:
                    throw EncodingError.invalidValue(
                        value, .init(codingPath: encoder.codingPath, debugDescription: "not a JSON value: \(type(of: value))"))
                }
            }
        }
    }
}
