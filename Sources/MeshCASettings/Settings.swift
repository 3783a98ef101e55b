import Foundation  // Yams needs it anyway.
import MeshCACore
import MeshCAIO
import Yams

/// Every problem found in a command's settings (`meshca serve`, `meshca agent`), reported together so one edit
/// fixes them all.
///
/// Each problem is one sentence naming the key, where the value came from (`flag --max-ttl`,
/// `environment MESHCA_MAX_TTL`, `config file PATH`), the bad value, the accepted values and an example.
///
/// Not a ``DaemonError``: one report of several problems at once.
public struct ConfigurationError: CodedError {
    /// The problems, one sentence each: the config file's first, then flags', then each key in the keys' order.
    public let problems: [String]

    /// Creates an error from at least one problem.
    public init(problems: [String]) {
        self.problems = problems
    }

    /// Always `invalid-configuration`.
    public var code: DaemonError.Code { .invalidConfiguration }

    /// The only problem, or a count followed by one problem per line.
    public var message: String {
        if problems.count == 1 { return problems[0] }
        return "The configuration has \(problems.count) problems:\n" + problems.map { "  - \($0)" }.joined(separator: "\n")
    }
}

/// Why a value breaks its key's rule, before the reader adds the key, the source and an example.
///
/// Not a ``DaemonError``: a clause of a ``ConfigurationError`` sentence.
public struct SettingProblem: CodedError {
    /// The clause ("it is longer than 1h").
    public let why: String
    public init(_ why: String) { self.why = why }
    /// Always `invalid-value`.
    public var code: DaemonError.Code { .invalidValue }
    /// The clause.
    public var message: String { why }
}

/// Where a setting's value came from, so a message can say where to fix it.
public enum SettingSource: Sendable, Equatable {
    case flag
    case environment
    case file(String)
    case defaultValue
}

/// One key of a command's settings: its rule for messages and the docs, an example, and how its text sets a field
/// of `Draft` (the configuration being built). The key is `--KEY` as a flag, `PREFIXKEY` with `-` as `_` in the
/// environment, and `KEY:` in the YAML file.
public struct SettingKey<Draft>: Sendable {
    public let name: String
    /// Whether the value is a list: comma-separated in flags and environment, a YAML list or a comma-separated
    /// string in the file.
    public let isList: Bool
    /// What the key accepts, in words.
    public let accepts: String
    public let example: String
    /// Sets the field from the value; throws ``SettingProblem``, or an error whose message states the rule.
    let apply: @Sendable (Setting, inout Draft) throws -> Void

    public init(
        _ name: String,
        list: Bool = false,
        accepts: String,
        example: String,
        apply: @escaping @Sendable (Setting, inout Draft) throws -> Void
    ) {
        self.name = name
        self.isList = list
        self.accepts = accepts
        self.example = example
        self.apply = apply
    }
}

/// One key's raw value and where it came from, with the checks keys use.
public struct Setting: Sendable {
    /// The key's name.
    public let key: String
    /// The value as written; for a YAML list, its items joined with commas.
    public let text: String
    /// The items: split at commas, trimmed, empty ones dropped (for a key that is not a list, its one value).
    public let items: [String]
    public let source: SettingSource
    /// The key's `PREFIXKEY` variable, its rule and its example, for messages.
    let environmentName: String
    let accepts: String
    let example: String

    init<Draft>(_ key: SettingKey<Draft>, text: String, items: [String]? = nil, source: SettingSource, environmentName: String) {
        self.key = key.name
        self.text = text
        self.items = (items ?? [text]).flatMap { $0.split(separator: ",") }.map { $0.trimmed }.filter { !$0.isEmpty }
        self.source = source
        self.environmentName = environmentName
        self.accepts = key.accepts
        self.example = key.example
    }

    /// `flag --KEY`, `environment PREFIXKEY`, `config file PATH` or `default`.
    public var origin: String {
        switch source {
        case .flag: "flag --\(key)"
        case .environment: "environment \(environmentName)"
        case .file(let path): "config file \(path)"
        case .defaultValue: "default"
        }
    }

    /// How to write `value` for this key where the value came from.
    public func written(as value: String) -> String {
        switch source {
        case .flag, .defaultValue: "--\(key) \(value)"
        case .environment: "\(environmentName)=\(value)"
        case .file: "\(key): \(value)"
        }
    }

