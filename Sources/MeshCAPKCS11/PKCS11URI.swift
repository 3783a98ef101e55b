import Foundation
import MeshCACore

/// A PKCS#11 URI (RFC 7512) naming a key in a token, with the module to load and where the PIN comes from:
/// `pkcs11:token=meshca;object=ca?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/meshca/pin`.
///
/// Path attributes meshca reads: `token` (label), `serial`, `slot-id`, `object` (the key's label), `id` (the key's
/// CKA_ID, percent-encoded bytes), `type` (`private`, optional). Query attributes: `module-path` (required),
/// `pin-source` (`file:PATH` or `env:NAME`, required). `pin-value` is refused: a PIN in a URI ends up on command
/// lines and in the state directory. Unknown attributes are refused too, so a typo never matches another key.
public struct PKCS11URI: Sendable, Hashable, CustomStringConvertible {
    /// The token's label (CKA_LABEL of the token, `token=`).
    public var token: String?
    /// The token's serial number (`serial=`).
    public var serial: String?
    /// The slot number (`slot-id=`).
    public var slotID: UInt?
    /// The key's label (`object=`).
    public var object: String?
    /// The key's CKA_ID (`id=`).
    public var id: [UInt8]?
    /// The PKCS#11 module (shared library) to load (`module-path=`).
    public var modulePath: String
    /// Where the user PIN comes from.
    public var pinSource: PINSource

    /// Where the token's user PIN is read from, never from the command line.
    public enum PINSource: Sendable, Hashable, CustomStringConvertible {
        /// A file holding the PIN (one line; a trailing newline is dropped). `pin-source=file:/path`.
        case file(String)
        /// An environment variable. `pin-source=env:NAME`.
        case environment(String)

        public var description: String {
            switch self {
            case .file(let path): "file:" + path
            case .environment(let name): "env:" + name
            }
        }
    }

