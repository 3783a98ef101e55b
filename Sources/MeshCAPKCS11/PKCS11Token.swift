import CPKCS11
import Dispatch
import Synchronization

/// One token of a module, logged in as its user, with a small pool of sessions shared by every signature.
///
/// At most ``poolSize`` sessions are open at once; a caller beyond that waits for one to come back. When a call
/// fails in a way closing the sessions may fix (the token was reset or removed, a session or handle went stale,
/// the user was logged out, the module was finalized), all sessions are closed, the token is looked up again
/// (initializing the module again when it was finalized), the user logs in again, and the call is tried once
/// more. If that fails too, the error is thrown and the next call starts over.
final class PKCS11Token: Sendable {
    /// How many sessions the pool keeps open at most.
    static let poolSize = 4

    let module: PKCS11Module
    let uri: PKCS11URI
    private let pin: [UInt8]
    private let pool = Mutex(Pool())
    private let slots = DispatchSemaphore(value: PKCS11Token.poolSize)

    private struct Pool {
        var slot: CK_SLOT_ID?
        /// Bumped at every reset: sessions and handles from an older epoch are dropped, not reused.
        var epoch = 0
        var moduleGeneration = -1
        var idle: [CK_SESSION_HANDLE] = []
        var loggedIn = false
        /// Whether the token was ever found: a token that vanishes afterwards may need the module reloaded to be
        /// seen again, a token never found (a typo in the URI) does not.
        var found = false
    }

    private static let tokens = Mutex<[PKCS11URI: PKCS11Token]>([:])

    /// The token `uri` names, with its PIN read now; one shared instance per URI in the process.
    static func named(_ uri: PKCS11URI) throws(PKCS11Error) -> PKCS11Token {
        var key = uri
        key.object = nil
        key.id = nil
        if let token = tokens.withLock({ $0[key] }) { return token }
        let token = PKCS11Token(module: try PKCS11Module.named(uri.modulePath), uri: key, pin: try uri.readPIN())
        return tokens.withLock { tokens in
            if let existing = tokens[key] { return existing }
            tokens[key] = token
            return token
        }
    }

    private init(module: PKCS11Module, uri: PKCS11URI, pin: [UInt8]) {
        self.module = module
        self.uri = uri
        self.pin = pin
    }

    /// What a description of the token says: its label or serial or slot.
    var name: String {
        if let label = uri.token { return "token \"\(label.escapedPrefix)\"" }
        if let serial = uri.serial { return "token with serial \(serial.escapedPrefix)" }
        return "token in slot \(uri.slotID ?? 0)"
    }

    /// Runs `body` with a logged-in session of this token (and the epoch it belongs to, for caching object handles),
    /// recovering once from a reset token as described on the type.
    func withSession<T>(_ body: (CK_SESSION_HANDLE, Int) throws(PKCS11Error) -> T) throws(PKCS11Error) -> T {
        slots.wait()
        defer { slots.signal() }
        var attempt = 0
        while true {
            attempt += 1
            var epoch = pool.withLock { $0.epoch }
            do throws(PKCS11Error) {
                return try module.shared { () throws(PKCS11Error) -> T in
                    let (session, current) = try checkOut()
                    epoch = current
                    let result: T
                    do throws(PKCS11Error) {
                        result = try body(session, current)
                    } catch {
                        if !error.isRecoverable { checkIn(session, epoch: current) }
                        throw error
                    }
                    checkIn(session, epoch: current)
                    return result
                }
            } catch {
                guard error.isRecoverable else { throw error }
                reset(epoch: epoch, after: error)
                if attempt >= 2 { throw error }
            }
        }
    }

    /// A read-write session outside the pool (for generating a key), logged in; closed when `body` returns. Recovers
    /// once from a reset token, as ``withSession(_:)`` does.
    func withReadWriteSession<T>(_ body: (CK_SESSION_HANDLE) throws(PKCS11Error) -> T) throws(PKCS11Error) -> T {
        let f = module.functions.pointee
        var attempt = 0
        while true {
            attempt += 1
            // A pooled session first: it finds the slot and logs the user in (login is per token, not per session).
            let (slot, epoch) = try withSession { (_, epoch) throws(PKCS11Error) in (pool.withLock { $0.slot }, epoch) }
            guard let slot else { throw PKCS11Error(.tokenNotFound, "The \(name) went away; try again.") }
            do throws(PKCS11Error) {
                return try module.shared { () throws(PKCS11Error) -> T in
                    var session = CK_SESSION_HANDLE(0)
                    try module.check(
                        f.C_OpenSession!(slot, CK_FLAGS(CKF_SERIAL_SESSION | CKF_RW_SESSION), nil, nil, &session), "C_OpenSession", name)
                    defer { _ = f.C_CloseSession!(session) }
                    return try body(session)
                }
            } catch {
                guard error.isRecoverable, attempt < 2 else { throw error }
                reset(epoch: epoch, after: error)
            }
        }
    }

