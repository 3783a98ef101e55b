import MeshCADaemon
import Testing

@Suite("retry-window: default 5m, off, at most 1h")
struct RetryWindowConfigurationTests {
    func load(_ value: String?) throws -> DaemonConfiguration {
        try DaemonConfiguration.load(flags: value.map { ["retry-window": $0] } ?? [:], environment: [:], configFile: nil)
    }

    @Test("The default is 5m; off and 0 turn it off; a duration sets it")
    func values() throws {
        #expect(try load(nil).retryWindow == .seconds(300))
        #expect(try load("off").retryWindow == .zero)
        #expect(try load("0").retryWindow == .zero)
        #expect(try load("90s").retryWindow == .seconds(90))
    }

    @Test("Longer than 1h, or not a duration, is refused naming the key")
    func refused() throws {
        for bad in ["2h", "soon"] {
            let error = #expect(throws: ConfigurationError.self) { _ = try load(bad) }
            #expect(error?.description.contains("retry-window") == true, "\(String(describing: error))")
        }
    }
}

@Suite("state-poll-interval: default 1s, at most 1h")
struct StatePollIntervalConfigurationTests {
    @Test("The default is 1s; flag and environment set it; longer than 1h or not a duration is refused naming the key")
    func values() throws {
        #expect(try DaemonConfiguration.load(flags: [:], environment: [:], configFile: nil).statePollInterval == .seconds(1))
        #expect(try DaemonConfiguration.load(flags: ["state-poll-interval": "10s"], environment: [:], configFile: nil).statePollInterval == .seconds(10))
        #expect(
            try DaemonConfiguration.load(flags: [:], environment: ["MESHCA_STATE_POLL_INTERVAL": "5s"], configFile: nil).statePollInterval
                == .seconds(5))
        for bad in ["2h", "often"] {
            let error = #expect(throws: ConfigurationError.self) {
                _ = try DaemonConfiguration.load(flags: ["state-poll-interval": bad], environment: [:], configFile: nil)
            }
            #expect(error?.description.contains("state-poll-interval") == true, "\(String(describing: error))")
        }
    }
}
