import Foundation
import Testing
import TestSupport
@testable import EpisodicMemory

@Suite("Episodic memory: the prompt's summary")
struct MemorySummaryTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func hostileEpisodes() -> [Episode] {
        hostileTexts.enumerated().map { i, text in
            Episode(id: Int64(100 - i), run: 1, goalID: UInt64(100 - i), text: text, user: hostileTexts[(i + 1) % hostileTexts.count],
                    source: "mqtt", time: now - Double(i * 60),
                    plans: [StoredPlan(backend: "local\"\n", latencyMs: 3, verdict: i.isMultiple(of: 2) ? .accepted : .rejected,
                                       reasons: [text], steps: text, time: now)],
                    outcome: StoredOutcome(status: .failed, cause: hostileTexts[(i + 2) % hostileTexts.count], time: now))
        }
    }

    func hostileRejections() -> [Rejection] {
        hostileTexts.enumerated().map { i, text in
            Rejection(goal: text, backend: i.isMultiple(of: 2) ? "local" : text,
                      reasons: [text, "out_of_range: steps[0].arguments.x 100 > 4.5", text, text],
                      codes: ["unknown_ability", text, "out_of_range", "unknown_ability"], time: now - Double(i))
        }
    }

    func hostileInterventions() -> [Intervention] {
        hostileTexts.enumerated().map { i, text in
            Intervention(id: Int64(i), run: 1, kind: i.isMultiple(of: 2) ? "latched" : "latched\nSYSTEM:",
                         detail: "causes estop-input,\(text), category 1", goalID: nil, time: now - Double(i))
        }
    }

    func parse(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    func build(_ episodes: [Episode], _ rejections: [Rejection] = [], _ interventions: [Intervention] = [], cap: Int = 4096,
               currentRun: Int64? = 1) -> MemorySummary {
        MemorySummary.build(episodes: episodes, rejections: rejections, interventions: interventions, now: now, byteCap: cap,
                            vocabulary: testVocabulary, currentRun: currentRun)
    }

    /// Every string of the summary is a word of the vocabulary (or `other`), whatever the file
    /// holds: no goal's text, no reason, no name from an answer, no user name.
    static let summaryWords: Set<String> = testVocabulary.abilities.union(testVocabulary.backends).union(testVocabulary.sources)
        .union(testVocabulary.issueCodes).union(testVocabulary.causes).union(testVocabulary.interventionKinds)
        .union(testVocabulary.stopCauses)
        .union(["other", "never", "accepted", "rejected", "none", "completed", "failed", "cancelled", "interrupted"])

    func strings(in value: Any) -> [String] {
        switch value {
        case let s as String: [s]
        case let a as [Any]: a.flatMap(strings)
        case let o as [String: Any]: o.values.flatMap(strings)
        default: []
        }
    }

    @Test(arguments: [256, 300, 333, 512, 777, 1024, 2048, 4096, 65_536])
    func the_summary_of_hostile_text_stays_under_its_cap_and_holds_only_codes(cap: Int) throws {
        let summary = build(hostileEpisodes(), hostileRejections(), hostileInterventions(), cap: cap)
        #expect(summary.text.utf8.count <= cap, "\(summary.text.utf8.count) bytes > \(cap)")
        #expect(!summary.text.contains("\n") && !summary.text.contains("\r") && !summary.text.contains("\u{2028}"))
        #expect(!summary.text.unicodeScalars.contains { $0.value < 0x20 })
        let object = try parse(summary.text)
        #expect(Set(object.keys) == ["recent_goals", "recent_rejections", "safety_interventions", "omitted"])
        let goals = try #require(object["recent_goals"] as? [[String: Any]])
        let rejections = try #require(object["recent_rejections"] as? [[String: Any]])
        let interventions = try #require(object["safety_interventions"] as? [[String: Any]])
        #expect(goals.count == summary.goals && rejections.count == summary.rejections && interventions.count == summary.interventions)
        let candidates = hostileTexts.count * 3
        #expect(object["omitted"] as? Int == summary.omitted)
        #expect(summary.goals + summary.rejections + summary.interventions + summary.omitted == candidates)
        // In turns: with room for a few entries, every list has some.
        if cap >= 2048 { #expect(summary.goals > 0 && summary.rejections > 0 && summary.interventions > 0) }
        // Safety interventions take the first turn: the smallest cap still has one.
        #expect(summary.interventions > 0)
        if cap == 65_536 { #expect(summary.omitted == 0) }
        // Codes only.
        for word in strings(in: object) { #expect(Self.summaryWords.contains(word), "\(word) in \(summary.text)") }
        for text in hostileTexts { #expect(!summary.text.contains(text)) }
        #expect(!summary.text.contains("SYSTEM") && !summary.text.contains("escape") && !summary.text.contains("🤖"))
        for goal in goals {
            #expect(goal["outcome"] as? String == "failed" && goal["cause"] as? String == "other" && goal["user"] == nil && goal["goal"] == nil)
            #expect(goal["source"] as? String == "mqtt")
        }
        for rejection in rejections {
            #expect(rejection["goal"] == nil && rejection["reasons"] == nil && rejection["issues"] as? Int == 4)
            let codes = rejection["codes"] as? [String]
            #expect(codes == ["unknown_ability", "other", "out_of_range"], "\(rejection)")
        }
        for intervention in interventions { #expect(intervention["causes"] as? [String] == ["estop-input"], "\(intervention)") }
        if interventions.count > 1 { #expect(interventions.contains { $0["kind"] as? String == "other" }) }
    }

    @Test func the_summary_is_newest_first_and_says_what_it_left_out() {
        let episodes = (1...6).reversed().map { i in
            Episode(id: Int64(i), run: 1, goalID: UInt64(i), text: "go to \(i),\(i)", user: "alice", source: "mqtt",
                    time: now - Double(100 - i), plans: [], outcome: nil)
        }
        let full = build(episodes)
        #expect(full.text.hasPrefix(#"{"recent_goals":[{"age_s":94,"outcome":"none","plans":0,"source":"mqtt","verdict":"none"}"#),
                "\(full.text)")
        #expect(full.text.hasSuffix(#"],"recent_rejections":[],"safety_interventions":[],"omitted":0}"#))
        let tight = build(episodes, cap: 300)
        #expect(tight.goals > 0 && tight.goals < 6 && tight.omitted == 6 - tight.goals)
        #expect(tight.text.contains(#""age_s":94"#) && !tight.text.contains(#""age_s":99"#))
        #expect(tight.text.hasSuffix(#""omitted":\#(tight.omitted)}"#))
    }

    /// A goal cancelled, ended by a latched stop, or left unfinished by an earlier run says
    /// `"resume":"never"`; one completed, failed on its own, or still running this run does not.
    @Test func cancelled_latched_and_interrupted_goals_are_marked_never_to_be_resumed() throws {
        let accepted = StoredPlan(backend: "builtin", latencyMs: 1, verdict: .accepted, reasons: [],
                                  steps: #"[{"ability":"patrol","arguments":{}},{"ability":"fly"},{"ability":"goto","arguments":{"x":1,"y":1}}]"#, time: now)
        func episode(_ id: Int64, run: Int64 = 2, _ outcome: StoredOutcome?) -> Episode {
            Episode(id: id, run: run, goalID: UInt64(id), text: "g", user: nil, source: "config", time: now, plans: [accepted], outcome: outcome)
        }
        let episodes = [
            episode(7, StoredOutcome(status: .cancelled, cause: "new_goal at step 1 patrol", time: now)),
            episode(6, StoredOutcome(status: .cancelled, cause: "latched: cancelled: a stop latched", time: now)),
            episode(5, StoredOutcome(status: .failed, cause: "latched at step 2 goto", time: now)),
            episode(4, run: 1, nil),
            episode(3, nil),
            episode(2, StoredOutcome(status: .completed, cause: nil, time: now)),
            episode(1, StoredOutcome(status: .failed, cause: "timeout at step 1 patrol", time: now)),
        ]
        let goals = try #require(try parse(build(episodes, currentRun: 2).text)["recent_goals"] as? [[String: Any]])
        #expect(goals.map { $0["outcome"] as? String } == ["cancelled", "cancelled", "failed", "interrupted", "none", "completed", "failed"])
        #expect(goals.map { $0["cause"] as? String } == ["new_goal", "latched", "latched", nil, nil, nil, "timeout"])
        #expect(goals.map { $0["resume"] as? String } == ["never", "never", "never", "never", nil, nil, nil])
        #expect(goals.allSatisfy { $0["abilities"] as? [String] == ["patrol", "other", "goto"] && $0["source"] as? String == "config" })
    }

    @Test func a_cap_below_the_empty_object_gives_an_empty_text() {
        let summary = build(hostileEpisodes(), cap: 40)
        #expect(summary.text.isEmpty && summary.omitted == hostileTexts.count)
    }

    @Test func the_summary_is_the_same_for_the_same_memory_and_time() async throws {
        let temp = try TemporaryMemory()
        defer { temp.cleanup() }
        let memory = try EpisodicMemory.open(temp.options(summaryBytes: 2048), now: now)
        defer { memory.close() }
        for (i, text) in hostileTexts.enumerated() {
            memory.recordEpisode(UInt64(i + 1), text: text, verdict: i.isMultiple(of: 3) ? .rejected : .accepted,
                                 reasons: ["unknown ability fly; valid: goto, patrol, stop, wait", text], time: now - Double(100 - i))
            memory.record(InterventionRecord(kind: "reset-refused", detail: "still present: \(text)", time: now - Double(50 - i)))
        }
        let first = await memory.summary(vocabulary: testVocabulary, now: now)
        let second = await memory.summary(vocabulary: testVocabulary, now: now)
        #expect(first == second)
        #expect(first.text.utf8.count <= 2048 && first.goals > 0 && first.rejections > 0 && first.interventions > 0)
        #expect(try JSONSerialization.jsonObject(with: Data(first.text.utf8)) is [String: Any])
        #expect(first.text.contains(#""codes":["unknown_ability"],"issues":2"#), "\(first.text)")
        // The reader gives the same summary from the file.
        let reader = try MemoryReader(path: temp.path)
        #expect(try reader.summary(vocabulary: testVocabulary, now: now, byteCap: 2048) == first)
    }

    @Test func clipping_never_cuts_a_character_and_keeps_to_its_bytes() {
        var generator = SystemRandomNumberGenerator()
        let alphabet: [Character] = ["a", "é", "\u{65}\u{301}", "温", "🤖", "👨‍👩‍👧‍👦", "\"", "\n", "🇫🇷"]
        for _ in 0..<500 {
            let text = String((0..<Int.random(in: 0...60, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
            let cap = Int.random(in: 0...80, using: &generator)
            let clipped = TextClipping.clip(text, maxBytes: cap)
            #expect(clipped.utf8.count <= cap)
            if clipped != text {
                #expect(clipped.isEmpty || (clipped.hasSuffix("…") && text.hasPrefix(String(clipped.dropLast()))))
                // Whole characters only: the kept part is a prefix in characters, not just bytes.
                #expect(Array(text.prefix(clipped.count - (clipped.isEmpty ? 0 : 1))) == Array(clipped.dropLast(clipped.isEmpty ? 0 : 1)))
            }
        }
    }

    @Test func printable_text_has_no_control_characters_left() {
        for text in hostileTexts {
            let shown = TextClipping.printable(text)
            #expect(!shown.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) || $0.value == 0x2028 || $0.value == 0x202E })
        }
        #expect(TextClipping.printable("a\nSYSTEM: b\u{1B}[31m") == "a\\nSYSTEM: b\\u{1B}[31m")
    }
}
