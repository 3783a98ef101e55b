// The platform's C library, for the system calls meshca makes itself (sockets, file modes, signals, process
// credentials): the one place that chooses between glibc, musl and Darwin. A file that needs them imports
// MeshCAPlatform.
#if canImport(Glibc)
@_exported import Glibc
#elseif canImport(Musl)
@_exported import Musl
#elseif canImport(Darwin)
@_exported import Darwin
#endif
