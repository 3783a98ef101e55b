#include "cpkcs11.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

int meshca_pkcs11_load(const char *path, void **handle, CK_FUNCTION_LIST_PTR *functions, char *error, unsigned long error_size) {
    *handle = NULL;
    *functions = NULL;
    void *library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        const char *reason = dlerror();
        snprintf(error, error_size, "%s", reason ? reason : "dlopen failed");
        return -1;
    }
    CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(library, "C_GetFunctionList");
    if (get == NULL) {
        snprintf(error, error_size, "%s has no C_GetFunctionList symbol; it is not a PKCS#11 module", path);
        dlclose(library);
        return -1;
    }
    CK_RV rv = get(functions);
    if (rv != CKR_OK || *functions == NULL) {
        snprintf(error, error_size, "C_GetFunctionList of %s failed (CK_RV 0x%lx)", path, (unsigned long)rv);
        dlclose(library);
        return -1;
    }
    *handle = library;
    return 0;
}

void meshca_pkcs11_unload(void *handle) {
    if (handle != NULL) dlclose(handle);
}
