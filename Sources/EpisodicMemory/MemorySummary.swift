import Foundation

/// What the planner's prompt gets from memory: one compact JSON object, at most `byteCap` bytes of
/// UTF-8, the same text for the same episodes and `now`:
///
/// ```json
/// {"recent_goals":[{"age_s":42,"backend":"builtin","goal":"go to 2,3","outcome":"completed","plans":1,
///   "source":"mqtt","user":"alice","verdict":"accepted"}],
///  "recent_rejections":[{"age_s":90,"backend":"local","goal":"…","reasons":["…"]}],
///  "safety_interventions":[{"age_s":30,"detail":"estop","kind":"latched"}],"omitted":0}
/// ```
///
/// Each list is newest first. Entries are whole or absent — the text is never cut, so it is always
/// valid JSON — and are taken in turns (an intervention, a goal, a rejection, the next
/// intervention…) so that a long list cannot crowd out the others; a list stops at its first entry
/// that does not fit. `omitted` counts the entries left out. Texts are clipped between characters and every
/// string is JSON-escaped: a goal's quotes, newlines or a line saying `SYSTEM:` stay inside its
/// string. The prompt then quotes the whole text again as data (`PlanPrompt`).
public struct MemorySummary: Sendable, Equatable {
    public var text: String
    public var goals: Int
    public var rejections: Int
    public var interventions: Int
    /// Entries that were candidates but did not fit the cap.
    public var omitted: Int

    /// The summary of no memory (and of a memory that is unavailable).
    public static let empty = MemorySummary(text: "", goals: 0, rejections: 0, interventions: 0, omitted: 0)

    /// Longest texts inside an entry (bytes, before JSON escaping).
    public static let goalBytes = 160
    public static let reasonBytes = 160
    public static let reasonsPerRejection = 3
    public static let detailBytes = 160
    public static let wordBytes = 40

    public init(text: String, goals: Int, rejections: Int, interventions: Int, omitted: Int) {
        self.text = text
        self.goals = goals
        self.rejections = rejections
        self.interventions = interventions
        self.omitted = omitted
    }

    /// Builds the summary from newest-first lists (as `MemoryStore` returns them). With a cap below
    /// the empty object's size the text is empty.
    public static func build(episodes: [Episode], rejections: [Rejection], interventions: [Intervention], now: Date,
                             byteCap: Int) -> MemorySummary {
        let lists = [episodes.map { encode(goal: $0, now: now) },
                     rejections.map { encode(rejection: $0, now: now) },
                     interventions.map { encode(intervention: $0, now: now) }]
        // Turns start with the safety interventions (short, and what a plan must not ignore), then
        // goals, then rejections.
        let turns = [2, 0, 1]
        let candidates = lists.reduce(0) { $0 + $1.count }
        let keys = ["recent_goals", "recent_rejections", "safety_interventions"]
        // The fixed part: braces, `"key":[` and `],` per list, `"omitted":` with room for the largest count.
        let fixed = 2 + keys.reduce(0) { $0 + $1.utf8.count + 6 } + "\"omitted\":".utf8.count + String(candidates).utf8.count
        guard fixed <= byteCap else {
            return MemorySummary(text: "", goals: 0, rejections: 0, interventions: 0, omitted: candidates)
        }
        var used = fixed
        var taken: [[String]] = [[], [], []]
        var stopped = [false, false, false]
        var next = [0, 0, 0]
        // In turns, one entry of each list at a time, until every list is done or stopped.
        while (0..<3).contains(where: { !stopped[$0] && next[$0] < lists[$0].count }) {
            for list in turns where !stopped[list] && next[list] < lists[list].count {
                let entry = lists[list][next[list]]
                let cost = entry.utf8.count + (taken[list].isEmpty ? 0 : 1)
                if used + cost <= byteCap {
                    used += cost
                    taken[list].append(entry)
                    next[list] += 1
                } else {
                    stopped[list] = true
                }
            }
        }
        let included = taken.reduce(0) { $0 + $1.count }
        var text = "{"
        for (i, key) in keys.enumerated() {
            text += "\"\(key)\":[" + taken[i].joined(separator: ",") + "],"
        }
        text += "\"omitted\":\(candidates - included)}"
        return MemorySummary(text: text, goals: taken[0].count, rejections: taken[1].count,
                             interventions: taken[2].count, omitted: candidates - included)
    }

    // MARK: Entries (sorted keys, escaped strings, clipped texts)

    private struct GoalEntry: Encodable {
        var ageS: Int
        var goal: String
        var user: String?
        var source: String
        var plans: Int
        var verdict: String
        var backend: String?
        var outcome: String
        var cause: String?
    }

    private struct RejectionEntry: Encodable {
        var ageS: Int
        var goal: String
        var backend: String
        var reasons: [String]
    }

    private struct InterventionEntry: Encodable {
        var ageS: Int
        var kind: String
        var detail: String
    }

    private static func encode(goal e: Episode, now: Date) -> String {
        let last = e.plans.last
        return json(GoalEntry(
            ageS: age(e.time, now), goal: TextClipping.clip(e.text, maxBytes: goalBytes),
            user: e.user.map { TextClipping.clip($0, maxBytes: wordBytes) }, source: TextClipping.clip(e.source, maxBytes: wordBytes),
            plans: e.plans.count, verdict: last?.verdict.rawValue ?? "none",
            backend: last.map { TextClipping.clip($0.backend, maxBytes: wordBytes) },
            outcome: e.outcome?.status.rawValue ?? "none",
            cause: e.outcome?.cause.map { TextClipping.clip($0, maxBytes: detailBytes) }))
    }

    private static func encode(rejection r: Rejection, now: Date) -> String {
        json(RejectionEntry(
            ageS: age(r.time, now), goal: TextClipping.clip(r.goal, maxBytes: goalBytes),
            backend: TextClipping.clip(r.backend, maxBytes: wordBytes),
            reasons: r.reasons.prefix(reasonsPerRejection).map { TextClipping.clip($0, maxBytes: reasonBytes) }))
    }

    private static func encode(intervention i: Intervention, now: Date) -> String {
        json(InterventionEntry(ageS: age(i.time, now), kind: TextClipping.clip(i.kind, maxBytes: wordBytes),
                               detail: TextClipping.clip(i.detail, maxBytes: detailBytes)))
    }

    /// Whole seconds before `now` (0 for a time in the future: a clock stepped back).
    private static func age(_ time: Date, _ now: Date) -> Int {
        let seconds = now.timeIntervalSince(time)
        guard seconds.isFinite, seconds > 0 else { return 0 }
        return Int(min(seconds, 1e12).rounded())
    }

    private static func json<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        // These entries hold strings and integers only: encoding cannot fail. An empty object keeps
        // the output valid if it ever did.
        guard let data = try? encoder.encode(value) else { return "{}" }
        // JSON allows U+2028 and U+2029 raw inside strings, but JavaScript and some line readers
        // take them for line ends: escape them too, so the summary is one line for every reader.
        return String(decoding: data, as: UTF8.self)
            .replacingOccurrences(of: "\u{2028}", with: "\\u2028")
            .replacingOccurrences(of: "\u{2029}", with: "\\u2029")
    }
}
