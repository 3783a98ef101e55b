import MeshCAIO

extension DaemonConfiguration {
    /// Sets up the process's logging as `logFormat` and `logLevel` say (once, before the first logger is made).
    public func bootstrapLogging() {
        logFormat.bootstrap(level: logLevel)
    }
}
