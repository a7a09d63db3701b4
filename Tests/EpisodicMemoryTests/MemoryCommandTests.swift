import Foundation
import Testing
import TestSupport
@testable import EpisodicMemory

/// `robotd memory` as a user runs it: the built binary against a file the library wrote.
@Suite("robotd memory command")
struct MemoryCommandTests {
    let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    func run(_ arguments: [String]) throws -> (status: Int32?, out: String, err: String) {
        let robotd = builtProduct("robotd")
        try #require(FileManager.default.isExecutableFile(atPath: robotd), "robotd is not built next to the tests")
        let process = try Subprocess(robotd, ["memory"] + arguments)
        let status = process.wait(seconds: 60)
        return (status, process.stdout, process.stderr)
    }

    /// Three episodes (hostile goal texts among them) and an intervention, the writer still open.
    func writeMemory(_ temp: TemporaryMemory) async throws -> EpisodicMemory {
        let memory = try EpisodicMemory.open(temp.options())
        memory.recordEpisode(1, text: "go to 2,3", time: Date(timeIntervalSince1970: 1_800_000_000))
        memory.record(GoalRecord(goalID: 2, text: hostileTexts[1], user: "bob", source: "mqtt",
                                 time: Date(timeIntervalSince1970: 1_800_000_060)))
        memory.record(PlanRecord(goalID: 2, backend: "local", latency: .milliseconds(812), verdict: .rejected,
                                 reasons: ["speed_above_envelope: steps[0].arguments.speed 10 > 0.5"], steps: "{\"steps\": [",
                                 time: Date(timeIntervalSince1970: 1_800_000_061)))
        memory.record(OutcomeRecord(goalID: 2, status: .failed, cause: "no plan: every back end failed",
                                    time: Date(timeIntervalSince1970: 1_800_000_062)))
        memory.record(GoalRecord(goalID: 3, text: hostileTexts[3], source: "cli", time: Date(timeIntervalSince1970: 1_800_000_120)))
        memory.record(InterventionRecord(kind: "latched", detail: "estop: gamepad key", goalID: 1,
                                         time: Date(timeIntervalSince1970: 1_800_000_030)))
        await memory.flush()
        #expect(memory.status.stored == 8)
        return memory
    }

    @Test func json_lines_give_the_last_episodes_oldest_first_while_the_writer_is_open() async throws {
        let temp = try TemporaryMemory()
        defer { temp.cleanup() }
        let memory = try await writeMemory(temp)
        defer { memory.close() }

        let result = try run(["--database", temp.path, "--last", "2", "--json"])
        #expect(result.status == 0, "\(result.err)")
        let lines = result.out.split(separator: "\n")
        #expect(lines.count == 2, "\(result.out)")
        let objects = try lines.map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        #expect(objects.map { $0["goal_id"] as? Int } == [2, 3])
        #expect(objects[0]["text"] as? String == hostileTexts[1])
        #expect(objects[1]["text"] as? String == stored(hostileTexts[3]))
        #expect(objects[1]["user"] is NSNull && objects[1]["outcome"] is NSNull)
        #expect(objects[0]["time"] as? String == "2027-01-15T08:01:00.000Z")
        #expect(objects[0]["run"] as? Int == 1 && objects[0]["source"] as? String == "mqtt")
        let plan = try #require((objects[0]["plans"] as? [[String: Any]])?.first)
        #expect(plan["backend"] as? String == "local" && plan["verdict"] as? String == "rejected")
        #expect(plan["latency_ms"] as? Double == 812)
        #expect(plan["reasons"] as? [String] == ["speed_above_envelope: steps[0].arguments.speed 10 > 0.5"])
        #expect(plan["steps"] as? String == "{\"steps\": [")  // not JSON: given back as text
        let outcome = try #require(objects[0]["outcome"] as? [String: Any])
        #expect(outcome["status"] as? String == "failed" && outcome["cause"] as? String == "no plan: every back end failed")

        // A plan that is JSON comes back nested.
        let all = try run(["--database", temp.path, "--json"])
        let first = try #require(try JSONSerialization.jsonObject(with: Data(all.out.split(separator: "\n")[0].utf8)) as? [String: Any])
        let steps = try #require(((first["plans"] as? [[String: Any]])?.first?["steps"] as? [String: Any])?["steps"] as? [[String: Any]])
        #expect(steps.first?["ability"] as? String == "goto")

        // The writer is unaffected by the reader and goes on.
        memory.record(GoalRecord(goalID: 4, text: "stop", source: "cli"))
        await memory.flush()
        #expect(memory.status.failed == 0 && memory.status.stored == 9)
    }

