#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>

// The system OpenSSL, loaded on first use rather than by the dynamic loader at every start: only
// `meshca handshake` and `meshca version` use it, and loading libssl and libcrypto cost every other
// command about 3.5 million instructions, 140 page faults and 1.8 MB before `main`. openssl_loader.c
// defines each OpenSSL function the harness calls as a forwarder to the library it opens.

/// Opens the system libssl (libssl.so.3 for OpenSSL 3 headers), once per process. Returns NULL when it is
/// loaded, else why it could not be (dlerror's text). Calling an OpenSSL function without a loaded library
/// ends the process with that message.
const char *meshca_openssl_load(void);

/// The file name the loader opens, e.g. "libssl.so.3".
const char *meshca_openssl_library_name(void);

// Swift does not import function-like macros, so the few the handshake harness needs are wrapped
// here as real (static inline) functions. Each one only forwards to the OpenSSL macro it is named after.

/// SSL_CTX_set_min_proto_version: the lowest TLS version a context negotiates (TLS1_2_VERSION, ...).
static inline int meshca_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_min_proto_version(ctx, version);
}

/// SSL_CTX_add1_chain_cert: appends a certificate to the chain sent after the leaf (the context takes a reference).
static inline int meshca_SSL_CTX_add1_chain_cert(SSL_CTX *ctx, X509 *cert) {
    return (int)SSL_CTX_add1_chain_cert(ctx, cert);
}

/// SSL_set_tlsext_host_name: the SNI name a client sends.
static inline int meshca_SSL_set_tlsext_host_name(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}

/// sk_X509_num: the number of certificates in a STACK_OF(X509); -1 for NULL.
static inline int meshca_sk_X509_num(const STACK_OF(X509) *stack) {
    return sk_X509_num(stack);
}

/// sk_X509_value: the certificate at `index` (not a new reference).
static inline X509 *meshca_sk_X509_value(const STACK_OF(X509) *stack, int index) {
    return sk_X509_value(stack, index);
}

/// ERR_GET_LIB: the library number of a packed OpenSSL error code.
static inline int meshca_ERR_GET_LIB(unsigned long code) {
    return ERR_GET_LIB(code);
}

/// ERR_GET_REASON: the reason number of a packed OpenSSL error code.
static inline int meshca_ERR_GET_REASON(unsigned long code) {
    return ERR_GET_REASON(code);
}