    private func checkOut() throws(PKCS11Error) -> (CK_SESSION_HANDLE, Int) {
        let generation = try module.ready()
        let f = module.functions.pointee
        let result: Result<(CK_SESSION_HANDLE, Int), PKCS11Error> = pool.withLock { pool in
            do throws(PKCS11Error) {
                if pool.moduleGeneration != generation {
                    // The module was reloaded: every session and handle from before is gone.
                    pool = Pool(slot: nil, epoch: pool.epoch + 1, moduleGeneration: generation, idle: [], loggedIn: false, found: pool.found)
                }
                if let session = pool.idle.popLast() { return .success((session, pool.epoch)) }
                let slot: CK_SLOT_ID
                if let known = pool.slot { slot = known } else { slot = try findSlot() }
                pool.slot = slot
                pool.found = true
                var session = CK_SESSION_HANDLE(0)
                try module.check(f.C_OpenSession!(slot, CK_FLAGS(CKF_SERIAL_SESSION), nil, nil, &session), "C_OpenSession", name)
                if !pool.loggedIn {
                    var pin = self.pin
                    let rv = f.C_Login!(session, CK_USER_TYPE(CKU_USER), &pin, CK_ULONG(pin.count))
                    if rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED || rv == CKR_PIN_EXPIRED || rv == CKR_PIN_LEN_RANGE {
                        _ = f.C_CloseSession!(session)
                        throw PKCS11Error(
                            .loginFailed,
                            "The \(name) refused the user PIN from \(uri.pinSource) (\(PKCS11Error.name(of: rv))). Put the token's "
                                + "user PIN in \(uri.pinSource) (a locked PIN must be reset with the token's SO PIN first).", returnValue: rv)
                    }
                    if rv != CKR_USER_ALREADY_LOGGED_IN {
                        do throws(PKCS11Error) { try module.check(rv, "C_Login", name) } catch {
                            _ = f.C_CloseSession!(session)
                            throw error
                        }
                    }
                    pool.loggedIn = true
                }
                return .success((session, pool.epoch))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    private func checkIn(_ session: CK_SESSION_HANDLE, epoch: Int) {
        let stale = pool.withLock { pool -> Bool in
            guard pool.epoch == epoch else { return true }
            pool.idle.append(session)
            return false
        }
        if stale { _ = module.functions.pointee.C_CloseSession!(session) }
    }

    /// Drops every session (which logs the user out) so the next call looks the token up and logs in again; after
    /// `error` says the module was finalized, or a token found before is gone from its slot list, reloads the module.
    private func reset(epoch: Int, after error: PKCS11Error) {
        let generation = module.generation
        let found = module.shared {
            pool.withLock { pool -> Bool in
                if pool.epoch == epoch {
                    if let slot = pool.slot { _ = module.functions.pointee.C_CloseAllSessions!(slot) }
                    pool = Pool(slot: nil, epoch: pool.epoch + 1, moduleGeneration: pool.moduleGeneration, idle: [], loggedIn: false, found: pool.found)
                }
                return pool.found
            }
        }
        if error.moduleFinalized {
            module.reload(after: generation, finalize: false)
        } else if error.code == .tokenNotFound && found {
            module.reload(after: generation, finalize: true)
        }
    }

    /// The slot holding the token the URI names.
    private func findSlot() throws(PKCS11Error) -> CK_SLOT_ID {
        let f = module.functions.pointee
        var count = CK_ULONG(0)
        try module.check(f.C_GetSlotList!(CK_BBOOL(CK_TRUE), nil, &count), "C_GetSlotList")
        var slots = [CK_SLOT_ID](repeating: 0, count: Int(count))
        if count > 0 { try module.check(f.C_GetSlotList!(CK_BBOOL(CK_TRUE), &slots, &count), "C_GetSlotList") }
        var seen: [String] = []
        for slot in slots.prefix(Int(count)) {
            var info = CK_TOKEN_INFO()
            guard f.C_GetTokenInfo!(slot, &info) == CKR_OK else { continue }
            let label = Self.text(of: info.label)
            let serial = Self.text(of: info.serialNumber)
            seen.append("\"\(label)\" (serial \(serial), slot \(slot))")
            if let wanted = uri.token, wanted != label { continue }
            if let wanted = uri.serial, wanted != serial { continue }
            if let wanted = uri.slotID, wanted != slot { continue }
            guard info.flags & CK_FLAGS(CKF_TOKEN_INITIALIZED) != 0 else { continue }
            return slot
        }
        throw PKCS11Error(
            .tokenNotFound,
            "No initialized \(name) in the PKCS#11 module \(module.path)"
                + (seen.isEmpty ? " (it shows no token at all)" : "; it has " + seen.joined(separator: ", "))
                + ". Check token= in the URI, that the token is plugged in, and (SoftHSM) that SOFTHSM2_CONF points at the "
                + "configuration whose tokendir holds it (softhsm2-util --show-slots).")
    }

    /// A fixed-width, blank-padded PKCS#11 text field without its padding.
    static func text<T>(of field: T) -> String {
        withUnsafeBytes(of: field) { bytes in
            String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: [" ", "\0"])
        }
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: Set<Character>) -> String {
        var text = Substring(self)
        while let last = text.last, set.contains(last) { text.removeLast() }
        while let first = text.first, set.contains(first) { text.removeFirst() }
        return String(text)
    }
}
