/// One thing wrong (or worth a warning) in a configuration file, where it is and what would be right.
public struct ConfigProblem: Sendable, Equatable, Codable, CustomStringConvertible {
    public enum Severity: String, Sendable, Codable {
        /// The file is refused: robotd does not start with it.
        case error
        /// Allowed, but probably not what the author meant (`estop: none`, a sensor nobody feeds).
        case warning
    }

    public var severity: Severity
    public var file: String
    /// 1-based; columns count Unicode scalars, as libyaml does. 0 when the problem has no place
    /// in the file (it could not be read).
    public var line: Int
    public var column: Int
    /// Where in the document, e.g. `channels[1].limits.max_velocity`; empty for the whole file.
    public var keyPath: String
    public var message: String
    /// What would be accepted there, when that can be said in a few words.
    public var allowed: String?

    public init(severity: Severity, file: String, line: Int, column: Int, keyPath: String, message: String,
                allowed: String? = nil) {
        self.severity = severity
        self.file = file
        self.line = line
        self.column = column
        self.keyPath = keyPath
        self.message = message
        self.allowed = allowed
    }

    /// `file:line:column: error: keyPath: message (allowed: …)`, the shape compilers use, so
    /// editors and terminals link it to the place.
    public var description: String {
        var text = "\(file):\(line):\(column): \(severity.rawValue): "
        if !keyPath.isEmpty { text += "\(keyPath): " }
        text += message
        if let allowed { text += " (allowed: \(allowed))" }
        return text
    }

    enum CodingKeys: String, CodingKey {
        case severity, file, line, column, message, allowed
        case keyPath = "key_path"
    }
}

/// What `ConfigurationLoader` found: every problem in file order, and the decoded configuration
/// when there is no error (warnings do not refuse a file).
public struct ConfigurationReport: Sendable, CustomStringConvertible {
    public var file: String
    public var problems: [ConfigProblem]
    /// nil whenever `problems` holds an error: a broken file never reaches the runtime.
    public var configuration: RobotConfiguration?
    /// Where each key path of the file is (`channels[1].limits`, `policies[0]`).
    let places: [String: SourcePosition]

    public init(file: String, problems: [ConfigProblem], configuration: RobotConfiguration?) {
        self.init(file: file, problems: problems, configuration: configuration, places: [:])
    }

    init(file: String, problems: [ConfigProblem], configuration: RobotConfiguration?, places: [String: SourcePosition]) {
        self.file = file
        self.problems = problems
        self.configuration = configuration
        self.places = places
    }

    /// The line and column of a key path of the file (a map or list entry: where its value
    /// starts), so that whoever finds a problem later — the runtime building the robot — can
    /// report it at its place.
    public func place(of keyPath: String) -> (line: Int, column: Int)? {
        places[keyPath].map { ($0.line, $0.column) }
    }

    /// Adds a problem found after loading (e.g. by the runtime's dry build); an error withdraws
    /// the configuration.
    public mutating func add(_ problem: ConfigProblem) {
        problems.append(problem)
        if problem.severity == .error { configuration = nil }
    }

    public var errors: [ConfigProblem] { problems.filter { $0.severity == .error } }
    public var warnings: [ConfigProblem] { problems.filter { $0.severity == .warning } }
    public var isValid: Bool { configuration != nil }

    /// One line: `FILE: ok` or `FILE: 2 errors, 1 warning`.
    public var summary: String {
        let e = errors.count, w = warnings.count
        func count(_ n: Int, _ word: String) -> String { "\(n) \(word)\(n == 1 ? "" : "s")" }
        if e == 0 && w == 0 { return "\(file): ok" }
        if e == 0 { return "\(file): ok, \(count(w, "warning"))" }
        return "\(file): \(count(e, "error")), \(count(w, "warning")): refused"
    }

    /// Every problem on its own line, then the summary.
    public var description: String {
        (problems.map(\.description) + [summary]).joined(separator: "\n")
    }
}
