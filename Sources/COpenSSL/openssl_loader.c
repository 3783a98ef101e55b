// Forwarders for the OpenSSL functions the handshake harness calls: each resolves the real function in the
// system libssl (and the libcrypto it depends on) on first use. The prototypes come from OpenSSL's own headers,
// so a forwarder that does not match its declaration does not compile.
#include "COpenSSL.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#if OPENSSL_VERSION_MAJOR >= 3
#define MESHCA_LIBSSL "libssl.so.3"
#else
#define MESHCA_LIBSSL "libssl.so.1.1"
#endif

static void *library;
static char failure[512];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void) {
    library = dlopen(MESHCA_LIBSSL, RTLD_LAZY | RTLD_LOCAL);
    if (library == NULL) {
        const char *error = dlerror();
        snprintf(failure, sizeof failure, "%s", error != NULL ? error : "dlopen failed");
    }
}

const char *meshca_openssl_load(void) {
    pthread_once(&once, load);
    return library != NULL ? NULL : failure;
}

const char *meshca_openssl_library_name(void) { return MESHCA_LIBSSL; }

// The library's function `name`, looked up the first time and kept in `slot`.
static void *real(void **slot, const char *name) {
    void *address = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (address != NULL) return address;
    const char *error = meshca_openssl_load();
    if (error != NULL) {
        fprintf(stderr, "meshca: the system OpenSSL (%s) cannot be loaded: %s. Install it (Debian/Ubuntu: apt-get install libssl3).\n",
                MESHCA_LIBSSL, error);
        abort();
    }
    address = dlsym(library, name);
    if (address == NULL) {
        fprintf(stderr, "meshca: the system OpenSSL (%s) has no function %s.\n", MESHCA_LIBSSL, name);
        abort();
    }
    __atomic_store_n(slot, address, __ATOMIC_RELEASE);
    return address;
}

