import Foundation
import MeshCATestSupport
import Testing

@Suite("What users see when something is wrong")
struct ErrorTests {
    @Test("A bad service account name is a usage error naming the character (exit 64)")
    func badName() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        let result = try await ws.meshca("issue", "--sa", "Web_API")
        #expect(result.status == 64)
        #expect(result.stderr.contains("uppercase \"W\" at position 1"))
        #expect(!FileManager.default.fileExists(atPath: ws.state), "nothing created for a usage error")
    }

    @Test("Bad durations and key types are usage errors with the accepted values")
    func badFlags() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        let duration = try await ws.meshca("issue", "--sa", "was", "--ttl", "1 day")
        #expect(duration.status == 64)
        #expect(duration.stderr.contains("e.g. 90s, 30m, 24h, 7d"))
        let keyType = try await ws.meshca("issue", "--sa", "was", "--key-type", "dsa")
        #expect(keyType.status == 64)
        #expect(keyType.stderr.contains("ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096"))
        let domain = try await ws.meshca("init", "--trust-domain", "Cluster_Local")
        #expect(domain.status == 64)
        #expect(domain.stderr.contains("not valid"))
    }

    @Test("A lifetime above 90 days is refused, names both values, is recorded, and writes no files")
    func ttlTooLong() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        expectSuccess(try await ws.meshca("init"))  // without a CA, nothing is created or recorded (CLIConventionsTests)
        let result = try await ws.meshca("issue", "--sa", "was", "--ttl", "120d")
        #expect(result.status == 1)
        #expect(result.stderr.contains("120d") && result.stderr.contains("90d"))
        #expect(!FileManager.default.fileExists(atPath: ws.dir.file("key.pem")))
        let rejections = try ws.json(try await ws.meshca("audit", "rejections", "--json"))
        #expect(rejections.count == 1)
        #expect(rejections.first?["reason_code"] as? String == "ttl-too-long")
        #expect(try await ws.json(try await ws.meshca("audit", "list", "--json")).isEmpty)
    }

    @Test("init refuses to overwrite a CA and says how to start over")
    func initTwice() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        expectSuccess(try await ws.meshca("init"))
        let before = try ws.dir.read("state/ca-cert.pem")
        let again = try await ws.meshca("init")
        #expect(again.status == 1)
        #expect(again.stderr.contains("already exists") && again.stderr.contains("move that directory aside"))
        #expect(try ws.dir.read("state/ca-cert.pem") == before)
    }

    @Test("An --out that is a file is a usage error naming the path, found before anything is issued")
    func outNotDirectory() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        expectSuccess(try await ws.meshca("init"))
        try ws.dir.write("occupied", "x")
        let result = try await ws.meshca("issue", "--sa", "was", "--out", "occupied")
        #expect(result.status == 64)
        #expect(result.stderr.contains("is a file, not a directory"))
        #expect(try ws.json(try await ws.meshca("audit", "list", "--json")).isEmpty, "nothing issued")
    }

    @Test("A corrupt ledger is named with what to do, and nothing is issued")
    func corruptLedger() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        expectSuccess(try await ws.meshca("init"))
        try FileManager.default.removeItem(atPath: ws.dir.file("state/ledger.db"))
        try ws.dir.write("state/ledger.db", String(repeating: "not a database ", count: 400))
        let result = try await ws.meshca("issue", "--sa", "was")
        #expect(result.status == 1)
        #expect(result.stderr.contains("ledger.db"), "\(result.stderr)")
        #expect(result.stderr.lowercased().contains("corrupt"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: ws.dir.file("key.pem")))
    }

    @Test("A state directory path that is a file is refused")
    func stateIsFile() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        try ws.dir.write("state", "x")
        let result = try await ws.meshca("issue", "--sa", "was")
        #expect(result.status == 1)
        #expect(result.stderr.contains("is not a directory"))
    }

    @Test("Auditing without a CA says how to create one")
    func auditWithoutCA() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        let result = try await ws.meshca("audit", "list")
        #expect(result.status == 1)
        #expect(result.stderr.contains("meshca init"))
    }
}
