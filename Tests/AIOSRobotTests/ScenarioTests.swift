import Foundation
import TestSupport
import Testing
import Transports

/// `robotd sim --scenario` as a user runs it: every scenario in examples/scenarios/ runs and meets
/// its success criteria (judged on the simulator's ground truth); a scenario that cannot be met
/// fails with exit status 1; a broken scenario file is refused with line and column.
@Suite("robotd sim --scenario: the example scenarios and their criteria", .serialized)
struct ScenarioTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("examples/scenarios")

    static var scenarios: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter { $0.hasSuffix(".yaml") }.sorted()
    }

    @Test func when_the_examples_are_listed_expect_a_handful_of_rover_and_rig_scenarios() {
        #expect(Self.scenarios.count >= 5)
        #expect(Self.scenarios.contains { $0.hasPrefix("rig-") } && Self.scenarios.contains { $0.hasPrefix("rover-") })
    }

    @Test(arguments: scenarios)
    func when_an_example_scenario_runs_expect_every_criterion_met(_ name: String) throws {
        if name.hasPrefix("rig-") && !MosquittoBroker.isInstalled { return }
        let run = try Subprocess(builtProduct("robotd"), ["sim", "--json", "--scenario", Self.folder.appendingPathComponent(name).path])
        let status = run.wait(seconds: 240)
        let summary = try #require(run.jsonLines.last { $0["kind"] as? String == "summary" }, "\(run.stderr)")
        let criteria = try #require(summary["criteria"] as? [[String: Any]])
        #expect(!criteria.isEmpty)
        for c in criteria { #expect(c["passed"] as? Bool == true, "\(name): \(c["reason"] ?? "?")") }
        #expect(status == 0, "\(run.stderr)")
    }

    /// A criterion the run cannot meet: the exit status says so, and the reason is in words.
    @Test func when_a_criterion_fails_expect_exit_status_1_and_the_reason() throws {
        let folder = try temporaryDirectory()
        let file = folder + "/impossible.yaml"
        try """
        world: rover
        config: \(Self.folder.deletingLastPathComponent().appendingPathComponent("rover-waypoints-sim.yaml").path)
        seconds: 3
        waypoints: [[3.0, 3.0]]
        criteria:
          - no_collision
          - {reach_waypoint: 1, within_s: 2}
        """.write(toFile: file, atomically: true, encoding: .utf8)
        let run = try Subprocess(builtProduct("robotd"), ["sim", "--scenario", file])
        #expect(run.wait(seconds: 60) == 1)
        #expect(run.stdout.contains("PASS  no collision"))
        #expect(run.stdout.contains("FAIL  waypoint 1 never within 0.20 m"), "\(run.stdout)")
    }

    /// Flags over the scenario: --seconds shortens the run the scenario asks for.
    @Test func when_a_flag_and_the_scenario_disagree_expect_the_flag_to_win() throws {
        let run = try Subprocess(builtProduct("robotd"), ["sim", "--json", "--seconds", "2", "--scenario",
                                                         Self.folder.appendingPathComponent("rover-estop-and-reset.yaml").path])
        _ = run.wait(seconds: 60)
        let summary = try #require(run.jsonLines.last { $0["kind"] as? String == "summary" })
        #expect((summary["t_s"] as? Double ?? 99) < 3)
    }

    @Test func when_a_scenario_file_is_broken_expect_every_problem_with_its_line_and_column() throws {
        let folder = try temporaryDirectory()
        let file = folder + "/broken.yaml"
        try """
        world: moon
        seconds: -1
        critera: []
        """.write(toFile: file, atomically: true, encoding: .utf8)
        let run = try Subprocess(builtProduct("robotd"), ["sim", "--scenario", file])
        #expect(run.wait(seconds: 30) == 1)
        #expect(run.stderr.contains("broken.yaml:1:8: error: world"), "\(run.stderr)")
        #expect(run.stderr.contains("broken.yaml:2:10: error: seconds"), "\(run.stderr)")
        #expect(run.stderr.contains("broken.yaml:3:1: error: critera") && run.stderr.contains("criteria"), "\(run.stderr)")
    }
}
