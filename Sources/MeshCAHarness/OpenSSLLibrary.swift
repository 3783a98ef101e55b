import COpenSSL
import Foundation
import MeshCAPlatform

/// The system OpenSSL the harness runs its handshakes on, and the few conversions between its
/// objects and bytes that the rest of the harness needs. Nothing outside MeshCAHarness sees OpenSSL types.
public enum OpenSSLLibrary {
    /// The version of the libssl this process loaded, e.g. `OpenSSL 3.0.19 27 Jan 2026`.
    ///
    /// This is the system library, not the BoringSSL that swift-nio-ssl vendors under prefixed symbols;
    /// both can live in one process. The library is opened here, on first use, not when `meshca` starts; without it
    /// this names what is missing.
    public static var version: String {
        if let failure = loadFailure { return "OpenSSL not loaded (\(failure))" }
        guard let text = OpenSSL_version(Int32(OPENSSL_VERSION)) else { return "OpenSSL (unknown version)" }
        return String(cString: text)
    }

    /// Why the system libssl could not be opened (the dynamic loader's words, naming the file), or nil once it is.
    static var loadFailure: String? {
        meshca_openssl_load().map { String(cString: $0) }
    }

    /// Run once before the first socket write: a peer that closes early must turn OpenSSL's `write(2)`
    /// into an EPIPE error, not a SIGPIPE that kills the process. (OpenSSL's socket BIO cannot pass
    /// MSG_NOSIGNAL, so the signal is ignored process-wide, as servers built on OpenSSL usually do.)
    ///
    /// OpenSSL is initialized without its clean-up at exit (`OPENSSL_INIT_NO_ATEXIT`): that clean-up frees every
    /// thread's OpenSSL state, and a thread ending at the same moment frees its own, so `meshca handshake` sometimes
    /// died in `exit` with "double free or corruption" after printing its report. The process is ending; the
    /// kernel takes the memory back.
    ///
    /// The handshake harness cannot run without the system OpenSSL: when it cannot be opened, the process says so
    /// and exits with status 1 before anything else is done.
    static let prepared: Void = {
        if let failure = loadFailure {
            let library = String(cString: meshca_openssl_library_name())
            FileHandle.standardError.write(Data(
                "meshca: the handshake harness runs on the system OpenSSL, and \(library) cannot be loaded: \(failure). Install it (Debian/Ubuntu: apt-get install libssl3) and retry.\n".utf8))
            exit(1)
        }
        _ = signal(SIGPIPE, SIG_IGN)
        _ = OPENSSL_init_ssl(UInt64(OPENSSL_INIT_NO_ATEXIT), nil)
    }()

    /// Parses DER into a new `X509` (owned by the caller, release with `X509_free`); `nil` when OpenSSL cannot.
    static func x509(der: [UInt8]) -> OpaquePointer? {
        der.withUnsafeBufferPointer { buffer -> OpaquePointer? in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i_X509(nil, &cursor, buffer.count)
        }
    }

    /// An `X509_CRL` from DER, or nil when OpenSSL cannot read it; the caller frees it with `X509_CRL_free`.
    static func crl(der: [UInt8]) -> OpaquePointer? {
        der.withUnsafeBufferPointer { buffer -> OpaquePointer? in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i_X509_CRL(nil, &cursor, buffer.count)
        }
    }

    /// The DER encoding of an `X509` (not consumed).
    static func der(of x509: OpaquePointer) -> [UInt8] {
        let length = i2d_X509(x509, nil)
        guard length > 0 else { return [] }
        var bytes = [UInt8](repeating: 0, count: Int(length))
        let written = bytes.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var cursor: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
            return i2d_X509(x509, &cursor)
        }
        return written == length ? bytes : []
    }

    /// The DER encodings of every certificate in a `STACK_OF(X509)`, in order; empty for `nil`.
    static func derChain(of stack: OpaquePointer?) -> [[UInt8]] {
        guard let stack else { return [] }
        let count = meshca_sk_X509_num(stack)
        guard count > 0 else { return [] }
        return (0..<count).compactMap { index in meshca_sk_X509_value(stack, index).map(der(of:)) }
    }

    /// Parses a PEM private key into a new `EVP_PKEY` (release with `EVP_PKEY_free`); `nil` when OpenSSL cannot.
    static func privateKey(pem: String) -> OpaquePointer? {
        let bytes = Array(pem.utf8)
        return bytes.withUnsafeBytes { buffer -> OpaquePointer? in
            guard let bio = BIO_new_mem_buf(buffer.baseAddress, Int32(buffer.count)) else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_PrivateKey(bio, nil, nil, nil)
        }
    }

    /// OpenSSL's text for an `X509_V_ERR_*` code, e.g. `certificate has expired`.
    static func verifyErrorText(_ code: Int32) -> String {
        guard let text = X509_verify_cert_error_string(Int(code)) else { return "verify error \(code)" }
        return String(cString: text)
    }

    /// The system's text for an `errno` value, e.g. `Connection reset by peer`.
    static func systemErrorText(_ code: Int32) -> String {
        guard let text = strerror(code) else { return "errno \(code)" }
        return String(cString: text)
    }
}
