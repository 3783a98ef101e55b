import Foundation
import MeshCAPlatform

/// What Linux's /proc says about a process (all its threads): resident memory and CPU time used.
enum ProcessStats {
    /// A memory field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`) or of another file in `/proc/<pid>` that has the
    /// same `Name: value kB` lines (`smaps_rollup`'s `Pss`), in KiB.
    static func memory(pid: Int32, field: String, file: String = "status") -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/\(file)", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") })
        else { return nil }
        return line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first.flatMap { Int($0) }
    }

    /// User plus system CPU time the process has used so far, in seconds (`utime` + `stime` of `/proc/<pid>/stat`).
    static func cpuSeconds(pid: Int32) -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        // After "pid (comm)" come the fields from number 3 (state) on; utime and stime are numbers 14 and 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// `parent` and its children (from the parent field of every `/proc/<pid>/stat`): a PostgreSQL postmaster and
    /// its backends, WAL writer, checkpointer and the rest.
    static func withChildren(_ parent: Int32) -> [Int32] {
        var pids = [parent]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")  // state, then the parent's id
            if fields.count > 1, Int32(fields[1]) == parent { pids.append(pid) }
        }
        return pids
    }

    /// This process's own CPU time so far, in seconds.
    static var ownCPUSeconds: Double { cpuSeconds(pid: getpid()) ?? 0 }

    /// User plus system CPU time of this process's children that have exited and been waited for, in seconds
    /// (the load generator `h2load`, once it has finished).
    static var childrenCPUSeconds: Double {
        var usage = rusage()
        guard getrusage(__rusage_who_t(RUSAGE_CHILDREN.rawValue), &usage) == 0 else { return 0 }
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    /// The 1-minute load average and the number of runnable tasks (from `/proc/loadavg`), e.g. "0.42 (1 running)".
    static var loadAverage: String {
        guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return "unknown" }
        let fields = text.split(separator: " ")
        guard fields.count >= 4 else { return text.trimmingCharacters(in: .whitespacesAndNewlines) }
        let running = fields[3].split(separator: "/").first.map(String.init) ?? "?"
        return "\(fields[0]) (\(running) running)"
    }

    /// The CPU model from /proc/cpuinfo.
    static var cpuModel: String {
        (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
            .split(separator: "\n")
            .first { $0.hasPrefix("model name") }
            .flatMap { $0.split(separator: ":", maxSplits: 1).last }
            .map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown"
    }
}
