import MeshCAPlatform

/// The standard `process_*` metrics Prometheus' client libraries export, read from `/proc/self` at each scrape
/// (Linux; elsewhere only the open-file limit): resident memory, open file descriptors and their limit, CPU time
/// and start time.
public enum ProcessMetrics {
    /// The metrics as exposition text.
    public static func exposition() -> String {
        var text = MetricsText()
        if let stat = readFile("/proc/self/stat"), let fields = statFields(stat) {
            let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
            let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
            // Fields after the command, numbered as in proc(5): 14 utime, 15 stime, 22 starttime, 24 rss.
            func field(_ number: Int) -> Double? { fields.count > number - 3 ? Double(fields[number - 3]) : nil }
            if let utime = field(14), let stime = field(15), ticks > 0 {
                text.counter(
                    "process_cpu_seconds_total", help: "Total user and system CPU time spent in seconds.",
                    value: (utime + stime) / ticks)
            }
            if let rss = field(24) {
                text.gauge("process_resident_memory_bytes", help: "Resident memory size in bytes.", value: rss * pageSize)
            }
            if let start = field(22), let boot = bootTime(), ticks > 0 {
                text.gauge(
                    "process_start_time_seconds", help: "Start time of the process since unix epoch in seconds.",
                    value: (Double(boot) + start / ticks).rounded(.down))
            }
        }
        if let open = openFileCount() {
            text.gauge("process_open_fds", help: "Number of open file descriptors.", value: Double(open))
        }
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            text.gauge("process_max_fds", help: "Maximum number of open file descriptors.", value: Double(limit.rlim_cur))
        }
        return text.output
    }

    /// The space-separated fields after `(comm)`, which may itself contain spaces and parentheses.
    static func statFields(_ stat: String) -> [Substring]? {
        guard let close = stat.lastIndex(of: ")") else { return nil }
        return stat[stat.index(after: close)...].split(separator: " ", omittingEmptySubsequences: true)
    }

    /// `btime` from /proc/stat: when the system booted, in Unix seconds.
    private static func bootTime() -> Int? {
        guard let stat = readFile("/proc/stat") else { return nil }
        for line in stat.split(separator: "\n") where line.hasPrefix("btime ") {
            return Int(line.dropFirst(6).trimmingPrefix(while: { $0 == " " }))
        }
        return nil
    }

    /// Entries in /proc/self/fd, less the one this count opens itself.
    private static func openFileCount() -> Int? {
        guard let directory = opendir("/proc/self/fd") else { return nil }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { count += 1 }
        }
        return max(count - 1, 0)
    }

    /// A whole small file (procfs reports size 0, so read until the end).
    static func readFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            bytes += buffer[..<count]
            if bytes.count > 1 << 20 { break }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