    /// The sentence for a value that breaks the key's rule (the value escaped); `example` replaces the key's usual
    /// example value.
    public func problem(_ why: String, example: String? = nil) -> String {
        var why = why
        while why.hasSuffix(".") { why.removeLast() }
        return "\(key) (\(origin)) = \"\(text.escapedForLog)\": \(why). Accepted: \(accepts). "
            + "Example: \(written(as: example ?? self.example))"
    }

    /// `true`/`yes`/`1` or `false`/`no`/`0`, any case.
    public func boolean() throws(SettingProblem) -> Bool {
        switch text.trimmed.lowercased() {
        case "true", "yes", "1": return true
        case "false", "no", "0": return false
        default: throw SettingProblem("it is not true or false")
        }
    }

    /// The text, unless it is empty or blank.
    public func nonEmpty() throws(SettingProblem) -> String {
        guard !text.trimmed.isEmpty else { throw SettingProblem("it is empty") }
        return text
    }

    /// The items, at least one.
    public func nonEmptyItems() throws(SettingProblem) -> [String] {
        guard !items.isEmpty else { throw SettingProblem("it lists nothing") }
        return items
    }

    /// The items, at least one, each passing `check` (which returns why an item is bad).
    public func list(checking check: (String) -> String?) throws(SettingProblem) -> [String] {
        for item in try nonEmptyItems() {
            if let why = check(item) { throw SettingProblem("\"\(item)\": \(why)") }
        }
        return items
    }

    /// The path, when it names a regular file this user can read.
    public func readableFile() throws(SettingProblem) -> String {
        let path = try nonEmpty()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw SettingProblem("no such file") }
        guard !isDirectory.boolValue else { throw SettingProblem("it is a directory") }
        guard FileManager.default.isReadableFile(atPath: path) else { throw SettingProblem("this user cannot read it") }
        return path
    }
}

/// Reads a command's settings from its YAML file, the environment and its flags (later ones win), then applies
/// them all to a draft configuration, collecting every problem instead of stopping at the first.
public struct SettingsReader<Draft>: Sendable {
    /// The command, for messages (`meshca serve`).
    public let command: String
    /// The environment variables' prefix (`MESHCA_`, `MESHCA_AGENT_`).
    public let environmentPrefix: String
    /// Every key, in the order values are applied and problems reported.
    public let keys: [SettingKey<Draft>]
    /// The values read so far, by key.
    public private(set) var settings: [String: Setting] = [:]
    /// Problems found so far, one sentence each.
    public var problems: [String] = []

    public init(command: String, environmentPrefix: String, keys: [SettingKey<Draft>]) {
        self.command = command
        self.environmentPrefix = environmentPrefix
        self.keys = keys
    }

    /// The keys' names.
    public var names: [String] { keys.map(\.name) }

    /// `PREFIX<KEY>`, upper case, `-` as `_`.
    public func environmentName(_ key: String) -> String {
        environmentPrefix + String(key.uppercased().map { $0 == "-" ? "_" : $0 })
    }

    /// The value of `key`, else `text` as its default (for a message about a value the user did not set).
    public func setting(_ key: String, default text: String) -> Setting? {
        if let setting = settings[key] { return setting }
        return keys.first { $0.name == key }.map {
            Setting($0, text: text, source: .defaultValue, environmentName: environmentName(key))
        }
    }

    /// Reads every source, each over the one before: the YAML file (`configFile` from `--config`, else the one the
    /// `configVariable` environment variable names, else none), the environment, then `flags`.
    public mutating func read(
        configFile: String?, configVariable: String, environment: [String: String], flags: [String: String]
    ) {
        if let path = configFile {
            readFile(path, namedBy: "--config")
        } else if let path = environment[configVariable] {
            readFile(path, namedBy: configVariable)
        }
        readEnvironment(environment)
        readFlags(flags)
    }

