import Foundation

/// What the planner's prompt gets from memory: one compact JSON object, at most `byteCap` bytes of
/// UTF-8, the same text for the same episodes, vocabulary and `now`:
///
/// ```json
/// {"recent_goals":[{"abilities":["goto"],"age_s":42,"backend":"builtin","outcome":"completed","plans":1,
///   "source":"mqtt","verdict":"accepted"},
///   {"age_s":95,"backend":"local","cause":"latched","outcome":"cancelled","plans":1,"resume":"never","source":"mqtt","verdict":"accepted"}],
///  "recent_rejections":[{"age_s":90,"backend":"local","codes":["unknown_ability"],"issues":1}],
///  "safety_interventions":[{"age_s":30,"causes":["estop-input"],"kind":"latched"}],"omitted":0}
/// ```
///
/// It is built from codes and structured fields only — outcome and verdict codes, counts, ages, and
/// words of the `Vocabulary` (the configuration's abilities and back ends, the validator's issue
/// codes, the executor's reasons, the guard's kinds and causes); a word outside it is `other`. No
/// text a user or a model wrote reaches it: not a goal's words (anyone's, the requester's
/// included), not a rejection's reasons, not a name from a rejected answer. The memory is shared
/// by every user and outlives restarts; a goal's words in it would be a standing prompt for every
/// later request. The goal being planned is in the request's own `GOAL` block.
///
/// An episode that must not be picked up again by a planner on its own — cancelled, ended by a
/// latched stop, or left unfinished by an earlier run of robotd — carries `"resume":"never"`
/// (`PlanPrompt.dataRule` tells the model what it means).
///
/// Each list is newest first. Entries are whole or absent — the text is never cut, so it is always
/// valid JSON — and are taken in turns (an intervention, a goal, a rejection, the next
/// intervention…) so that a long list cannot crowd out the others; a list stops at its first entry
/// that does not fit. `omitted` counts the entries left out. The prompt then quotes the whole text
/// again as data (`PlanPrompt`).
public struct MemorySummary: Sendable, Equatable {
    public var text: String
    public var goals: Int
    public var rejections: Int
    public var interventions: Int
    /// Entries that were candidates but did not fit the cap.
    public var omitted: Int

    /// The summary of no memory (and of a memory that is unavailable).
    public static let empty = MemorySummary(text: "", goals: 0, rejections: 0, interventions: 0, omitted: 0)

    /// The words the summary may show; anything else is `other` (or left out of a list).
    public struct Vocabulary: Sendable, Equatable {
        /// The configuration's ability names.
        public var abilities: Set<String>
        /// The configuration's back ends, and robotd's own (`builtin`, `call`).
        public var backends: Set<String>
        /// Where goals come from (`mqtt`, `config`, `command`).
        public var sources: Set<String>
        /// The validator's issue codes (`unknown_ability`…).
        public var issueCodes: Set<String>
        /// Why a goal ended other than completed: the first word of an outcome's cause (`latched`,
        /// `new_goal`, `timeout`, `no_plan`…).
        public var causes: Set<String>
        /// The intervention kinds recorded (`latched`, `reset-refused`…).
        public var interventionKinds: Set<String>
        /// The guard's stop causes (`estop-input`, `remote-stop`…), as an intervention's detail names them.
        public var stopCauses: Set<String>

        public init(abilities: Set<String>, backends: Set<String>, sources: Set<String>, issueCodes: Set<String>,
                    causes: Set<String>, interventionKinds: Set<String>, stopCauses: Set<String>) {
            self.abilities = abilities
            self.backends = backends
            self.sources = sources
            self.issueCodes = issueCodes
            self.causes = causes
            self.interventionKinds = interventionKinds
            self.stopCauses = stopCauses
        }
    }

    /// The word for anything outside the vocabulary.
    public static let other = "other"
    /// The cause of a goal a latched stop ended.
    public static let latchedCause = "latched"
    /// At most this many abilities per goal, codes per rejection, causes per intervention.
    public static let wordsPerList = 8
    /// Longest vocabulary word shown (bytes): the configuration's names are trusted, not unbounded.
    public static let wordBytes = 40

    public init(text: String, goals: Int, rejections: Int, interventions: Int, omitted: Int) {
        self.text = text
        self.goals = goals
        self.rejections = rejections
        self.interventions = interventions
        self.omitted = omitted
    }

