import ArgumentParser
import EpisodicMemory
import Foundation
import RobotConfig

/// `robotd memory`: the last episodes (or safety interventions) of a robot's episodic memory, read
/// from its SQLite file without writing it — also while that robot's robotd is running.
struct Memory: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the planner's episodic memory: the last goals, their plans, verdicts and outcomes.",
        discussion: """
        Reads the memory file of a robot (its configuration's `memory` section, docs/planner.md) \
        read-only: it never creates, migrates or writes it, and it works while robotd is writing \
        (SQLite in WAL mode: it sees what was committed when it reads). Texts are shown with control \
        characters escaped (\\n, \\u{1B}); goals are data, never trusted.

        The table has one line per episode, oldest first: its number, time (UTC), who gave the goal \
        and from where, the goal, the last answer (back end, verdict, latency; `+N` more answers), and \
        the outcome. --json prints one JSON object per line instead: episode, run, goal_id, time, \
        text, user, source, plans [{time, backend, latency_ms, verdict, reasons, steps}], outcome \
        ({time, status, cause} or null). --safety lists the safety interventions instead \
        (id, run, time, kind, detail, goal_id).

        Exit status 0; 1 when the file cannot be read (the reason on stderr).

        Example:
          robotd memory --config /etc/robotd/rover.yaml --last 10
          robotd memory --database /var/lib/robotd/rover-1/memory.sqlite --json | jq -r .outcome.status
        """)

    @Option(help: "The robot's configuration file: its `memory` section names the database.")
    var config: String?

    @Option(help: "The memory database file itself.")
    var database: String?

    @Option(help: "How many of the latest episodes (or interventions) to show.")
    var last: Int = 20

    @Flag(help: "One JSON object per line instead of the table.")
    var json = false

    @Flag(help: "The safety interventions instead of the episodes.")
    var safety = false

    func validate() throws {
        guard (config == nil) != (database == nil) else {
            throw ValidationError("give either --config FILE or --database PATH")
        }
        guard (1...100_000).contains(last) else { throw ValidationError("--last must be 1…100000") }
    }

    func run() throws {
        let path = try databasePath()
        let reader: MemoryReader
        do {
            reader = try MemoryReader(path: path)
        } catch {
            stderrLine("robotd \(error)")
            throw ExitCode.failure
        }
        do throws(MemoryError) {
            if safety {
                let interventions = Array(try reader.recentInterventions(limit: last).reversed())
                if json {
                    for i in interventions { print(try MemoryOutput.line(InterventionLine(i))) }
                } else {
                    print(MemoryOutput.table(interventions, path: path, total: try reader.counts().interventions))
                }
            } else {
                let episodes = Array(try reader.recentEpisodes(limit: last).reversed())
                if json {
                    for e in episodes { print(try MemoryOutput.line(EpisodeLine(e))) }
                } else {
                    print(MemoryOutput.table(episodes, path: path, total: try reader.counts().episodes))
                }
            }
        } catch {
            stderrLine("robotd \(error)")
            throw ExitCode.failure
        }
    }

    private func databasePath() throws -> String {
        if let database { return database }
        guard let config else { throw ValidationError("give either --config FILE or --database PATH") }
        let configuration = try ConfigurationFile.load(config)
        guard let memory = configuration.memory else {
            stderrLine("robotd memory: \(config) has no `memory` section: this robot keeps no memory")
            throw ExitCode.failure
        }
        return memory.resolvedPath(robotID: configuration.robot.id)
    }
}

// MARK: Output

/// One episode as a JSON line (snake_case keys, times in ISO 8601 UTC).
struct EpisodeLine: Encodable {
    struct Plan: Encodable {
        var time: String
        var backend: String
        var latencyMs: Double
        var verdict: String
        var reasons: [String]
        /// The plan as JSON when it parses, else the text as given.
        var steps: EmbeddedJSON?
    }

    struct Outcome: Encodable {
        var time: String
        var status: String
        var cause: String?
    }

    var episode: Int64
    var run: Int64
    var goalID: UInt64
    var time: String
    var text: String
    var user: String?
    var source: String
    var plans: [Plan]
    var outcome: Outcome?

    init(_ e: Episode) {
        episode = e.id
        run = e.run
        goalID = e.goalID
        time = MemoryOutput.iso(e.time)
        text = e.text
        user = e.user
        source = e.source
        plans = e.plans.map {
            Plan(time: MemoryOutput.iso($0.time), backend: $0.backend, latencyMs: $0.latencyMs, verdict: $0.verdict.rawValue,
                 reasons: $0.reasons, steps: $0.steps.map(EmbeddedJSON.init(text:)))
        }
        outcome = e.outcome.map { Outcome(time: MemoryOutput.iso($0.time), status: $0.status.rawValue, cause: $0.cause) }
    }

