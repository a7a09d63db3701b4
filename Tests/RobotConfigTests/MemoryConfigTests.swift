import RobotConfig
import Testing

/// `memory`: checked with the rest of the file, every problem at its line:column.
@Suite("robotd check: memory")
struct MemoryConfigTests {
    @Test func no_memory_section_means_no_memory() throws {
        let report = check(base())
        #expect(report.errors.isEmpty, "\(report)")
        #expect(try #require(report.configuration).memory == nil)
    }

    @Test func a_memory_section_decodes_with_its_defaults_for_what_it_leaves_out() throws {
        let report = check(base(appending: ["memory:", "  path: /var/lib/robotd/test/memory.sqlite", "  summary_bytes: 1024"]))
        #expect(report.errors.isEmpty, "\(report)")
        let memory = try #require(report.configuration?.memory)
        #expect(memory.path == "/var/lib/robotd/test/memory.sqlite" && memory.summaryBytes == 1024)
        #expect(memory.maxEpisodes == 1000 && memory.maxInterventions == 1000 && memory.maxAgeDays == 30 && memory.summaryEpisodes == 8)

        let empty = try #require(check(base(appending: ["memory: {}"])).configuration?.memory)
        #expect(empty == MemorySettings())
        #expect(empty.resolvedPath(robotID: "test") == "/var/lib/robotd/test/memory.sqlite")
    }

    @Test func wrong_values_are_reported_at_their_place() {
        let report = check(base(appending: ["memory:",
                                            "  path: 42",                // 18
                                            "  max_episodes: 0",         // 19
                                            "  max_age_days: -1",        // 20
                                            "  summary_bytes: 100",      // 21
                                            "  summary_episode: 3",      // 22
                                            "  max_interventions: 1.5"]))  // 23
        #expect(report.configuration == nil)
        expectProblem(report, at: 18, 9, "memory.path", "expected a string")
        expectProblem(report, at: 19, 17, "memory.max_episodes", "out of range")
        expectProblem(report, at: 20, 17, "memory.max_age_days", "out of range")
        expectProblem(report, at: 21, 18, "memory.summary_bytes", "out of range")
        expectProblem(report, at: 22, 3, "memory.summary_episode", "did you mean `summary_episodes`?")
        expectProblem(report, at: 23, 22, "memory.max_interventions", "integer")
    }
}