    /// Parses `text`, naming the attribute at fault and the fix when it is not a usable key reference.
    public init(parsing text: String) throws(PKCS11Error) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.lowercased().hasPrefix("pkcs11:") else {
            throw PKCS11Error(.badURI, "\"\(trimmed.escapedPrefix)\" is not a PKCS#11 URI; it must start with `pkcs11:` (RFC 7512), e.g. pkcs11:token=meshca;object=ca?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/meshca/pin")
        }
        let body = trimmed.dropFirst("pkcs11:".count)
        let parts = body.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = parts.first.map(String.init) ?? ""
        let query = parts.count > 1 ? String(parts[1]) : ""
        var token: String?, serial: String?, slotID: UInt?, object: String?, id: [UInt8]?
        var modulePath: String?, pinSource: PINSource?
        for attribute in path.split(separator: ";") where !attribute.isEmpty {
            let (name, value) = try Self.split(attribute)
            switch name {
            case "token": token = try Self.text(value, name)
            case "serial": serial = try Self.text(value, name)
            case "slot-id":
                guard let number = UInt(value) else { throw PKCS11Error(.badURI, "slot-id=\(value) in the PKCS#11 URI is not a number; give the slot's decimal number or use token=LABEL.") }
                slotID = number
            case "object": object = try Self.text(value, name)
            case "id": id = try Self.decode(value, name)
            case "type":
                guard value == "private" else {
                    throw PKCS11Error(.badURI, "type=\(value) in the PKCS#11 URI: meshca signs with a private key, so leave type out or use type=private.")
                }
            case "manufacturer", "model", "library-manufacturer", "library-description", "library-version", "slot-description", "slot-manufacturer":
                continue  // Identify the module or token further; meshca matches on token, serial and slot-id.
            default:
                throw PKCS11Error(.badURI, "The PKCS#11 URI has an attribute meshca does not know: \(name)=. Use token=, serial=, slot-id=, object= and id= in the path, module-path= and pin-source= after `?`.")
            }
        }
        for attribute in query.split(separator: "&") where !attribute.isEmpty {
            let (name, value) = try Self.split(attribute)
            switch name {
            case "module-path": modulePath = try Self.text(value, name)
            case "pin-source":
                let source = try Self.text(value, name)
                if source.hasPrefix("file:") {
                    var file = String(source.dropFirst("file:".count))
                    if file.hasPrefix("//") { file = String(file.dropFirst(2)) }  // file:///path
                    guard file.hasPrefix("/") else {
                        throw PKCS11Error(.badURI, "pin-source=\(source) in the PKCS#11 URI must name an absolute path (file:/etc/meshca/hsm-pin), because the daemon may run in another directory.")
                    }
                    pinSource = .file(file)
                } else if source.hasPrefix("env:"), source.count > 4 {
                    pinSource = .environment(String(source.dropFirst(4)))
                } else {
                    throw PKCS11Error(.badURI, "pin-source=\(source) in the PKCS#11 URI is neither file:/PATH nor env:NAME; put the PIN in a 0600 file or an environment variable and point pin-source at it.")
                }
            case "pin-value":
                throw PKCS11Error(.badURI, "The PKCS#11 URI carries the PIN itself (pin-value=); meshca refuses it because the URI is shown on command lines and kept in the state directory. Put the PIN in a 0600 file and use pin-source=file:/PATH, or use pin-source=env:NAME.")
            case "module-name":
                throw PKCS11Error(.badURI, "module-name= in the PKCS#11 URI is not supported; give the module's file with module-path=/path/to/module.so.")
            default:
                throw PKCS11Error(.badURI, "The PKCS#11 URI has a query attribute meshca does not know: \(name)=. After `?` meshca reads module-path= and pin-source=.")
            }
        }
        guard let modulePath else {
            throw PKCS11Error(.badURI, "The PKCS#11 URI has no module-path=; add ?module-path=/path/to/module.so (SoftHSM: /usr/lib/softhsm/libsofthsm2.so).")
        }
        guard let pinSource else {
            throw PKCS11Error(.badURI, "The PKCS#11 URI has no pin-source=; add &pin-source=file:/PATH (a 0600 file holding the token's user PIN) or &pin-source=env:NAME.")
        }
        guard token != nil || serial != nil || slotID != nil else {
            throw PKCS11Error(.badURI, "The PKCS#11 URI names no token; add token=LABEL (or serial=, slot-id=) to its path.")
        }
        guard object != nil || id != nil else {
            throw PKCS11Error(.badURI, "The PKCS#11 URI names no key; add object=LABEL (the key's label) or id=%xx%xx (its CKA_ID) to its path.")
        }
        self.init(token: token, serial: serial, slotID: slotID, object: object, id: id, modulePath: modulePath, pinSource: pinSource)
    }

    /// A reference from its parts.
    public init(token: String?, serial: String? = nil, slotID: UInt? = nil, object: String?, id: [UInt8]? = nil, modulePath: String, pinSource: PINSource) {
        self.token = token
        self.serial = serial
        self.slotID = slotID
        self.object = object
        self.id = id
        self.modulePath = modulePath
        self.pinSource = pinSource
    }

    /// The URI, attributes in a fixed order, values percent-encoded. Holds no PIN.
    public var description: String {
        var path: [String] = []
        if let token { path.append("token=" + Self.encode(token)) }
        if let serial { path.append("serial=" + Self.encode(serial)) }
        if let slotID { path.append("slot-id=\(slotID)") }
        if let object { path.append("object=" + Self.encode(object)) }
        if let id { path.append("id=" + id.map { String(format: "%%%02x", $0) }.joined()) }
        path.append("type=private")
        let query = ["module-path=" + Self.encode(modulePath), "pin-source=" + Self.encode(pinSource.description)]
        return "pkcs11:" + path.joined(separator: ";") + "?" + query.joined(separator: "&")
    }

    /// The same key reference with `id` set (after a key was generated with a fresh CKA_ID).
    public func with(id: [UInt8]) -> PKCS11URI {
        var copy = self
        copy.id = id
        return copy
    }

    /// Reads the PIN from its source. The PIN is never printed or logged.
    public func readPIN(environment: [String: String] = ProcessInfo.processInfo.environment) throws(PKCS11Error) -> [UInt8] {
        switch pinSource {
        case .file(let path):
            guard let data = FileManager.default.contents(atPath: path) else {
                throw PKCS11Error(.pinUnavailable, "Cannot read the token PIN from \(path) (pin-source of the CA key's PKCS#11 URI): the file is missing or not readable by this user. Create it (mode 0600) holding the user PIN on one line.")
            }
            var bytes = Array(data)
            while let last = bytes.last, last == 0x0A || last == 0x0D { bytes.removeLast() }
            guard !bytes.isEmpty else { throw PKCS11Error(.pinUnavailable, "The PIN file \(path) is empty; write the token's user PIN into it.") }
            return bytes
        case .environment(let name):
            guard let value = environment[name], !value.isEmpty else {
                throw PKCS11Error(.pinUnavailable, "The environment variable \(name) (pin-source=env:\(name) of the CA key's PKCS#11 URI) is not set; set it to the token's user PIN in the environment meshca runs in, or use pin-source=file:/PATH.")
            }
            return Array(value.utf8)
        }
    }

    private static func split(_ attribute: Substring) throws(PKCS11Error) -> (String, String) {
        guard let equals = attribute.firstIndex(of: "=") else {
            throw PKCS11Error(.badURI, "\"\(String(attribute).escapedPrefix)\" in the PKCS#11 URI is not name=value.")
        }
        return (String(attribute[..<equals]).lowercased(), String(attribute[attribute.index(after: equals)...]))
    }

    private static func text(_ value: String, _ name: String) throws(PKCS11Error) -> String {
        let bytes = try decode(value, name)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw PKCS11Error(.badURI, "\(name)= in the PKCS#11 URI is not UTF-8 after percent-decoding.")
        }
        return text
    }

    private static func decode(_ value: String, _ name: String) throws(PKCS11Error) -> [UInt8] {
        var out: [UInt8] = []
        var bytes = Array(value.utf8)[...]
        while let byte = bytes.popFirst() {
            guard byte == UInt8(ascii: "%") else { out.append(byte); continue }
            guard bytes.count >= 2, let high = hex(bytes.popFirst()!), let low = hex(bytes.popFirst()!) else {
                throw PKCS11Error(.badURI, "\(name)= in the PKCS#11 URI has a bad percent-escape; write each byte as %xx.")
            }
            out.append(high << 4 | low)
        }
        return out
    }

    private static func hex(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Percent-encodes everything but RFC 7512's unreserved characters and `/` and `:` (paths, pin-source).
    private static func encode(_ text: String) -> String {
        text.utf8.map { byte in
            let c = Character(UnicodeScalar(byte))
            if c.isASCII && (c.isLetter || c.isNumber || "-._~/:".contains(c)) { return String(c) }
            return String(format: "%%%02X", byte)
        }.joined()
    }
}

extension String {
    /// At most 80 characters, control characters escaped, for quoting a value back in an error.
    var escapedPrefix: String { String(prefix(80)).escapedForLog }
}