    enum CodingKeys: String, CodingKey {
        case episode, run, goalID = "goal_id", time, text, user, source, plans, outcome
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(episode, forKey: .episode)
        try c.encode(run, forKey: .run)
        try c.encode(goalID, forKey: .goalID)
        try c.encode(time, forKey: .time)
        try c.encode(text, forKey: .text)
        try c.encode(user, forKey: .user)  // null when unknown: every line has the same keys
        try c.encode(source, forKey: .source)
        try c.encode(plans, forKey: .plans)
        try c.encode(outcome, forKey: .outcome)
    }
}

struct InterventionLine: Encodable {
    var id: Int64
    var run: Int64
    var time: String
    var kind: String
    var detail: String
    var goalID: UInt64?

    init(_ i: Intervention) {
        id = i.id
        run = i.run
        time = MemoryOutput.iso(i.time)
        kind = i.kind
        detail = i.detail
        goalID = i.goalID
    }

    enum CodingKeys: String, CodingKey {
        case id, run, time, kind, detail, goalID = "goal_id"
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(run, forKey: .run)
        try c.encode(time, forKey: .time)
        try c.encode(kind, forKey: .kind)
        try c.encode(detail, forKey: .detail)
        try c.encode(goalID, forKey: .goalID)
    }
}

/// A JSON value read back from text (a plan's steps), so that `--json` nests it instead of quoting it.
enum EmbeddedJSON: Encodable {
    case null, bool(Bool), number(Double), string(String), array([EmbeddedJSON]), object([String: EmbeddedJSON])

    /// The parsed value, or the text itself as a string when it is not JSON (a rejected answer).
    init(text: String) {
        if let value = try? JSONDecoder().decode(Parsed.self, from: Data(text.utf8)) {
            self = value.value
        } else {
            self = .string(text)
        }
    }

    private struct Parsed: Decodable {
        var value: EmbeddedJSON
        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if c.decodeNil() {
                value = .null
            } else if let b = try? c.decode(Bool.self) {
                value = .bool(b)
            } else if let n = try? c.decode(Double.self) {
                value = .number(n)
            } else if let s = try? c.decode(String.self) {
                value = .string(s)
            } else if let a = try? c.decode([Parsed].self) {
                value = .array(a.map(\.value))
            } else {
                value = .object(try c.decode([String: Parsed].self).mapValues(\.value))
            }
        }
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let n): try c.encode(n)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }
}

enum MemoryOutput {
    static func iso(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }

    static func line<T: Encodable>(_ value: T) throws(MemoryError) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        do {
            return String(decoding: try encoder.encode(value), as: UTF8.self)
        } catch {
            throw .sqlite(path: "", code: -1, reason: "cannot encode a line: \(error)")
        }
    }

    /// `YYYY-MM-DD HH:MM:SS` in UTC.
    static func clock(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return formatter.string(from: date)
    }

    /// One untrusted text for a table cell: escaped, clipped to `width` characters.
    static func cell(_ text: String, _ width: Int) -> String {
        let shown = TextClipping.printable(text)
        return shown.count <= width ? shown : String(shown.prefix(width - 1)) + "…"
    }

    static func table(_ episodes: [Episode], path: String, total: Int) -> String {
        var rows = [["#", "time (UTC)", "user", "source", "goal", "answer", "outcome"]]
        for e in episodes {
            var answer = "—"
            if let last = e.plans.last {
                answer = "\(cell(last.backend, 16)) \(last.verdict.rawValue) \(milliseconds(last.latencyMs))"
                if e.plans.count > 1 { answer += " +\(e.plans.count - 1)" }
                if last.verdict == .rejected, let reason = last.reasons.first { answer += ": " + cell(reason, 48) }
            }
            var outcome = e.outcome?.status.rawValue ?? "—"
            if let cause = e.outcome?.cause { outcome += ": " + cell(cause, 40) }
            rows.append([String(e.id), clock(e.time), cell(e.user ?? "—", 16), cell(e.source, 8), cell(e.text, 40), answer, outcome])
        }
        return layout(rows) + "\n\(episodes.count) of \(total) episodes in \(path)"
    }

    static func table(_ interventions: [Intervention], path: String, total: Int) -> String {
        var rows = [["#", "time (UTC)", "kind", "goal", "detail"]]
        for i in interventions {
            rows.append([String(i.id), clock(i.time), cell(i.kind, 20), i.goalID.map(String.init) ?? "—", cell(i.detail, 80)])
        }
        return layout(rows) + "\n\(interventions.count) of \(total) safety interventions in \(path)"
    }

    private static func milliseconds(_ value: Double) -> String {
        value < 10 ? String(format: "%.1f ms", value) : String(format: "%.0f ms", value)
    }

    /// Columns padded to their widest cell (characters; the last column is not padded).
    private static func layout(_ rows: [[String]]) -> String {
        guard let columns = rows.first?.count else { return "" }
        let widths = (0..<columns).map { c in rows.map { $0[c].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { c, text in
                c == columns - 1 ? text : text + String(repeating: " ", count: widths[c] - text.count)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
