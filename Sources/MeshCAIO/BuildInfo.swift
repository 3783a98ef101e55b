import CMeshCABuildInfo

/// What was built: the version the commands print with `--version` and the git commit (set by Package.swift).
public enum BuildInfo {
    /// The release version.
    public static let version = "0.1.0"
    /// The commit the binary was built from (12 hex digits, `-dirty` when the checkout had uncommitted changes),
    /// `$MESHCA_BUILD_COMMIT` when that was set at build time, or `unknown` outside a git checkout.
    public static let commit = String(cString: meshca_build_commit())

    /// `meshca_build_info{version,commit} 1` (or another `name`, e.g. `meshca_agent_build_info`), for a `/metrics` page.
    public static func exposition(name: String = "meshca_build_info") -> String {
        var text = MetricsText()
        text.gauge(
            name, help: "Always 1; the labels say which meshca build is running.",
            labels: [("version", version), ("commit", commit)], value: 1)
        return text.output
    }
}
