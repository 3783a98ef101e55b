import Foundation
import MeshCADaemon

/// The `meshca serve` configuration file: `DaemonConfiguration.load(configFile:)` on the input written to a
/// temporary file (the loader reads only from a path): YAML parsing, then every key's value checks.
enum ConfigFuzz {
    static func run(_ bytes: [UInt8]) {
        let path = Fixtures.temporaryPath(".yaml")
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else { fatalError("cannot write \(path)") }
        defer { try? FileManager.default.removeItem(atPath: path) }
        _ = try? DaemonConfiguration.load(flags: [:], environment: [:], configFile: path)
    }
}
