import CPKCS11

/// A PKCS#11 attribute template built from Swift values, passed to the module as a CK_ATTRIBUTE array.
struct PKCS11Template {
    private(set) var items: [(type: CK_ATTRIBUTE_TYPE, value: [UInt8])] = []

    init() {}

    mutating func add(_ type: CK_ULONG, _ value: [UInt8]) { items.append((CK_ATTRIBUTE_TYPE(type), value)) }
    mutating func add(_ type: CK_ULONG, bool: Bool) { add(type, [bool ? 1 : 0]) }
    mutating func add(_ type: CK_ULONG, ulong: CK_ULONG) { add(type, withUnsafeBytes(of: ulong) { Array($0) }) }

    /// Runs `body` with the template as CK_ATTRIBUTEs whose values stay valid for the call.
    func withAttributes<T, E: Error>(_ body: (UnsafeMutablePointer<CK_ATTRIBUTE>, CK_ULONG) throws(E) -> T) throws(E) -> T {
        let buffers = items.map { item -> UnsafeMutableRawPointer in
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(item.value.count, 1), alignment: 8)
            item.value.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            return buffer
        }
        defer { buffers.forEach { $0.deallocate() } }
        let attributes = UnsafeMutablePointer<CK_ATTRIBUTE>.allocate(capacity: max(items.count, 1))
        defer { attributes.deallocate() }
        for (index, item) in items.enumerated() {
            attributes[index] = CK_ATTRIBUTE(type: item.type, pValue: buffers[index], ulValueLen: CK_ULONG(item.value.count))
        }
        return try body(attributes, CK_ULONG(items.count))
    }
}

extension PKCS11Module {
    /// The handles of the objects matching `template` in `session` (at most `limit`).
    func find(_ template: PKCS11Template, in session: CK_SESSION_HANDLE, limit: Int = 4) throws(PKCS11Error) -> [CK_OBJECT_HANDLE] {
        let f = functions.pointee
        try template.withAttributes { (attributes, count) throws(PKCS11Error) in
            try check(f.C_FindObjectsInit!(session, attributes, count), "C_FindObjectsInit")
        }
        var handles = [CK_OBJECT_HANDLE](repeating: 0, count: limit)
        var found = CK_ULONG(0)
        let rv = f.C_FindObjects!(session, &handles, CK_ULONG(limit), &found)
        _ = f.C_FindObjectsFinal!(session)
        try check(rv, "C_FindObjects")
        return Array(handles.prefix(Int(found)))
    }

    /// The value of one attribute of `object`, or nil when the token will not tell (sensitive, or not present).
    /// The CK_RV of such a refusal is returned in `refusal`.
    func attribute(
        _ type: CK_ULONG, of object: CK_OBJECT_HANDLE, in session: CK_SESSION_HANDLE, refusal: UnsafeMutablePointer<CK_RV>? = nil
    ) throws(PKCS11Error) -> [UInt8]? {
        let f = functions.pointee
        var attribute = CK_ATTRIBUTE(type: CK_ATTRIBUTE_TYPE(type), pValue: nil, ulValueLen: 0)
        var rv = f.C_GetAttributeValue!(session, object, &attribute, 1)
        if rv == CKR_ATTRIBUTE_SENSITIVE || rv == CKR_ATTRIBUTE_TYPE_INVALID || attribute.ulValueLen == CK_ULONG.max {
            refusal?.pointee = rv == CKR_OK ? CK_RV(CKR_ATTRIBUTE_SENSITIVE) : rv
            return nil
        }
        try check(rv, "C_GetAttributeValue")
        var value = [UInt8](repeating: 0, count: Int(attribute.ulValueLen))
        rv = value.withUnsafeMutableBytes { bytes in
            attribute.pValue = bytes.baseAddress
            return f.C_GetAttributeValue!(session, object, &attribute, 1)
        }
        try check(rv, "C_GetAttributeValue")
        return Array(value.prefix(Int(attribute.ulValueLen)))
    }
}
