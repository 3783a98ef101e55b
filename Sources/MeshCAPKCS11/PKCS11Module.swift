import CPKCS11
import Synchronization
import MeshCAPlatform

/// A PKCS#11 module (shared library) loaded once per process with `dlopen` and initialized with OS locking.
///
/// Every token and key from the same `module-path` shares one module. When a call reports that the module is no
/// longer initialized (someone called C_Finalize), or a token it had vanished (a module such as SoftHSM lists
/// its tokens once, at C_Initialize), ``reload(after:)`` finalizes and initializes it again; ``generation`` tells
/// sessions opened before that they are gone. Every use of the module holds ``shared(_:)``, and a reload waits
/// for them to finish (a write lock), so no thread is inside the module while it is finalized.
final class PKCS11Module: Sendable {
    /// The module's file.
    let path: String
    /// The module's function table (immutable once loaded).
    nonisolated(unsafe) let functions: CK_FUNCTION_LIST_PTR
    private let state = Mutex(State())
    /// Held shared by every use of the module, exclusively by a reload. Writers are preferred, so a stream of
    /// signatures cannot keep a reload waiting for ever.
    nonisolated(unsafe) private let lock: UnsafeMutablePointer<pthread_rwlock_t>

    private struct State {
        var initialized = false
        var generation = 0
        var lastReload: ContinuousClock.Instant?
    }

    /// The shortest time between two reloads: while a token stays away, requests do not reload the module
    /// back to back.
    static let reloadInterval: Duration = .milliseconds(500)

    private static let loaded = Mutex<[String: PKCS11Module]>([:])

    private init(path: String, functions: CK_FUNCTION_LIST_PTR) {
        self.path = path
        self.functions = functions
        lock = .allocate(capacity: 1)
        var attributes = pthread_rwlockattr_t()
        pthread_rwlockattr_init(&attributes)
        #if canImport(Glibc)
        pthread_rwlockattr_setkind_np(&attributes, Int32(PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP))
        #endif
        pthread_rwlock_init(lock, &attributes)
        pthread_rwlockattr_destroy(&attributes)
    }

    /// Runs `body`, which calls into the module, while no reload can happen. Not re-entrant.
    func shared<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }

    /// The module at `path`, loaded on first use (and never unloaded: its threads and handles live as long as the process).
    static func named(_ path: String) throws(PKCS11Error) -> PKCS11Module {
        let result: Result<PKCS11Module, PKCS11Error> = loaded.withLock { modules in
            if let module = modules[path] { return .success(module) }
            var handle: UnsafeMutableRawPointer?
            var functions: CK_FUNCTION_LIST_PTR?
            var error = [CChar](repeating: 0, count: 512)
            guard meshca_pkcs11_load(path, &handle, &functions, &error, UInt(error.count)) == 0, let functions else {
                let reason = String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                return .failure(
                    PKCS11Error(
                        .moduleUnusable,
                        "Cannot load the PKCS#11 module \(path) (module-path of the CA key's URI): \(reason). Install the module "
                            + "(SoftHSM: apt-get install softhsm2, /usr/lib/softhsm/libsofthsm2.so) or fix module-path."))
            }
            let module = PKCS11Module(path: path, functions: functions)
            modules[path] = module
            return .success(module)
        }
        return try result.get()
    }

    /// Initializes the module when it is not yet, and returns the current generation.
    func ready() throws(PKCS11Error) -> Int {
        let result: Result<Int, PKCS11Error> = state.withLock { state in
            if state.initialized { return .success(state.generation) }
            if let error = initialize() { return .failure(error) }
            state.initialized = true
            return .success(state.generation)
        }
        return try result.get()
    }

    /// Finalizes (when `finalize`) and initializes the module again, unless another thread already did since
    /// `generation` or a reload happened less than ``reloadInterval`` ago. Must not be called inside ``shared(_:)``.
    func reload(after generation: Int, finalize: Bool) {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        state.withLock { state in
            guard state.generation == generation else { return }
            let now = ContinuousClock.now
            if finalize, let last = state.lastReload, now - last < Self.reloadInterval { return }
            if finalize && state.initialized { _ = functions.pointee.C_Finalize!(nil) }
            state.initialized = initialize() == nil
            state.generation += 1
            state.lastReload = now
        }
    }

    /// The current generation: it changes each time the module is reloaded.
    var generation: Int { state.withLock { $0.generation } }

    private func initialize() -> PKCS11Error? {
        var arguments = CK_C_INITIALIZE_ARGS()
        arguments.flags = CK_FLAGS(CKF_OS_LOCKING_OK)
        let rv = withUnsafeMutablePointer(to: &arguments) { functions.pointee.C_Initialize!(UnsafeMutableRawPointer($0)) }
        // Already initialized by another user of the module in this process: fine, it is usable.
        guard rv == CKR_OK || rv == CKR_CRYPTOKI_ALREADY_INITIALIZED else {
            return PKCS11Error(
                .moduleUnusable, "C_Initialize of the PKCS#11 module \(path) failed (\(PKCS11Error.name(of: rv))). Check the module's "
                    + "own configuration (SoftHSM: SOFTHSM2_CONF and its tokendir).", returnValue: rv)
        }
        return nil
    }

    /// Calls a PKCS#11 function and turns a CK_RV other than CKR_OK into a ``PKCS11Error`` naming `function`.
    func check(_ rv: CK_RV, _ function: String, _ context: @autoclosure () -> String = "") throws(PKCS11Error) {
        guard rv != CKR_OK else { return }
        let extra = context()
        throw PKCS11Error(
            .callFailed, "\(function) failed with \(PKCS11Error.name(of: rv))\(extra.isEmpty ? "" : " (" + extra + ")") in \(path)",
            returnValue: rv)
    }
}
