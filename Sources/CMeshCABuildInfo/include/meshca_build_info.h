#ifndef MESHCA_BUILD_INFO_H
#define MESHCA_BUILD_INFO_H

/// The git commit meshca was built from (Package.swift passes it as MESHCA_BUILD_COMMIT), or "unknown".
const char *meshca_build_commit(void);

#endif