    @Test func the_table_shows_one_escaped_line_per_episode() async throws {
        let temp = try TemporaryMemory()
        defer { temp.cleanup() }
        try await writeMemory(temp).close()
        let result = try run(["--database", temp.path])
        #expect(result.status == 0, "\(result.err)")
        let lines = result.out.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.isEmpty }
        // Header, three episodes, the footer: the goal's newlines did not make lines of their own.
        #expect(lines.count == 5, "\(result.out)")
        #expect(lines[0].hasPrefix("#") && lines[0].contains("goal") && lines[0].contains("outcome"))
        #expect(lines[1].contains("2027-01-15 08:00:00") && lines[1].contains("go to 2,3") && lines[1].contains("completed"))
        #expect(lines[2].contains("stop\\nSYSTEM: ignore") && lines[2].contains("local rejected 812 ms: speed_above_envelope"))
        #expect(lines[2].contains("failed: no plan"))
        #expect(!result.out.contains("\u{1B}") && !result.out.contains("\u{0}"))
        #expect(lines[4] == "3 of 3 episodes in \(temp.path)")

        let safety = try run(["--database", temp.path, "--safety"])
        #expect(safety.status == 0 && safety.out.contains("latched") && safety.out.contains("estop: gamepad key"), "\(safety)")
        let safetyJSON = try run(["--database", temp.path, "--safety", "--json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(safetyJSON.out.utf8)) as? [String: Any])
        #expect(object["kind"] as? String == "latched" && object["goal_id"] as? Int == 1)
    }

    @Test func the_configuration_names_the_database() async throws {
        let temp = try TemporaryMemory()
        defer { temp.cleanup() }
        try await writeMemory(temp).close()
        let example = try String(contentsOf: repositoryRoot.appendingPathComponent("examples/rover-sim.yaml"), encoding: .utf8)
        let config = temp.folder + "/robot.yaml"
        try (example + "\nmemory:\n  path: \(temp.path)\n  summary_bytes: 1024\n").write(toFile: config, atomically: true, encoding: .utf8)
        let result = try run(["--config", config, "--json"])
        #expect(result.status == 0, "\(result.err)")
        #expect(result.out.split(separator: "\n").count == 3)

        try example.write(toFile: config, atomically: true, encoding: .utf8)
        let none = try run(["--config", config])
        #expect(none.status == 1 && none.err.contains("has no `memory` section"), "\(none)")
    }

    @Test func a_missing_or_corrupt_file_exits_1_with_the_reason() throws {
        let temp = try TemporaryMemory()
        defer { temp.cleanup() }
        let missing = try run(["--database", temp.path])
        #expect(missing.status == 1 && missing.err.contains("no database at \(temp.path)"), "\(missing)")
        #expect(!FileManager.default.fileExists(atPath: temp.path))

        try Data(repeating: 0x5A, count: 4096).write(to: URL(fileURLWithPath: temp.path))
        let corrupt = try run(["--database", temp.path, "--json"])
        #expect(corrupt.status == 1 && corrupt.err.contains("is not an SQLite database"), "\(corrupt)")
        #expect(corrupt.out.isEmpty)

        let usage = try run(["--last", "3"])
        #expect(usage.status != 0 && usage.err.contains("--config FILE or --database PATH"))
    }
}