    /// Reads the YAML mapping at `path`; `option` is how the user named the file, for messages.
    public mutating func readFile(_ path: String, namedBy option: String) {
        let origin = "config file \(path) (from \(option))"
        let fix = "Fix the path, or drop \(option) to use only flags, environment and defaults."
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            return problems.append("\(origin) does not exist. \(fix)")
        }
        guard !isDirectory.boolValue else {
            return problems.append("\(origin) is a directory, not a YAML file. \(fix)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            return problems.append("\(origin) cannot be read: this user may not read it. \(fix)")
        }
        guard !data.isEmpty else { return }  // An empty file sets nothing.
        guard let text = String(validating: data, as: UTF8.self) else {
            return problems.append("\(origin) is not UTF-8 text. \(fix)")
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            return problems.append("\(origin) is not valid YAML; write one key: value per line. Yams says: \(error)")
        }
        guard let root else { return }  // Only comments: sets nothing.
        guard let mapping = root.mapping else {
            let example = keys.first.map { "\($0.name): \($0.example)" } ?? "key: value"
            return problems.append("\(origin) must be a mapping of keys to values, one per line, e.g. \(example).")
        }
        let source = SettingSource.file(path)
        for (keyNode, value) in mapping {
            let name = keyNode.string ?? "\(keyNode)"
            guard let key = keys.first(where: { $0.name == name }) else {
                problems.append(unknownKey(name, in: path))
                continue
            }
            let accepted = "Accepted: \(key.accepts). Example: \(name): \(key.example)"
            if value.null != nil {
                problems.append("\(name) (config file \(path)) has no value. Give one or remove the line. \(accepted)")
            } else if let scalar = value.scalar {
                settings[name] = Setting(key, text: scalar.string, source: source, environmentName: environmentName(name))
            } else if let list = value.sequence, key.isList, list.allSatisfy({ $0.scalar != nil }) {
                let items = list.compactMap { $0.scalar?.string }
                settings[name] = Setting(
                    key, text: items.joined(separator: ","), items: items, source: source, environmentName: environmentName(name))
            } else {
                let shape = key.isList ? "a value or a list of values" : "a single value"
                problems.append("\(name) (config file \(path)) must be \(shape), not a nested structure. \(accepted)")
            }
        }
    }

    /// Reads `PREFIX<KEY>` for every key; other variables with the prefix are ignored.
    public mutating func readEnvironment(_ environment: [String: String]) {
        for key in keys {
            let variable = environmentName(key.name)
            if let text = environment[variable] {
                settings[key.name] = Setting(key, text: text, source: .environment, environmentName: variable)
            }
        }
    }

    /// Reads flags given as kebab keys without `--` (`config`, which names the file, is skipped); an unknown one is
    /// a problem.
    public mutating func readFlags(_ flags: [String: String]) {
        for (name, text) in flags.sorted(by: { $0.key < $1.key }) where name != "config" {
            guard let key = keys.first(where: { $0.name == name }) else {
                let known = names.map { "--" + $0 }.joined(separator: ", ")
                problems.append("--\(name.escapedForLog) is not a \(command) option. Known options: \(known).")
                continue
            }
            settings[name] = Setting(key, text: text, source: .flag, environmentName: environmentName(name))
        }
    }

    /// Applies every value read to `draft`, in the keys' order; a value that breaks its rule adds a problem.
    /// Returns the keys whose value failed, so checks across keys can skip them.
    @discardableResult
    public mutating func apply(to draft: inout Draft) -> Set<String> {
        var failed: Set<String> = []
        for key in keys {
            guard let setting = settings[key.name] else { continue }
            do {
                try key.apply(setting, &draft)
            } catch {
                failed.insert(key.name)
                problems.append(setting.problem(Self.rule(from: error)))
            }
        }
        return failed
    }

    /// Throws a ``ConfigurationError`` with every problem found, if there is one.
    public func checkProblems() throws(ConfigurationError) {
        guard problems.isEmpty else { throw ConfigurationError(problems: problems) }
    }

    /// The clause of a rule's error: a ``SettingProblem`` or `HostPort.Problem` as it is, and from a MeshCACore
    /// message ("<value> is not valid: RULE. What to do.") the rule alone.
    static func rule(from error: any Error) -> String {
        if let problem = error as? SettingProblem { return problem.why }
        if let problem = error as? HostPort.Problem { return problem.why }
        let message = (error as? IssuanceError)?.message ?? "\(error)"
        guard let colon = message.firstRange(of: ": ") else { return message }
        let rest = message[colon.upperBound...]
        return String(rest[..<(rest.firstRange(of: ". ")?.lowerBound ?? rest.endIndex)])
    }

    private func unknownKey(_ key: String, in path: String) -> String {
        let normalized = String(key.lowercased().map { $0 == "_" ? "-" : $0 })
        let hint = names.first { normalized == $0 || normalized == $0 + "s" }.map { " Did you mean \($0)?" } ?? ""
        return "config file \(path): unknown key \"\(key.escapedForLog)\".\(hint) Known keys: \(names.joined(separator: ", "))."
    }
}
