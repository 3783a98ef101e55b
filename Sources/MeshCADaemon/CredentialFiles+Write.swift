import Foundation
import MeshCAIO

extension CredentialFiles {
    /// Writes the three files into `directory` (created when missing), each atomically: key first, then
    /// the chain, then the roots, as istio-agent orders them.
    public static func write(
        to directory: String,
        certChainPEM: String,
        keyPEM: String,
        bundlePEM: String,
        keyMode: mode_t = 0o600
    ) throws {
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw DaemonError(
                    .writeFailed,
                    "Cannot create the output directory \(directory) (\(FilePaths.reason(error))). Choose a writable --out."
                )
            }
        } else if !isDirectory.boolValue {
            throw DaemonError(.writeFailed, "The output path \(directory) is a file, not a directory. Choose another --out.")
        }
        guard FileManager.default.isWritableFile(atPath: directory) else {
            throw DaemonError(.writeFailed, "The output directory \(directory) is not writable by this user. Choose another --out or fix its permissions.")
        }
        try AtomicFile.write(keyPEM, to: directory + "/" + keyFile, mode: keyMode)
        try AtomicFile.write(certChainPEM, to: directory + "/" + chainFile, mode: 0o644)
        try AtomicFile.write(bundlePEM, to: directory + "/" + bundleFile, mode: 0o644)
    }
}
