import Foundation
import TestSupport
import Testing

/// `robotd sim --goal … --planner builtin` as a newcomer runs it: the goal, the plan (or the
/// rejection and why) on stderr, and the rover driving it under the `route` policy.
extension PlanningRealTimeTests {
@Suite("robotd sim --goal: a goal planned and driven end to end", .serialized)
struct SimGoalCommandTests {
    static func sim(_ arguments: [String], seconds: Double) throws -> (status: Int32?, out: String, err: String) {
        let robotd = builtProduct("robotd")
        try #require(FileManager.default.isExecutableFile(atPath: robotd), "robotd is not built next to the tests")
        let process = try Subprocess(robotd, ["sim", "--world", "rover"] + arguments)
        let status = process.wait(seconds: seconds + 30)
        return (status, process.stdout, process.stderr)
    }

    @Test func when_the_rover_is_told_to_patrol_the_corners_expect_the_plan_and_the_rover_driving_it() throws {
        let run = try Self.sim(["--goal", "patrol the corners", "--planner", "builtin", "--seconds", "12"], seconds: 12)
        #expect(run.status == 0, "\(run.err)")
        // The goal, the built-in planner's plan through the arena's corners, its first step under way.
        #expect(run.err.contains("planner: goal 1 (config): \"patrol the corners\""), "\(run.err)")
        #expect(run.err.contains("goal 1: builtin's plan accepted"))
        #expect(run.err.contains("goal 1: plan by builtin: 1. patrol(points [(-4.69, -3.69)") || run.err.contains("goal 1: plan by builtin: 1. patrol(points [(-4.69, 3.69)"),
                "\(run.err)")
        #expect(run.err.contains("goal 1: step 1/1 patrol started"))
        // The progress lines: the route policy drives (above wander), and the rover moves.
        let driving = run.out.split(separator: "\n").filter { $0.contains(" · route · ") }
        #expect(driving.count >= 5, "\(run.out)")
        #expect(driving.contains { !$0.contains("0.00 m/s") })
    }

    @Test func when_the_goal_cannot_be_done_expect_the_rejection_and_its_reasons() throws {
        let run = try Self.sim(["--goal", "go to 100,100", "--planner", "builtin", "--seconds", "3"], seconds: 3)
        #expect(run.status == 0, "\(run.err)")
        #expect(run.err.contains("goal 1: builtin's plan REJECTED: steps[0].arguments.x:"), "\(run.err)")
        #expect(run.err.contains("goal 1: no plan:"))
        #expect(!run.out.contains(" · route · "))
    }

    /// `--planner URL --model NAME`: the model server first (here scripts/peers/openai_peer.py,
    /// whose `unsafe` model sends the rover out of the arena), the built-in planner after it.
    @Test func when_a_model_server_answers_an_unsafe_plan_expect_it_rejected_and_the_built_in_plan_driven() async throws {
        let unsafe = #"{"steps":[{"ability":"goto","arguments":{"x":-3,"y":40}}]}"#
        let peer = try await ModelPeer.start(["unsafe": ["mode": "ok", "content": unsafe]])
        let robotd = builtProduct("robotd")
        let process = try Subprocess(robotd, ["sim", "--world", "rover", "--goal", "go to -3,0.5", "--planner", peer.baseURL.absoluteString,
                                              "--model", "unsafe", "--seconds", "10"])
        #expect(await eventually(seconds: 60) { !process.process.isRunning })
        #expect(process.wait(seconds: 5) == 0, "\(process.stderr)")
        let err = process.stderr
        #expect(err.contains("goal 1: model's plan REJECTED: steps[0].arguments.y:"), "\(err)")
        #expect(err.contains("goal 1: model's plan REJECTED") && err.contains("(round 2)"))
        #expect(err.contains("goal 1: plan by builtin: 1. goto(x -3, y 0.5)"))
        #expect(err.contains("goal 1: plan completed"))
        #expect(peer.requests.count == 3)  // the first question and planner.rejection_retries (2) corrections
    }

    @Test func when_a_short_patrol_is_given_expect_it_completed_within_the_run() throws {
        let run = try Self.sim(["--goal", "patrol -3,0.5 -2.5,0.5", "--planner", "builtin", "--seconds", "20"], seconds: 20)
        #expect(run.status == 0, "\(run.err)")
        #expect(run.err.contains("goal 1: plan completed"), "\(run.err)")
    }
}
}
