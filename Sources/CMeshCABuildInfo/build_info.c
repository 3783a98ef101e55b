#include "meshca_build_info.h"

// Package.swift defines MESHCA_BUILD_COMMIT as a string literal: $MESHCA_BUILD_COMMIT when set, else the
// commit of the checkout being built (SwiftPM's Context.gitInformation), with "-dirty" when it had changes.
#ifndef MESHCA_BUILD_COMMIT
#define MESHCA_BUILD_COMMIT "unknown"
#endif

const char *meshca_build_commit(void) { return MESHCA_BUILD_COMMIT; }
