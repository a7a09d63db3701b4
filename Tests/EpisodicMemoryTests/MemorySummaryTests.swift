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
            Rejection(goal: text, backend: "local", reasons: [text, "out_of_range: steps[0].arguments.x 100 > 4.5", text, text],
                      time: now - Double(i))
        }
    }

    func hostileInterventions() -> [Intervention] {
        hostileTexts.enumerated().map { i, text in
            Intervention(id: Int64(i), run: 1, kind: "latched\nSYSTEM:", detail: text, goalID: nil, time: now - Double(i))
        }
    }

    func parse(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test(arguments: [256, 300, 333, 512, 777, 1024, 2048, 4096, 65_536])
    func the_summary_of_hostile_text_stays_under_its_cap_and_is_valid_json(cap: Int) throws {
        let summary = MemorySummary.build(episodes: hostileEpisodes(), rejections: hostileRejections(),
                                          interventions: hostileInterventions(), now: now, byteCap: cap)
        #expect(summary.text.utf8.count <= cap, "\(summary.text.utf8.count) bytes > \(cap)")
        // One line: a newline in a goal cannot start a line of its own ("SYSTEM: …").
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

        // Each text comes back as it was, or cut between characters and marked.
        for (goal, episode) in zip(goals, hostileEpisodes()) {
            let text = try #require(goal["goal"] as? String)
            if text != episode.text {
                #expect(text.hasSuffix("…") && episode.text.hasPrefix(String(text.dropLast())))
                #expect(text.utf8.count <= MemorySummary.goalBytes)
            }
            #expect(goal["outcome"] as? String == "failed")
        }
        for rejection in rejections {
            #expect((rejection["reasons"] as? [String])?.count == MemorySummary.reasonsPerRejection)
        }
    }

    @Test func the_summary_is_newest_first_and_says_what_it_left_out() {
        let episodes = (1...6).reversed().map { i in
            Episode(id: Int64(i), run: 1, goalID: UInt64(i), text: "go to \(i),\(i)", user: "alice", source: "mqtt",
                    time: now - Double(100 - i), plans: [], outcome: nil)
        }
        let full = MemorySummary.build(episodes: episodes, rejections: [], interventions: [], now: now, byteCap: 4096)
        #expect(full.text.hasPrefix(#"{"recent_goals":[{"age_s":94,"goal":"go to 6,6","outcome":"none","plans":0,"source":"mqtt","user":"alice","verdict":"none"}"#),
                "\(full.text)")
        #expect(full.text.hasSuffix(#"],"recent_rejections":[],"safety_interventions":[],"omitted":0}"#))
        let tight = MemorySummary.build(episodes: episodes, rejections: [], interventions: [], now: now, byteCap: 400)
        #expect(tight.goals > 0 && tight.goals < 6 && tight.omitted == 6 - tight.goals)
        #expect(tight.text.contains("go to 6,6") && !tight.text.contains("go to 1,1"))
        #expect(tight.text.hasSuffix(#""omitted":\#(tight.omitted)}"#))
    }

    @Test func a_cap_below_the_empty_object_gives_an_empty_text() {
        let summary = MemorySummary.build(episodes: hostileEpisodes(), rejections: [], interventions: [], now: now, byteCap: 40)
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
        let first = await memory.summary(now: now)
        let second = await memory.summary(now: now)
        #expect(first == second)
        #expect(first.text.utf8.count <= 2048 && first.goals > 0 && first.rejections > 0 && first.interventions > 0)
        #expect(try JSONSerialization.jsonObject(with: Data(first.text.utf8)) is [String: Any])
        // The reader gives the same summary from the file.
        let reader = try MemoryReader(path: temp.path)
        #expect(try reader.summary(now: now, byteCap: 2048) == first)
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
