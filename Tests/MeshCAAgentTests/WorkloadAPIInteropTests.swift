import Foundation
import MeshCAAgent
import MeshCACore
import MeshCATestSupport
import Testing

@Suite("Workload API interoperability with py-spiffe, SPIFFE's own Python client", .timeLimit(.minutes(3)))
struct WorkloadAPIInteropTests {
    /// The Python interpreter with `spiffe` (py-spiffe), grpcio and cryptography: `$MESHCA_INTEROP_PYTHON`,
    /// else the virtualenv scripts/test.sh creates.
    static var python: String {
        if let explicit = ProcessInfo.processInfo.environment["MESHCA_INTEROP_PYTHON"] { return explicit }
        return packageRoot + "/.build/interop-venv/bin/python"
    }

    static var packageRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }

    @Test(
        "py-spiffe fetches the SVID (ID, key matching the leaf), the bundles, is refused without the header, and sees a renewal"
    )
    func pySpiffe() async throws {
        try #require(
            FileManager.default.isExecutableFile(atPath: Self.python),
            "no \(Self.python): run scripts/test.sh, which creates it with py-spiffe"
        )
        let probe = try await Command.run(Self.python, ["-c", "import spiffe, grpc, cryptography"])
        try #require(probe.status == 0, "\(Self.python) lacks py-spiffe: pip install spiffe (\(probe.stderr))")

        let fixture = try WorkloadAPIFixture()
        let original = try fixture.publishNew()
        let (result, renewed) = try await fixture.withServer { _, _ in
            let client = try BackgroundProcess(
                Self.python,
                [Self.packageRoot + "/Tests/MeshCAAgentTests/interop/workload_api_client.py", fixture.socketPath]
            )
            defer { client.terminate() }
            _ = try await client.waitForLine(containing: "FIRST-UPDATE")
            let renewed = try fixture.publishNew()
            let line = try await client.waitForLine(containing: "RESULT ")
            let json = try #require(line.split(separator: " ", maxSplits: 1).last)
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            return (try decoder.decode(PySpiffeResult.self, from: Data(json.utf8)), renewed)
        }
        #expect(result.spiffeId == "spiffe://cluster.local/ns/default/sa/was")
        #expect(result.keyMatchesLeaf)
        #expect(result.chainLength == 1)
        #expect(result.serial == Self.pythonHex(original.leaf.serialHex))
        #expect(result.bundleAuthorities == 1)
        #expect(result.leafIssuerInBundle)
        #expect(result.contextSvid == "spiffe://cluster.local/ns/default/sa/was")
        #expect(result.contextBundleAuthorities == 1)
        #expect(result.noHeaderCode == "INVALID_ARGUMENT")
        #expect(result.rotationSeen)
        #expect(result.streamSerials.first == Self.pythonHex(original.leaf.serialHex))
        #expect(result.streamSerials.last == Self.pythonHex(renewed.leaf.serialHex))
        #expect(result.streamErrors.isEmpty)
    }

    /// Python's `format(serial, "x")`: lowercase hex without leading zeros.
    static func pythonHex(_ hex: String) -> String {
        let trimmed = hex.lowercased().drop { $0 == "0" }
        return trimmed.isEmpty ? "0" : String(trimmed)
    }

    /// What interop/workload_api_client.py prints after "RESULT ".
    struct PySpiffeResult: Decodable, Sendable {
        let spiffeId: String
        let chainLength: Int
        let keyMatchesLeaf: Bool
        let serial: String
        let bundleAuthorities: Int
        let leafIssuerInBundle: Bool
        let contextSvid: String
        let contextBundleAuthorities: Int
        let noHeaderCode: String
        let rotationSeen: Bool
        let streamSerials: [String]
        let streamErrors: [String]
    }
}
