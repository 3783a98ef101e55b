import CPKCS11
import MeshCACore
@_exported import MeshCAErrors

/// A failure of the PKCS#11 key backend: a bad URI, a missing PIN, a module or token that cannot be used, or a call
/// that failed (with its CK_RV).
public struct PKCS11Error: CodedError {
    /// The closed list of reasons; each `rawValue` is a stable kebab-case name.
    public enum Code: String, ErrorCode {
        /// The PKCS#11 URI cannot be used.
        case badURI = "bad-uri"
        /// The PIN file or variable is missing or empty.
        case pinUnavailable = "pin-unavailable"
        /// The module cannot be loaded or initialized.
        case moduleUnusable = "module-unusable"
        /// No token matches the URI (or it was removed).
        case tokenNotFound = "token-not-found"
        /// The PIN was refused by the token.
        case loginFailed = "login-failed"
        /// No key, or more than one, matches the URI.
        case keyNotFound = "key-not-found"
        /// The key is of a type or size meshca does not sign with.
        case unsupportedKey = "unsupported-key"
        /// A PKCS#11 call failed.
        case callFailed = "call-failed"
    }

    /// The machine-readable reason.
    public let code: Code
    /// The sentence for a person: what failed, with the value, and what to do.
    public let message: String
    /// The CK_RV of the failing call, when there was one.
    public let returnValue: UInt?

    /// Creates an error.
    public init(_ code: Code, _ message: String, returnValue: UInt? = nil) {
        self.code = code
        self.message = message
        self.returnValue = returnValue
    }

    /// Whether closing the sessions (and, if needed, initializing the module again) may fix it: the token was reset or
    /// removed, a session or handle went stale, the module was finalized.
    var isRecoverable: Bool {
        if code == .tokenNotFound { return true }
        guard code == .callFailed, let rv = returnValue else { return false }
        return Self.recoverable.contains(rv)
    }

    /// Whether the module must be initialized again because someone called C_Finalize.
    var moduleFinalized: Bool {
        returnValue == UInt(CKR_CRYPTOKI_NOT_INITIALIZED)
    }

    static let recoverable: Set<UInt> = [
        UInt(CKR_SESSION_HANDLE_INVALID), UInt(CKR_SESSION_CLOSED), UInt(CKR_USER_NOT_LOGGED_IN), UInt(CKR_TOKEN_NOT_PRESENT),
        UInt(CKR_TOKEN_NOT_RECOGNIZED), UInt(CKR_DEVICE_REMOVED), UInt(CKR_DEVICE_ERROR), UInt(CKR_CRYPTOKI_NOT_INITIALIZED),
        UInt(CKR_OBJECT_HANDLE_INVALID), UInt(CKR_KEY_HANDLE_INVALID), UInt(CKR_SLOT_ID_INVALID), UInt(CKR_GENERAL_ERROR),
        UInt(CKR_SESSION_COUNT), UInt(CKR_DEVICE_MEMORY),
    ]

    /// The CK_RV's name from the standard, e.g. `CKR_PIN_INCORRECT`, or its hex value.
    public static func name(of rv: UInt) -> String {
        names[rv] ?? "CKR 0x" + String(rv, radix: 16)
    }

    private static let names: [UInt: String] = [
        UInt(CKR_OK): "CKR_OK", UInt(CKR_HOST_MEMORY): "CKR_HOST_MEMORY", UInt(CKR_SLOT_ID_INVALID): "CKR_SLOT_ID_INVALID",
        UInt(CKR_GENERAL_ERROR): "CKR_GENERAL_ERROR", UInt(CKR_FUNCTION_FAILED): "CKR_FUNCTION_FAILED",
        UInt(CKR_ARGUMENTS_BAD): "CKR_ARGUMENTS_BAD", UInt(CKR_ATTRIBUTE_SENSITIVE): "CKR_ATTRIBUTE_SENSITIVE",
        UInt(CKR_ATTRIBUTE_TYPE_INVALID): "CKR_ATTRIBUTE_TYPE_INVALID", UInt(CKR_ATTRIBUTE_VALUE_INVALID): "CKR_ATTRIBUTE_VALUE_INVALID",
        UInt(CKR_DEVICE_ERROR): "CKR_DEVICE_ERROR", UInt(CKR_DEVICE_MEMORY): "CKR_DEVICE_MEMORY", UInt(CKR_DEVICE_REMOVED): "CKR_DEVICE_REMOVED",
        UInt(CKR_FUNCTION_NOT_SUPPORTED): "CKR_FUNCTION_NOT_SUPPORTED", UInt(CKR_KEY_HANDLE_INVALID): "CKR_KEY_HANDLE_INVALID",
        UInt(CKR_KEY_TYPE_INCONSISTENT): "CKR_KEY_TYPE_INCONSISTENT", UInt(CKR_MECHANISM_INVALID): "CKR_MECHANISM_INVALID",
        UInt(CKR_OBJECT_HANDLE_INVALID): "CKR_OBJECT_HANDLE_INVALID", UInt(CKR_OPERATION_ACTIVE): "CKR_OPERATION_ACTIVE",
        UInt(CKR_PIN_INCORRECT): "CKR_PIN_INCORRECT", UInt(CKR_PIN_LOCKED): "CKR_PIN_LOCKED", UInt(CKR_PIN_EXPIRED): "CKR_PIN_EXPIRED",
        UInt(CKR_SESSION_CLOSED): "CKR_SESSION_CLOSED", UInt(CKR_SESSION_COUNT): "CKR_SESSION_COUNT",
        UInt(CKR_SESSION_HANDLE_INVALID): "CKR_SESSION_HANDLE_INVALID", UInt(CKR_TEMPLATE_INCOMPLETE): "CKR_TEMPLATE_INCOMPLETE",
        UInt(CKR_TEMPLATE_INCONSISTENT): "CKR_TEMPLATE_INCONSISTENT", UInt(CKR_TOKEN_NOT_PRESENT): "CKR_TOKEN_NOT_PRESENT",
        UInt(CKR_TOKEN_NOT_RECOGNIZED): "CKR_TOKEN_NOT_RECOGNIZED", UInt(CKR_TOKEN_WRITE_PROTECTED): "CKR_TOKEN_WRITE_PROTECTED",
        UInt(CKR_USER_ALREADY_LOGGED_IN): "CKR_USER_ALREADY_LOGGED_IN", UInt(CKR_USER_NOT_LOGGED_IN): "CKR_USER_NOT_LOGGED_IN",
        UInt(CKR_USER_PIN_NOT_INITIALIZED): "CKR_USER_PIN_NOT_INITIALIZED", UInt(CKR_BUFFER_TOO_SMALL): "CKR_BUFFER_TOO_SMALL",
        UInt(CKR_CRYPTOKI_NOT_INITIALIZED): "CKR_CRYPTOKI_NOT_INITIALIZED",
        UInt(CKR_CRYPTOKI_ALREADY_INITIALIZED): "CKR_CRYPTOKI_ALREADY_INITIALIZED", UInt(CKR_DATA_LEN_RANGE): "CKR_DATA_LEN_RANGE",
        UInt(CKR_KEY_FUNCTION_NOT_PERMITTED): "CKR_KEY_FUNCTION_NOT_PERMITTED", UInt(CKR_DOMAIN_PARAMS_INVALID): "CKR_DOMAIN_PARAMS_INVALID",
    ]

    /// The error as the CA's refusal: `signer-unavailable` (the daemon answers UNAVAILABLE and records it).
    public var asIssuanceError: IssuanceError {
        IssuanceError(.signerUnavailable, "The CA key in the hardware security module cannot sign right now: \(message)")
    }
}