    /// Builds the summary from newest-first lists (as `MemoryStore` returns them). `currentRun`: the
    /// run of robotd the summary is for — an unfinished episode of another run was `interrupted`;
    /// nil: none is. With a cap below the empty object's size the text is empty.
    public static func build(episodes: [Episode], rejections: [Rejection], interventions: [Intervention], now: Date,
                             byteCap: Int, vocabulary: Vocabulary, currentRun: Int64?) -> MemorySummary {
        let lists = [episodes.map { encode(goal: $0, now: now, vocabulary: vocabulary, currentRun: currentRun) },
                     rejections.map { encode(rejection: $0, now: now, vocabulary: vocabulary) },
                     interventions.map { encode(intervention: $0, now: now, vocabulary: vocabulary) }]
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

    // MARK: Entries (sorted keys, codes and counts only)

    private struct GoalEntry: Encodable {
        var ageS: Int
        var source: String
        var plans: Int
        var verdict: String
        var backend: String?
        /// The last accepted plan's steps, by ability.
        var abilities: [String]?
        var outcome: String
        var cause: String?
        var resume: String?
    }

    private struct RejectionEntry: Encodable {
        var ageS: Int
        var backend: String
        var codes: [String]
        /// Problems the validator listed.
        var issues: Int
    }

    private struct InterventionEntry: Encodable {
        var ageS: Int
        var kind: String
        var causes: [String]?
    }

    private static func encode(goal e: Episode, now: Date, vocabulary v: Vocabulary, currentRun: Int64?) -> String {
        let last = e.plans.last
        let outcome: String
        if let status = e.outcome?.status {
            outcome = status.rawValue
        } else {
            // An earlier run ended (or died) before this goal did; the next one started latched.
            outcome = currentRun.map { $0 != e.run } == true ? "interrupted" : "none"
        }
        let cause = e.outcome.flatMap { o in o.cause.map { causeCode($0, v) } }
        let mustNotResume = outcome == OutcomeRecord.Status.cancelled.rawValue || outcome == "interrupted" || cause == latchedCause
        return json(GoalEntry(
            ageS: age(e.time, now), source: word(e.source, in: v.sources), plans: e.plans.count,
            verdict: last?.verdict.rawValue ?? "none", backend: last.map { word($0.backend, in: v.backends) },
            abilities: e.plans.last { $0.verdict == .accepted }.flatMap { $0.steps.map { abilities(in: $0, v) } },
            outcome: outcome, cause: cause, resume: mustNotResume ? "never" : nil))
    }

    private static func encode(rejection r: Rejection, now: Date, vocabulary v: Vocabulary) -> String {
        json(RejectionEntry(ageS: age(r.time, now), backend: word(r.backend, in: v.backends),
                            codes: distinct(r.codes.map { word($0, in: v.issueCodes) }), issues: r.reasons.count))
    }

    private static func encode(intervention i: Intervention, now: Date, vocabulary v: Vocabulary) -> String {
        // The detail is robotd's words for the guard's causes (`causes estop-input,remote-stop,
        // category 1`): only the causes it names are taken.
        let tokens = i.detail.split { !($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }.map(String.init)
        let causes = distinct(tokens.filter { v.stopCauses.contains($0) })
        return json(InterventionEntry(ageS: age(i.time, now), kind: word(i.kind, in: v.interventionKinds),
                                      causes: causes.isEmpty ? nil : causes))
    }

    /// `text` when the vocabulary has it, else `other`.
    private static func word(_ text: String, in words: Set<String>) -> String {
        words.contains(text) ? TextClipping.clip(text, maxBytes: wordBytes) : other
    }

    /// An outcome's cause as a code: its first word (`latched at step 1 patrol` → `latched`,
    /// `no_plan: …` → `no_plan`), or `other`.
    static func causeCode(_ cause: String, _ v: Vocabulary) -> String {
        let first = cause.prefix { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }
        return word(String(first), in: v.causes)
    }

    /// The abilities of a stored plan (`[{"ability": …}, …]` or `{"steps": [...]}`), in order.
    static func abilities(in steps: String, _ v: Vocabulary) -> [String] {
        guard let value = try? JSONSerialization.jsonObject(with: Data(steps.utf8)) else { return [] }
        let list = (value as? [Any]) ?? ((value as? [String: Any])?["steps"] as? [Any]) ?? []
        return list.prefix(wordsPerList).map { step in
            ((step as? [String: Any])?["ability"] as? String).map { word($0, in: v.abilities) } ?? other
        }
    }

    /// The first `wordsPerList` distinct words, in order.
    private static func distinct(_ words: [String]) -> [String] {
        var seen = Set<String>()
        return Array(words.filter { seen.insert($0).inserted }.prefix(wordsPerList))
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
        // take them for line ends: escape them too, so the summary is one line for every reader
        // (a configured name could hold one).
        return String(decoding: data, as: UTF8.self)
            .replacingOccurrences(of: "\u{2028}", with: "\\u2028")
            .replacingOccurrences(of: "\u{2029}", with: "\\u2029")
    }
}
