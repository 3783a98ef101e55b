#ifndef MESHCA_CPKCS11_H
#define MESHCA_CPKCS11_H

// The standard PKCS#11 (Cryptoki) header as the distribution ships it (p11-kit's, apt: libp11-kit-dev).
// Nothing is linked from p11-kit: the module is opened at run time with meshca_pkcs11_load.
#include <p11-kit-1/p11-kit/pkcs11.h>

/// Opens the PKCS#11 module at `path` (dlopen) and returns its function list in `*functions`.
/// Returns 0 on success; otherwise writes why into `error` (at most `error_size` bytes, NUL-terminated)
/// and returns -1. The handle is returned in `*handle` for meshca_pkcs11_unload.
int meshca_pkcs11_load(const char *path, void **handle, CK_FUNCTION_LIST_PTR *functions, char *error, unsigned long error_size);

/// Closes a module opened by meshca_pkcs11_load.
void meshca_pkcs11_unload(void *handle);

#endif
