import Foundation
import Synchronization

/// A SoftHSM2 token in a temporary directory, for the tests and the benchmark of CA keys in an HSM: its own
/// `softhsm2.conf` (`directories.tokendir` inside the directory), one token initialized with `softhsm2-util`, and the
/// user PIN in a 0600 file for `pin-source=file:`. A process that loads the module reads `SOFTHSM2_CONF` once, when
/// it first initializes it: child processes get ``environment``; in-process code uses ``shared``, which points this
/// process's `SOFTHSM2_CONF` at its token before anything loads the module.
public struct SoftHSM: Sendable {
    /// Where Debian's and Ubuntu's `softhsm2` package installs the module.
    public static let modulePath = "/usr/lib/softhsm/libsofthsm2.so"

    /// Whether SoftHSM2 is installed (the module and `softhsm2-util`); tests of HSM keys are skipped, saying so, when not.
    public static var isAvailable: Bool {
        FileManager.default.fileExists(atPath: modulePath)
            && ["/usr/bin/softhsm2-util", "/usr/local/bin/softhsm2-util"].contains { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Why HSM tests are skipped when ``isAvailable`` is false.
    public static let unavailableReason = "softhsm2 is not installed (apt-get install softhsm2; scripts/test.sh installs it)"

    /// The directory holding the configuration, the tokens and the PIN file.
    public let directory: TemporaryDirectory
    /// The token's label.
    public let label: String

    /// `softhsm2.conf`.
    public var configPath: String { directory.file("softhsm2.conf") }
    /// The token directory (`directories.tokendir`); removing it is how a test makes the token vanish.
    public var tokenDirectory: String { directory.file("tokens") }
    /// The user PIN, in a 0600 file.
    public var pinFile: String { directory.file("user-pin") }
    /// The environment a child process needs to see this token.
    public var environment: [String: String] { ["SOFTHSM2_CONF": configPath] }

    /// A new directory with a configuration and one initialized token labelled `label`.
    public static func make(label: String = "meshca") throws -> SoftHSM {
        let directory = try TemporaryDirectory("softhsm")
        let hsm = SoftHSM(directory: directory, label: label)
        try FileManager.default.createDirectory(atPath: hsm.tokenDirectory, withIntermediateDirectories: true)
        try directory.write("softhsm2.conf", "directories.tokendir = \(hsm.tokenDirectory)\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n")
        try directory.write("user-pin", "87654321\n")
        chmod(hsm.pinFile, 0o600)
        let result = try Command.runBlocking(
            "softhsm2-util", ["--init-token", "--free", "--label", label, "--so-pin", "12345678", "--pin", "87654321"],
            environment: ProcessInfo.processInfo.environment.merging(hsm.environment) { _, new in new })
        guard result.status == 0 else {
            throw BackgroundProcessError("softhsm2-util --init-token failed (\(result.status)): \(result.stderr)\(result.stdout)")
        }
        return hsm
    }

    /// The PKCS#11 URI of the key labelled `object` in this token (the PIN from ``pinFile``).
    public func uri(object: String, id: String? = nil) -> String {
        "pkcs11:token=\(label);object=\(object)\(id.map { ";id=" + $0 } ?? "")?module-path=\(Self.modulePath)&pin-source=file:\(pinFile)"
    }

    /// The token this process's in-process code uses. Made on first use, which also sets this process's
    /// `SOFTHSM2_CONF` to it: touch it before anything in the process loads the SoftHSM module.
    private static let sharedPath = Mutex<String?>(nil)

    public static let shared: Result<SoftHSM, BackgroundProcessError> = {
        do {
            let hsm = try SoftHSM.make(label: "meshca-shared")
            setenv("SOFTHSM2_CONF", hsm.configPath, 1)
            // Removed when the process exits (the module may use it until then).
            sharedPath.withLock { $0 = hsm.directory.path }
            atexit {
                if let path = SoftHSM.sharedPath.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: path) }
            }
            return .success(hsm)
        } catch {
            return .failure(BackgroundProcessError("cannot make the shared SoftHSM token: \(error)"))
        }
    }()
}