// One forwarder: a function with OpenSSL's name and prototype that calls the library's.
#define FORWARD(ret, name, params, args) \
    ret name params { static void *slot; return ((ret(*) params)real(&slot, #name)) args; }
#define FORWARD_VOID(name, params, args) \
    void name params { static void *slot; ((void(*) params)real(&slot, #name)) args; }

// libcrypto
FORWARD(int, BIO_free, (BIO *a), (a))
FORWARD(BIO *, BIO_new_mem_buf, (const void *buf, int len), (buf, len))
FORWARD_VOID(ERR_error_string_n, (unsigned long e, char *buf, size_t len), (e, buf, len))
FORWARD(unsigned long, ERR_get_error, (void), ())
FORWARD_VOID(EVP_PKEY_free, (EVP_PKEY *pkey), (pkey))
FORWARD(int, OPENSSL_sk_num, (const OPENSSL_STACK *stack), (stack))
FORWARD(void *, OPENSSL_sk_value, (const OPENSSL_STACK *stack, int index), (stack, index))
FORWARD_VOID(OPENSSL_thread_stop, (void), ())
FORWARD(const char *, OpenSSL_version, (int type), (type))
FORWARD(EVP_PKEY *, PEM_read_bio_PrivateKey, (BIO *out, EVP_PKEY **x, pem_password_cb *cb, void *u), (out, x, cb, u))
FORWARD(X509 *, d2i_X509, (X509 **a, const unsigned char **in, long len), (a, in, len))
FORWARD(int, i2d_X509, (const X509 *a, unsigned char **out), (a, out))
FORWARD_VOID(X509_free, (X509 *a), (a))
FORWARD(X509_CRL *, d2i_X509_CRL, (X509_CRL **a, const unsigned char **in, long len), (a, in, len))
FORWARD_VOID(X509_CRL_free, (X509_CRL *a), (a))
FORWARD(X509 *, X509_STORE_CTX_get0_cert, (const X509_STORE_CTX *ctx), (ctx))
FORWARD(STACK_OF(X509) *, X509_STORE_CTX_get0_untrusted, (const X509_STORE_CTX *ctx), (ctx))
FORWARD(X509 *, X509_STORE_CTX_get_current_cert, (const X509_STORE_CTX *ctx), (ctx))
FORWARD(int, X509_STORE_CTX_get_error, (const X509_STORE_CTX *ctx), (ctx))
FORWARD(int, X509_STORE_CTX_get_error_depth, (const X509_STORE_CTX *ctx), (ctx))
FORWARD_VOID(X509_STORE_CTX_set_error, (X509_STORE_CTX *ctx, int s), (ctx, s))
FORWARD(int, X509_STORE_add_cert, (X509_STORE *ctx, X509 *x), (ctx, x))
FORWARD(int, X509_STORE_add_crl, (X509_STORE *ctx, X509_CRL *x), (ctx, x))
FORWARD(int, X509_STORE_set_flags, (X509_STORE *ctx, unsigned long flags), (ctx, flags))
FORWARD(int, X509_check_private_key, (const X509 *x509, const EVP_PKEY *pkey), (x509, pkey))
FORWARD(int, X509_verify_cert, (X509_STORE_CTX *ctx), (ctx))
FORWARD(const char *, X509_verify_cert_error_string, (long n), (n))

// libssl
FORWARD(int, OPENSSL_init_ssl, (uint64_t opts, const OPENSSL_INIT_SETTINGS *settings), (opts, settings))
FORWARD(const char *, SSL_CIPHER_get_name, (const SSL_CIPHER *c), (c))
FORWARD(long, SSL_CTX_ctrl, (SSL_CTX *ctx, int cmd, long larg, void *parg), (ctx, cmd, larg, parg))
FORWARD_VOID(SSL_CTX_free, (SSL_CTX *ctx), (ctx))
FORWARD(X509_STORE *, SSL_CTX_get_cert_store, (const SSL_CTX *ctx), (ctx))
FORWARD(SSL_CTX *, SSL_CTX_new, (const SSL_METHOD *meth), (meth))
FORWARD_VOID(SSL_CTX_set_cert_verify_callback, (SSL_CTX *ctx, int (*cb)(X509_STORE_CTX *, void *), void *arg), (ctx, cb, arg))
FORWARD(int, SSL_CTX_set_cipher_list, (SSL_CTX *ctx, const char *str), (ctx, str))
FORWARD(int, SSL_CTX_set_num_tickets, (SSL_CTX *ctx, size_t num_tickets), (ctx, num_tickets))
FORWARD_VOID(SSL_CTX_set_verify, (SSL_CTX *ctx, int mode, SSL_verify_cb callback), (ctx, mode, callback))
FORWARD(int, SSL_CTX_use_PrivateKey, (SSL_CTX *ctx, EVP_PKEY *pkey), (ctx, pkey))
FORWARD(int, SSL_CTX_use_certificate, (SSL_CTX *ctx, X509 *x), (ctx, x))
FORWARD(int, SSL_accept, (SSL *ssl), (ssl))
FORWARD(int, SSL_connect, (SSL *ssl), (ssl))
FORWARD(long, SSL_ctrl, (SSL *ssl, int cmd, long larg, void *parg), (ssl, cmd, larg, parg))
FORWARD_VOID(SSL_free, (SSL *ssl), (ssl))
FORWARD(X509 *, SSL_get1_peer_certificate, (const SSL *s), (s))
FORWARD(const SSL_CIPHER *, SSL_get_current_cipher, (const SSL *s), (s))
FORWARD(int, SSL_get_error, (const SSL *s, int ret_code), (s, ret_code))
FORWARD(const char *, SSL_get_version, (const SSL *s), (s))
FORWARD(SSL *, SSL_new, (SSL_CTX *ctx), (ctx))
FORWARD(int, SSL_read, (SSL *ssl, void *buf, int num), (ssl, buf, num))
FORWARD(int, SSL_set_fd, (SSL *s, int fd), (s, fd))
FORWARD(int, SSL_shutdown, (SSL *s), (s))
FORWARD(int, SSL_write, (SSL *ssl, const void *buf, int num), (ssl, buf, num))
FORWARD(const SSL_METHOD *, TLS_client_method, (void), ())
FORWARD(const SSL_METHOD *, TLS_server_method, (void), ())
