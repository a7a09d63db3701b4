import Foundation
import GRDB
import Testing
import TestSupport
@testable import EpisodicMemory

@Suite("Episodic memory: persistence, WAL, retention")
struct MemoryPersistenceTests {
    @Test func episodes_written_then_closed_are_read_back_after_a_reopen() async throws {
        let temp = try TemporaryMemory()
        defer { temp.cleanup() }
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        do {
            let memory = try EpisodicMemory.open(temp.options())
            memory.recordEpisode(1, text: "go to 2,3", time: t0)
            memory.record(PlanRecord(goalID: 2, backend: "nobody", latency: .zero, verdict: .accepted))  // no such goal
            memory.record(GoalRecord(goalID: 2, text: "patrol the corners", user: nil, source: "cli", time: t0 + 10))
            memory.record(PlanRecord(goalID: 2, backend: "local", latency: .milliseconds(812), verdict: .rejected,
                                     reasons: ["unknown ability fly; valid: goto, patrol, stop, wait"], steps: "not json", time: t0 + 11))
            memory.record(PlanRecord(goalID: 2, backend: "builtin", latency: .microseconds(250), verdict: .accepted,
                                     steps: #"{"steps":[]}"#, time: t0 + 12))
            memory.record(OutcomeRecord(goalID: 2, status: .cancelled, cause: "e-stop", time: t0 + 13))
            memory.record(InterventionRecord(kind: "latched", detail: "estop (gamepad)", goalID: 2, time: t0 + 13))
            await memory.flush()
            let status = memory.status
            #expect(status.stored == 8 && status.failed == 0 && status.orphaned == 1, "\(status)")
            #expect(status.run == 1)
            memory.close()
            // Closed: records are dropped and counted, not written and not a crash.
            memory.record(GoalRecord(goalID: 3, text: "too late", source: "cli"))
            #expect(memory.status.dropped == 1)
            #expect(await memory.summary(vocabulary: testVocabulary) == .empty)
            await #expect(throws: MemoryError.closed(path: temp.path)) { try await memory.recentEpisodes(limit: 1) }
            memory.pruneNow()
            await memory.flush()
            #expect(memory.status.failed == 0)
        }

        // A restart: a new run, whose goal numbers start again without colliding.
        let memory = try EpisodicMemory.open(temp.options())
        #expect(memory.status.run == 2)
        memory.recordEpisode(1, text: "stop", time: t0 + 100)
        let episodes = try await memory.recentEpisodes(limit: 10)
        #expect(episodes.map(\.text) == ["stop", "patrol the corners", "go to 2,3"])
        #expect(episodes.map(\.run) == [2, 1, 1])
        #expect(episodes.map(\.goalID) == [1, 2, 1])

        let patrol = episodes[1]
        #expect(patrol.user == nil && patrol.source == "cli" && patrol.time == t0 + 10)
        #expect(patrol.plans.map(\.backend) == ["local", "builtin"])
        #expect(patrol.plans.map(\.verdict) == [.rejected, .accepted])
        #expect(patrol.plans[0].reasons == ["unknown ability fly; valid: goto, patrol, stop, wait"])
        #expect(patrol.plans[0].steps == "not json")
        #expect(abs(patrol.plans[0].latencyMs - 812) < 1e-9 && abs(patrol.plans[1].latencyMs - 0.25) < 1e-9)
        #expect(patrol.outcome == StoredOutcome(status: .cancelled, cause: "e-stop", time: t0 + 13))
        #expect(episodes[2].outcome?.status == .completed)

        let interventions = try await memory.recentInterventions(limit: 5)
        #expect(interventions.map(\.kind) == ["latched"] && interventions[0].goalID == 2 && interventions[0].run == 1)
        memory.close()
    }

    @Test func the_file_is_in_wal_mode_and_a_reader_sees_commits_while_the_writer_is_open() async throws {
        let temp = try TemporaryMemory()
        defer { temp.cleanup() }
        let memory = try EpisodicMemory.open(temp.options())
        defer { memory.close() }
        memory.recordEpisode(1, text: "go to 1,1")
        await memory.flush()
        #expect(FileManager.default.fileExists(atPath: temp.path + "-wal"))

        let reader = try MemoryReader(path: temp.path)
        #expect(try reader.journalMode() == "wal")
        #expect(try reader.recentEpisodes(limit: 5).map(\.text) == ["go to 1,1"])
        // The writer goes on while the reader is open; the reader's next read sees it.
        memory.recordEpisode(2, text: "go to 2,2")
        await memory.flush()
        #expect(memory.status.failed == 0)
        #expect(try reader.recentEpisodes(limit: 5).map(\.text) == ["go to 2,2", "go to 1,1"])
        #expect(try reader.counts().episodes == 2)
    }

    @Test func a_reader_never_creates_a_file() throws {
        let temp = try TemporaryMemory()
        defer { temp.cleanup() }
        #expect(throws: MemoryError.missing(path: temp.path)) { try MemoryReader(path: temp.path) }
        #expect(!FileManager.default.fileExists(atPath: temp.path))
    }

    @Test func retention_keeps_the_newest_episodes_and_interventions_and_their_plans_go_with_them() async throws {
        let temp = try TemporaryMemory()
        defer { temp.cleanup() }
        var options = temp.options(maxEpisodes: 5, maxInterventions: 3)
        options.pruneEvery = 7
        let memory = try EpisodicMemory.open(options)
        for id in UInt64(1)...20 {
            memory.recordEpisode(id, text: "goal \(id)")
            memory.record(InterventionRecord(kind: "latched", detail: "number \(id)"))
        }
        await memory.flush()
        memory.pruneNow()
        await memory.flush()
        let status = memory.status
        #expect(status.prunedEpisodes == 15 && status.prunedInterventions == 17, "\(status)")
        let episodes = try await memory.recentEpisodes(limit: 100)
        #expect(episodes.map(\.goalID) == [20, 19, 18, 17, 16])
        #expect(episodes.allSatisfy { $0.plans.count == 1 && $0.outcome != nil })
        #expect(try await memory.recentInterventions(limit: 100).map(\.detail) == ["number 20", "number 19", "number 18"])
        memory.close()
        // The plans and outcomes of pruned episodes are gone too (foreign keys, ON DELETE CASCADE).
        let raw = try DatabaseQueue(path: temp.path)
        let rows = try await raw.read { db in
            (try Int.fetchOne(db, sql: "SELECT count(*) FROM plan") ?? -1, try Int.fetchOne(db, sql: "SELECT count(*) FROM outcome") ?? -1)
        }
        #expect(rows.0 == 5 && rows.1 == 5)
    }

    @Test func retention_prunes_what_is_older_than_max_age_at_open() async throws {
        let temp = try TemporaryMemory()
        defer { temp.cleanup() }
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        do {
            let memory = try EpisodicMemory.open(temp.options(), now: now - 40 * 86_400)
            memory.recordEpisode(1, text: "old", time: now - 40 * 86_400)
            memory.record(InterventionRecord(kind: "latched", detail: "old", time: now - 40 * 86_400))
            memory.recordEpisode(2, text: "recent", time: now - 29 * 86_400)
            await memory.flush()
            memory.close()
        }
        let memory = try EpisodicMemory.open(temp.options(), now: now)  // 30 days by default
        await memory.flush()
        #expect(try await memory.recentEpisodes(limit: 10).map(\.text) == ["recent"])
        #expect(try await memory.recentInterventions(limit: 10).isEmpty)
        #expect(memory.status.prunedEpisodes == 1 && memory.status.prunedInterventions == 1)
        memory.close()
    }

    @Test func texts_are_stored_as_given_up_to_their_limit() async throws {
        let temp = try TemporaryMemory()
        defer { temp.cleanup() }
        let memory = try EpisodicMemory.open(temp.options())
        for (i, text) in hostileTexts.enumerated() { memory.recordEpisode(UInt64(i + 1), text: text) }
        let long = String(repeating: "é", count: MemoryLimits.goalTextBytes)  // 2 bytes each: twice the limit
        memory.recordEpisode(100, text: long)
        let episodes = try await memory.recentEpisodes(limit: 100)
        #expect(Array(episodes.dropFirst().reversed().map(\.text)) == hostileTexts.map(stored))
        #expect(stored(hostileTexts[3]) != hostileTexts[3])
        let clipped = episodes[0].text
        #expect(clipped.utf8.count <= MemoryLimits.goalTextBytes && clipped.hasSuffix("…") && clipped.dropLast().allSatisfy { $0 == "é" })
        memory.close()
    }

    /// A file written before robotd kept the validator's codes (migration `v1-episodes` only)
    /// migrates forward: its rejections read back with no codes, new ones with theirs.
    @Test func a_file_from_before_the_codes_migrates_and_keeps_its_rejections() async throws {
        let temp = try TemporaryMemory()
        defer { temp.cleanup() }
        // Recent times: the open prunes what is older than `max_age_days`.
        let t0 = Date().timeIntervalSince1970 - 60
        do {
            let old = try DatabaseQueue(path: temp.path)
            try MemoryStore.migrator.migrate(old, upTo: "v1-episodes")
            try await old.write { db in
                try db.execute(sql: "INSERT INTO run(started_at, robot_id) VALUES (?, 'test')", arguments: [t0])
                try db.execute(sql: "INSERT INTO episode(run, goal_id, time, text, user, source) VALUES (1, 1, ?, 'go to 9,9', NULL, 'cli')",
                               arguments: [t0])
                try db.execute(sql: """
                    INSERT INTO plan(episode, time, backend, latency_ms, verdict, reasons, steps)
                    VALUES (1, ?, 'local', 3, 'rejected', '["unknown ability fly"]', NULL)
                    """, arguments: [t0 + 1])
            }
            try old.close()
        }
        // `robotd memory` reads it as it is (a reader never migrates).
        let before = try MemoryReader(path: temp.path)
        #expect(try before.recentRejections(limit: 5).map(\.codes) == [[]])
        #expect(try before.recentEpisodes(limit: 5).first?.plans.map(\.codes) == [[]])
        let memory = try EpisodicMemory.open(temp.options())
        defer { memory.close() }
        memory.record(GoalRecord(goalID: 1, text: "go to 1,1", source: "cli", time: Date(timeIntervalSince1970: t0 + 10)))
        memory.record(PlanRecord(goalID: 1, backend: "local", latency: .zero, verdict: .rejected, reasons: ["a", "b"],
                                 codes: ["out_of_range", "unknown_ability"], time: Date(timeIntervalSince1970: t0 + 11)))
        await memory.flush()
        #expect(memory.status.stored == 2 && memory.status.failed == 0, "\(memory.status)")
        let reader = try MemoryReader(path: temp.path)
        let rejections = try reader.recentRejections(limit: 5)
        #expect(rejections.map(\.codes) == [["out_of_range", "unknown_ability"], []])
        #expect(rejections.map(\.reasons) == [["a", "b"], ["unknown ability fly"]])
    }

    /// Figures for the docs: an append's write time (p50/p99 over the last 128) and a summary's.
    @Test func an_append_and_a_summary_take_milliseconds() async throws {
        let temp = try TemporaryMemory()
        defer { temp.cleanup() }
        let memory = try EpisodicMemory.open(temp.options())
        defer { memory.close() }
        for id in UInt64(1)...200 { memory.recordEpisode(id, text: "go to \(id % 7),\(id % 5)", reasons: []) }
        await memory.flush()
        let status = memory.status
        let p50 = try #require(status.appendP50Microseconds), p99 = try #require(status.appendP99Microseconds)
        var summaryTimes: [Double] = []
        for _ in 0..<21 {
            let start = ContinuousClock.now
            _ = await memory.summary(vocabulary: testVocabulary)
            let elapsed = ContinuousClock.now - start
            summaryTimes.append(Double(elapsed.components.attoseconds) / 1e12 + Double(elapsed.components.seconds) * 1e6)
        }
        summaryTimes.sort()
        // The summary's own work (JSON of 16 entries), without the queue and the queries.
        let reader = try MemoryReader(path: temp.path)
        let episodes = try reader.recentEpisodes(limit: 8), rejections = try reader.recentRejections(limit: 4)
        let interventions = try reader.recentInterventions(limit: 4)
        var buildTimes: [Double] = []
        for _ in 0..<21 {
            let start = ContinuousClock.now
            _ = MemorySummary.build(episodes: episodes, rejections: rejections, interventions: interventions, now: Date(), byteCap: 2048,
                                    vocabulary: testVocabulary, currentRun: 1)
            let elapsed = ContinuousClock.now - start
            buildTimes.append(Double(elapsed.components.attoseconds) / 1e12 + Double(elapsed.components.seconds) * 1e6)
        }
        buildTimes.sort()
        print("memory figures: append p50 \(Int(p50)) µs, p99 \(Int(p99)) µs; summary (queue, queries, JSON) median \(Int(summaryTimes[10])) µs, max \(Int(summaryTimes[20])) µs; its JSON alone median \(Int(buildTimes[10])) µs")
        // Generous bounds (a shared 2-core VM): an append is a small transaction without fsync.
        #expect(status.stored == 600 && status.failed == 0)
        #expect(p50 < 20_000 && p99 < 200_000)
        #expect(summaryTimes[10] < 100_000)
    }
}
