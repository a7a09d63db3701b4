import Foundation
import Planner
import PlannerBackends
import RTScheduler
import RobotConfig
import RobotSim
import SafetyGuard
import Synchronization
import Testing
import TestSupport
@testable import AIOSRobot

/// Waits by sleeping the task, never by blocking a thread of the cooperative pool: the planner's
/// requests run there (2 cores).
func eventually(seconds: Double = 10, _ condition: () -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while !condition() {
        if Date() >= deadline { return false }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return true
}

/// examples/rover-sim.yaml in lockstep (the simulated rover, virtual time) with the planner
/// service beside it on Swift concurrency: goals go in, plans come back to the dispatch thread
/// through the `planner` source, and the rover's `route` policy drives them.
final class PlanningLoop: Sendable {
    let loop: ConfiguredRoverLoop
    let service: PlannerService

    init(gamepad: [SimulatedGamepad.Step] = [], router: (PlanningContext) throws -> PlanRouter? = { _ in nil },
         edit: (inout String) -> Void = { _ in }) throws {
        loop = try ConfiguredRoverLoop(try Examples.configuration("rover-sim.yaml", edit: edit), gamepad: gamepad)
        let context = try PlanningContext(configuration: loop.runtime.configuration)
        service = try PlannerService(runtime: loop.runtime, scheduler: loop.scheduler, router: try router(context))
        service.start()
    }

    deinit { service.stop() }

    var execution: PlanExecutionStatus { loop.runtime.planning?.status ?? PlanExecutionStatus() }
    var journal: [PlanTopicPayload] { service.journal.all }
    var now: Int64 { loop.rover.time }
    /// The route policy's index in the example (teleop, wander, route, obstacle_stop).
    static let route: Int8 = 2

    func run(for nanoseconds: Int64) { loop.run(until: loop.rover.time + nanoseconds) }

    /// Gives a goal; waits (real time) for its request to end, then steps the world until the
    /// dispatch thread has taken its plan (or its failure). Returns the goal's id.
    func give(_ goal: String) async throws -> UInt64 {
        guard case .accepted(let id) = service.submit(goal) else {
            throw KindError("goal \(goal) not taken: \(journal.last?.line ?? "")")
        }
        let ended = await eventually(seconds: 20) {
            journal.contains { $0.goalId == id && ($0.kind == .plan || $0.kind == .planningFailed) }
        }
        guard ended else { throw KindError("no plan for \(goal): \(journal.map(\.line))") }
        guard journal.contains(where: { $0.goalId == id && $0.kind == .plan }) else { return id }
        // The lane posts right after the request returns: a few 10 ms steps of the world at most.
        let taken = await eventually(seconds: 10) {
            run(for: 10_000_000)
            return execution.planGoalID == id || journal.contains { $0.goalId == id && $0.event == "refused" }
        }
        guard taken else { throw KindError("the plan for \(goal) never reached the dispatch thread") }
        return id
    }

    /// A model served by `peer` (`model` picks its behaviour) first, then — with `builtin` — the
    /// built-in planner.
    static func model(_ peer: ModelPeer, _ model: String, name: String = "model", deadline: Duration = .seconds(20),
                      goalKinds: Set<String>? = nil, builtin: Bool = true,
                      settings: PlanRouterSettings = PlanRouterSettings()) -> (PlanningContext) throws -> PlanRouter? {
        { context in
            try PlanRouter(routes: [
                PlanRoute(OpenAICompatibleBackend(OpenAIBackendSettings(name: name, baseURL: peer.baseURL, model: model)),
                          deadline: deadline, goalKinds: goalKinds),
            ] + (builtin ? [PlanRoute(BuiltinPlanBackend(context: context), deadline: .seconds(1))] : []), settings: settings)
        }
    }

    /// The gamepad's e-stop (BTN_EAST) pressed and released, then its reset (BTN_START) pressed
    /// and released, at these times (ns of the world's clock).
    static func stopAndReset(_ press: Int64, _ release: Int64, reset: Int64, _ resetRelease: Int64) -> [SimulatedGamepad.Step] {
        [.init(at: press, [.press("BTN_EAST")]), .init(at: release, [.release("BTN_EAST")]),
         .init(at: reset, [.press("BTN_START")]), .init(at: resetRelease, [.release("BTN_START")])]
    }

    func progress(_ id: UInt64, _ event: String) -> PlanTopicPayload? {
        journal.first { $0.kind == .progress && $0.goalId == id && $0.event == event }
    }
}

/// Plan execution on the dispatch thread (docs/planner.md, "Execution"), in lockstep against the
/// simulated rover: a plan's points reached by the simulator's ground truth; a latched stop cancels
/// the plan and the request in flight, and nothing resumes after the reset; a new goal cancels
/// the old; a model's rejected plan falls back to the next back end.
@Suite("Plan execution: the rover drives plans; stops, new goals and rejections", .serialized)
struct PlanExecutionTests {
    @Test func when_a_stop_latches_during_a_plan_expect_it_cancelled_and_nothing_resumed_after_the_reset() async throws {
        let p = try PlanningLoop(gamepad: PlanningLoop.stopAndReset(6_000_000_000, 6_100_000_000, reset: 8_950_000_000, 9_000_000_000))
        p.run(for: 1_000_000_000)
        let id = try await p.give("patrol the corners")
        p.loop.run(until: 5_900_000_000)
        #expect(p.execution.state == .running && p.execution.planGoalID == id)
        #expect(p.loop.status.commandedBy[0] == PlanningLoop.route && p.loop.snapshot.linearVelocity > 0.1)
        p.loop.run(until: 6_500_000_000)
        #expect(p.loop.status.latched)
        #expect(p.execution.state == .cancelled && p.execution.reason == .latched)
        // A goal during a stop is refused: its plan would start after the reset.
        #expect(p.service.submit("go to -3,0") == .refused("latched"))
        p.loop.run(until: 9_200_000_000)
        #expect(!p.loop.status.latched && p.loop.status.resets == 1)
        // After the reset: the plan's policy holds still (above wander), for seconds.
        let after = p.loop.snapshot
        p.loop.run(until: 13_000_000_000)
        #expect(hypot(p.loop.snapshot.pose.x - after.pose.x, p.loop.snapshot.pose.y - after.pose.y) < 0.05)
        #expect(p.loop.snapshot.odometer - after.odometer < 0.05)
        #expect(p.loop.status.commandedBy[0] == PlanningLoop.route && p.execution.state == .cancelled)
        #expect(await eventually { p.progress(id, "cancelled")?.reason == "latched" })
    }

    /// The e-stop pressed and released and the reset given, all between two of the executor's
    /// checks (every 50 ms): the flag it reads is down again, the guard's latch epoch is not. The
    /// plan is cancelled at the next check, and the rover stays where the stop left it.
    @Test func when_a_stop_and_its_reset_fall_within_one_executor_period_expect_the_plan_cancelled_and_nothing_resumed() async throws {
        let p = try PlanningLoop(gamepad: PlanningLoop.stopAndReset(6_012_000_000, 6_016_000_000, reset: 6_021_000_000, 6_025_000_000))
        p.run(for: 1_000_000_000)
        let id = try await p.give("patrol the corners")
        p.loop.run(until: 6_000_000_000)
        #expect(p.execution.state == .running && p.execution.planGoalID == id)
        #expect(p.loop.status.commandedBy[0] == PlanningLoop.route && p.loop.snapshot.linearVelocity > 0.1)
        let epoch = p.loop.runtime.latchEpoch
        p.loop.run(until: 6_040_000_000)
        // Latched and released before the executor looked again.
        #expect(!p.loop.status.latched && p.loop.status.resets == 1 && p.loop.runtime.latchEpoch >= epoch + 2)
        p.loop.run(until: 6_100_000_000)
        #expect(p.execution.state == .cancelled && p.execution.reason == .latched)
        let after = p.loop.snapshot
        p.loop.run(until: 10_000_000_000)
        #expect(p.loop.snapshot.odometer - after.odometer < 0.05, "drove \(p.loop.snapshot.odometer - after.odometer) m after the reset")
        #expect(p.loop.status.commandedBy[0] == PlanningLoop.route && p.execution.state == .cancelled)
        #expect(await eventually { p.progress(id, "cancelled")?.reason == "latched" })
    }

    /// The same while a model thinks: the watcher (every 50 ms) sees the epoch moved, not the
    /// flag, and cancels the request.
    @Test func when_a_stop_and_its_reset_fall_between_two_looks_of_the_watcher_expect_the_request_cancelled() async throws {
        let peer = try await ModelPeer.start(["hang": ["mode": "hang"]])
        let p = try PlanningLoop(gamepad: PlanningLoop.stopAndReset(2_012_000_000, 2_016_000_000, reset: 2_021_000_000, 2_025_000_000),
                                 router: PlanningLoop.model(peer, "hang", name: "hang"))
        p.run(for: 1_000_000_000)
        guard case .accepted(let id) = p.service.submit("go to -2.5,0.5") else { Issue.record("goal refused"); return }
        #expect(await eventually { peer.requests.count == 1 })
        p.loop.run(until: 2_000_000_000)
        // The stop and its reset in one go: a few milliseconds of real time.
        p.loop.run(until: 2_040_000_000)
        #expect(!p.loop.status.latched && p.loop.status.resets == 1)
        #expect(await eventually(seconds: 5) { p.journal.contains { $0.kind == .planningFailed && $0.reason == "cancelled: a stop latched" } },
                "\(p.journal.map(\.line))")
        #expect(await eventually(seconds: 5) { peer.closed(1) })
        try await Task.sleep(for: .milliseconds(300))
        p.run(for: 3_000_000_000)
        #expect(p.execution.planGoalID == 0 && !p.journal.contains { $0.goalId == id && $0.kind == .plan })
        #expect(p.service.health().first { $0.name == "builtin" }?.requests == 0)
    }

    @Test func when_a_stop_latches_while_a_model_is_asked_expect_the_request_cancelled_and_no_plan_after_the_reset() async throws {
        let peer = try await ModelPeer.start(["hang": ["mode": "hang"]])
        let p = try PlanningLoop(gamepad: PlanningLoop.stopAndReset(2_000_000_000, 2_100_000_000, reset: 3_950_000_000, 4_000_000_000),
                                 router: PlanningLoop.model(peer, "hang", name: "hang"))
        p.run(for: 1_000_000_000)
        guard case .accepted(let id) = p.service.submit("go to -2.5,0.5") else { Issue.record("goal refused"); return }
        #expect(await eventually { peer.requests.count == 1 })
        p.loop.run(until: 2_300_000_000)
        #expect(p.loop.status.latched)
        // The watcher sees the latch and cancels the request: no fallback, no plan.
        #expect(await eventually(seconds: 5) { p.journal.contains { $0.kind == .planningFailed && $0.reason == "cancelled: a stop latched" } })
        #expect(await eventually(seconds: 5) { peer.closed(1) })
        p.loop.run(until: 4_200_000_000)
        #expect(!p.loop.status.latched)
        try await Task.sleep(for: .milliseconds(300))
        p.run(for: 3_000_000_000)
        #expect(p.execution.planGoalID == 0 && !p.journal.contains { $0.goalId == id && $0.kind == .plan })
        #expect(p.service.health().first { $0.name == "builtin" }?.requests == 0)
    }

    @Test func when_a_new_goal_arrives_expect_the_old_plan_cancelled_and_the_new_one_driven_to_its_point() async throws {
        let p = try PlanningLoop()
        p.run(for: 1_000_000_000)
        let first = try await p.give("patrol the corners")
        p.run(for: 3_000_000_000)
        #expect(p.execution.state == .running && p.execution.planGoalID == first)
        let second = try await p.give("go to -3,1")
        #expect(p.progress(first, "cancelled")?.reason == "new_goal" || p.execution.planGoalID == second)
        #expect(p.execution.planGoalID == second && p.execution.state == .running)
        p.run(for: 30_000_000_000)
        #expect(await eventually { p.progress(second, "completed") != nil })
        #expect(await eventually { p.progress(first, "cancelled")?.reason == "new_goal" })
        #expect(p.loop.closestApproach(to: (-3, 1)).distance < 0.2)
        #expect(p.loop.snapshot.collisions == 0 && !p.loop.status.latched)
        // Goals too close together are refused (planner.goals.min_interval_ms, 1 s by default).
        _ = p.service.submit("go to -3,0")
        #expect(p.service.submit("go to -3,-1") == .refused("rate_limited"))
    }

    @Test func when_a_models_plan_is_rejected_expect_its_reasons_fed_back_then_the_next_back_end_and_the_plan_driven() async throws {
        let unsafe = #"{"steps":[{"ability":"goto","arguments":{"x":100,"y":1}}]}"#
        let peer = try await ModelPeer.start(["unsafe": ["mode": "ok", "content": unsafe]])
        let p = try PlanningLoop(router: PlanningLoop.model(peer, "unsafe", deadline: .seconds(10), settings: PlanRouterSettings(maximumRetriesAfterRejection: 1)))
        p.run(for: 1_000_000_000)
        let id = try await p.give("go to -2.5,1")
        let verdicts = p.journal.filter { $0.kind == .verdict && $0.goalId == id }
        #expect(verdicts.map { "\($0.backend ?? "?"):\($0.accepted == true)" } == ["model:false", "model:false", "builtin:true"])
        #expect(verdicts.first?.issues?.contains { $0.code == "outside_workspace" && $0.path == "steps[0].arguments.x" } == true,
                "\(verdicts.first?.issues ?? [])")
        #expect(p.journal.first { $0.kind == .plan && $0.goalId == id }?.backend == "builtin")
        // The second question carried the reasons back to the model.
        let second = (peer.requests.dropFirst().first?["body"]).flatMap { try? JSONSerialization.data(withJSONObject: $0) }
            .map { String(decoding: $0, as: UTF8.self) } ?? ""
        #expect(second.contains("REJECTED") && second.contains("steps[0].arguments.x"), "\(second)")
        p.run(for: 20_000_000_000)
        #expect(await eventually { p.progress(id, "completed") != nil })
        #expect(p.loop.closestApproach(to: (-2.5, 1)).distance < 0.2)
        let health = p.service.health()
        #expect(health.first { $0.name == "model" }?.rejected == 2 && health.first { $0.name == "builtin" }?.accepted == 1)
    }

    /// The rover wanders on while a slow model thinks: its answer, made for a pose that is gone,
    /// is stale — not the model's mistake — and the goal is planned again from the state now.
    @Test func when_the_world_moves_on_while_a_model_thinks_expect_the_goal_planned_again_from_the_state_now() async throws {
        let plan = #"{"steps":[{"ability":"goto","arguments":{"x":-3,"y":1}}]}"#
        let peer = try await ModelPeer.start(["slow": ["mode": "ok", "content": plan, "delay": 1.0]])
        let p = try PlanningLoop(router: PlanningLoop.model(peer, "slow", deadline: .seconds(10), builtin: false,
                                                        settings: PlanRouterSettings(maximumRetriesAfterRejection: 0)))
        p.run(for: 1_000_000_000)
        guard case .accepted(let id) = p.service.submit("go to -3,1") else { Issue.record("goal refused"); return }
        #expect(await eventually { peer.requests.count == 1 })
        let before = p.loop.snapshot.pose
        p.run(for: 3_000_000_000)  // wander drives on meanwhile (the plan is not there yet)
        #expect(hypot(p.loop.snapshot.pose.x - before.x, p.loop.snapshot.pose.y - before.y) > 0.6)
        #expect(await eventually(seconds: 15) { p.journal.contains { $0.kind == .replan && $0.goalId == id } }, "\(p.journal.map(\.line))")
        #expect(p.journal.first { $0.kind == .verdict && $0.goalId == id }?.issues?.contains { $0.code == "stale_pose" } == true)
        #expect(await eventually(seconds: 15) { p.journal.contains { $0.kind == .plan && $0.goalId == id } }, "\(p.journal.map(\.line))")
        #expect(peer.requests.count == 2)
        #expect(await eventually {
            p.run(for: 10_000_000)
            return p.execution.planGoalID == id
        })
        p.run(for: 20_000_000_000)
        #expect(await eventually { p.progress(id, "completed") != nil })
        #expect(p.loop.closestApproach(to: (-3, 1)).distance < 0.2)
    }

    /// Asking again from the state now stays within one `planner.budget_ms`, not one per question:
    /// a model that takes 1 s (its deadline 3 s), whose answer goes stale while the rover wanders,
    /// and a budget of 3.5 s — asked once; what is left is less than its deadline.
    @Test func when_answers_go_stale_expect_every_question_within_one_budget() async throws {
        let plan = #"{"steps":[{"ability":"goto","arguments":{"x":-3,"y":1}}]}"#
        let peer = try await ModelPeer.start(["slow": ["mode": "ok", "content": plan, "delay": 1.0]])
        let p = try PlanningLoop(router: PlanningLoop.model(peer, "slow", deadline: .seconds(3), builtin: false,
                                                        settings: PlanRouterSettings(maximumRetriesAfterRejection: 0)), edit: {
            $0 = $0.replacingOccurrences(of: "planner:\n  max_steps: 6\n", with: "planner:\n  max_steps: 6\n  budget_ms: 3500\n")
        })
        #expect(p.loop.runtime.configuration.planner.budgetMs == 3500)
        p.run(for: 1_000_000_000)
        let started = ContinuousClock.now
        guard case .accepted(let id) = p.service.submit("go to -3,1") else { Issue.record("goal refused"); return }
        #expect(await eventually { peer.requests.count == 1 }, "\(p.journal.map(\.line))")
        p.run(for: 3_000_000_000)  // wander drives on meanwhile
        #expect(await eventually(seconds: 15) { p.journal.contains { $0.kind == .planningFailed && $0.goalId == id } }, "\(p.journal.map(\.line))")
        let took = ContinuousClock.now - started
        #expect(peer.requests.count == 1)
        #expect(took < .milliseconds(4_500), "\(took) for a budget of 3.5 s")
    }

    /// A plan's commands carry the `planner` origin: the guard's planner envelope limits them,
    /// while the same rover's other policies keep the channel's own limits.
    @Test func when_a_plan_drives_expect_its_commands_under_the_planner_envelope() async throws {
        let p = try PlanningLoop(edit: { yaml in
            yaml = yaml.replacingOccurrences(of: "planner: {max_velocity: 10.0}", with: "planner: {max_velocity: 3.0}")
                .replacingOccurrences(of: "    speed: 0.4                         # m/s, when a step gives none",
                                      with: "    speed: 0.1")
        })
        #expect(p.loop.runtime.configuration.channels.allSatisfy { $0.envelopes?["planner"]?.maxVelocity == 3.0 })
        p.run(for: 1_000_000_000)
        // Wander (origin policy) may use the channel's 12 rad/s.
        let id = try await p.give("go to -3.5,1.5")  // a quarter turn on the spot first: ±4.5 rad/s asked
        p.run(for: 20_000_000_000)
        // The journal hears of it from the service's watcher (every 50 ms of real time).
        #expect(await eventually { p.progress(id, "completed") != nil }, "\(p.journal.map(\.line))")
        // From wander's speed the limiter ramps down to the envelope (40 rad/s²: under 0.3 s), then
        // every planner command is held within it.
        let start = try #require(p.loop.records.first { $0.origin == .planner }?.at)
        let clamped = p.loop.records.filter { $0.kind == .clamped && $0.origin == .planner && $0.at > start + .milliseconds(500) }
        #expect(!clamped.isEmpty)
        #expect(clamped.allSatisfy { abs($0.approved) <= 3.0 + 1e-9 }, "\(clamped.filter { abs($0.approved) > 3.0 }.prefix(3))")
        #expect(clamped.contains { abs($0.requested) > 3.0 })
        #expect(p.loop.closestApproach(to: (-3.5, 1.5)).distance < 0.2)
    }

    /// Straight at a pillar: obstacle_stop takes the forward motion away 0.3 m before it, the route
    /// gets no closer, and the step fails after `no_progress.time_s` (15 s); the rover stands still.
    @Test func when_a_step_stops_getting_closer_expect_it_failed_for_no_progress_and_the_rover_held() async throws {
        let p = try PlanningLoop()
        p.run(for: 1_000_000_000)
        let id = try await p.give("go to -1.9,-2.4")  // behind the pillar at (-2.5, -1.5), on the line from the start
        let started = p.now
        p.run(for: 40_000_000_000)
        _ = await eventually { p.progress(id, "failed") != nil }
        let failed = try #require(p.progress(id, "failed"), "\(p.journal.map(\.line))")
        #expect(failed.reason == "no_progress")
        let failedAt = try #require(p.loop.runtime.planning).events.recent().first { $0.kind == .failed }?.at ?? 0
        // 15 s without progress, counted from the last 5 cm gained: well after the start, well before the 120 s timeout.
        #expect(Double(failedAt - started) / 1e9 > 15 && Double(failedAt - started) / 1e9 < 40)
        #expect(p.loop.snapshot.collisions == 0 && p.loop.status.filtered > 0)
        let held = p.loop.snapshot
        p.run(for: 3_000_000_000)
        #expect(p.loop.snapshot.odometer - held.odometer < 0.02 && p.loop.status.commandedBy[0] == PlanningLoop.route)
    }

    @Test func when_a_step_runs_past_its_time_limit_expect_it_failed_for_timeout() async throws {
        let p = try PlanningLoop(edit: { $0 = $0.replacingOccurrences(of: "    timeout_s: 120\n", with: "    timeout_s: 3\n") })
        #expect(p.loop.runtime.configuration.abilities.first?.timeoutS == 3)
        p.run(for: 1_000_000_000)
        let id = try await p.give("go to -3.5,2")  // a quarter turn and 2 m: more than 3 s
        p.run(for: 5_000_000_000)
        #expect(await eventually { p.progress(id, "failed") != nil })
        #expect(p.progress(id, "failed")?.reason == "timeout", "\(p.journal.map(\.line))")
        #expect((p.progress(id, "failed")?.remaining ?? 0) > 0.5)
        #expect(p.loop.closestApproach(to: (-3.5, 2)).distance > 0.5)
    }

    /// Who may give goals, how often, and a QoS 1 redelivery taken once (the rate limit on the
    /// scheduler's clock: virtual here, so it moves only when the world does).
    @Test func goals_from_mqtt_are_authorised_rate_limited_and_taken_once() async throws {
        let p = try PlanningLoop(edit: {
            $0 = $0.replacingOccurrences(of: "planner:\n  max_steps: 6\n", with: "planner:\n  max_steps: 6\n  goals: {users: [operator]}\n")
        })
        p.run(for: 1_000_000_000)
        func arrive(_ text: String, user: String = "operator", id: String? = nil, retained: Bool = false) -> PlanTopicPayload? {
            p.service.take(GoalArrival(user: user, text: text, id: id, retained: retained, arrival: p.now))
            return p.journal.last { $0.kind == .goal }
        }
        #expect(arrive("go to -3,0", retained: true)?.reason == "retained")
        #expect(arrive("go to -3,0", user: "mallory")?.reason == "not_authorised")
        #expect(arrive("go to -3,0", id: "a")?.outcome == "accepted")
        #expect(arrive("go to -3,0", id: "a")?.reason == "duplicate")
        #expect(arrive("go to -3,0.5")?.reason == "rate_limited")
        #expect(arrive("go to -3,0.5")?.reason == "rate_limited")  // refused, so not a duplicate: judged afresh
        p.run(for: 1_100_000_000)
        #expect(arrive("go to -3,0.5")?.outcome == "accepted")
        p.run(for: 1_100_000_000)
        #expect(arrive("go to -3,0.5")?.reason == "duplicate")  // the same text within 10 s
        #expect(arrive("")?.reason == "empty")
        #expect(arrive(String(repeating: "a", count: 501))?.reason == "too_long")
        #expect(p.journal.filter { $0.kind == .goal && $0.outcome == "accepted" }.map(\.goalId) == [1, 2])
    }

    /// A configuration object built in code is not checked by `robotd check`: times beyond the
    /// schema's maximum (1e300) saturate instead of trapping — the router built with its back end,
    /// the rate limit, the request's budget, the step's limits of the plan executed.
    @Test func when_a_configuration_object_holds_huge_times_expect_goals_planned_and_executed_without_a_trap() async throws {
        var configuration = try Examples.configuration("rover-sim.yaml")
        for i in configuration.abilities.indices where configuration.abilities[i].action.moves {
            configuration.abilities[i].timeoutS = 1e300
            configuration.abilities[i].noProgress = NoProgressSettings(minProgress: 0.05, timeS: 1e300)
        }
        configuration.planner.budgetMs = 1e300
        configuration.planner.goals.minIntervalMs = 1e300
        var far = PlannerBackendSettings(name: "far", baseURL: "http://127.0.0.1:9/v1", model: "m")
        far.deadlineMs = 1e300
        far.breaker.coolDownMs = 1e300
        configuration.planner.backends = [far]
        let loop = try ConfiguredRoverLoop(configuration)
        let service = try PlannerService(runtime: loop.runtime, scheduler: loop.scheduler)
        service.start()
        defer { service.stop() }
        loop.run(until: 1_000_000_000)
        guard case .accepted(let id) = service.submit("go to -3,0.5") else {
            Issue.record("goal refused: \(service.journal.all.map(\.line))")
            return
        }
        #expect(service.submit("go to -3,1") == .refused("rate_limited"))
        #expect(await eventually(seconds: 20) { service.journal.all.contains { $0.kind == .plan && $0.goalId == id } },
                "\(service.journal.all.map(\.line))")
        let planning = try #require(loop.runtime.planning)
        #expect(await eventually {
            loop.run(until: loop.rover.time + 10_000_000)
            return planning.status.planGoalID == id
        })
        loop.run(until: loop.rover.time + 15_000_000_000)
        #expect(planning.status.state == .completed, "\(service.journal.all.map(\.line))")
        #expect(loop.closestApproach(to: (-3, 0.5)).distance < 0.2)
    }

    /// `stop` is not planned: whatever the rate limit, the duplicate check or the models say, it
    /// holds the robot at once (the planner source, not the next check) and ends the request in
    /// flight; no model is asked.
    @Test func when_stop_is_given_expect_the_robot_held_at_once_and_the_request_in_flight_cancelled_without_any_model() async throws {
        let peer = try await ModelPeer.start(["hang": ["mode": "hang"]])
        let p = try PlanningLoop(router: PlanningLoop.model(peer, "hang", name: "hang", goalKinds: ["patrol"]))
        p.run(for: 1_000_000_000)
        let id = try await p.give("go to 3,2")
        p.run(for: 300_000_000)
        #expect(p.execution.state == .running && p.loop.snapshot.linearVelocity > 0.1)
        // Within the rate limit (1 s): another goal is refused, `stop` is not.
        #expect(p.service.submit("go to 1,1") == .refused("rate_limited"))
        let asked = p.service.health().map(\.requests)
        guard case .accepted(let stop) = p.service.submit("  Stop ") else { Issue.record("stop refused"); return }
        p.run(for: 20_000_000)  // the planner source's dispatch: within the executor's period
        #expect(p.execution.goalID == stop && p.execution.planGoalID == stop && p.execution.cancelled == 1)
        p.run(for: 500_000_000)  // braking from 0.4 m/s at the wheels' acceleration limit
        #expect(abs(p.loop.snapshot.linearVelocity) < 0.01)
        let held = p.loop.snapshot
        p.run(for: 3_000_000_000)
        #expect(p.loop.snapshot.odometer - held.odometer < 0.05, "drove \(p.loop.snapshot.odometer - held.odometer) m after stop")
        #expect(p.service.health().map(\.requests) == asked && peer.requests.isEmpty)
        #expect(await eventually { p.progress(id, "cancelled")?.reason == "new_goal" && p.progress(stop, "completed") != nil })

        // A request in flight (a model thinking about a patrol): `stop`, again within the rate limit, ends it.
        p.run(for: 1_100_000_000)
        guard case .accepted(let patrol) = p.service.submit("patrol the corners") else { Issue.record("goal refused"); return }
        #expect(await eventually { peer.requests.count == 1 })
        #expect(p.service.submit("STOP") == .accepted(patrol + 1))
        #expect(await eventually(seconds: 5) { peer.closed(1) })
        try await Task.sleep(for: .milliseconds(200))
        #expect(!p.journal.contains { $0.goalId == patrol && ($0.kind == .plan || $0.kind == .verdict) })
    }

    /// A stop said another way — any case, blanks and punctuation around it, or `halt`, `abort` —
    /// is a stop: within the rate limit, without a model, held at once. A sentence that merely
    /// contains the word is a goal like any other: rate-limited, planned. `estop` and `e-stop` are
    /// not stop words: a goal only holds the planner's policies and latches nothing, so it must not
    /// look like an emergency stop (that is the `estop` topic's, or the MCP `remote_stop` tool's).
    @Test func stop_in_any_case_with_punctuation_or_a_synonym_is_a_stop_and_a_sentence_with_stop_is_not() async throws {
        let peer = try await ModelPeer.start(["hang": ["mode": "hang"]])
        let p = try PlanningLoop(router: PlanningLoop.model(peer, "hang", name: "hang"))
        p.run(for: 1_000_000_000)
        guard case .accepted = p.service.submit("go to 1,1") else { Issue.record("goal refused"); return }
        #expect(await eventually { peer.requests.count == 1 })
        // All within the first goal's rate limit (1 s): each one is taken and holds at once.
        for form in ["Stop.", "stop!", " STOP ", "halt", "Abort!", "\"halt\"", "«stop»", "stop…", "¡STOP!", "\tstop\n"] {
            guard case .accepted(let id) = p.service.submit(form) else { Issue.record("\(form) was not a stop"); continue }
            p.run(for: 20_000_000)
            #expect(p.execution.goalID == id && p.execution.planGoalID == id, "\(form)")
        }
        #expect(peer.requests.count == 1)
        // Containing the word is not enough: the rate limit, then a model.
        for sentence in ["stop by the door", "please stop", "stop stop", "e stop", "stopping", "estop", "E-Stop!"] {
            #expect(p.service.submit(sentence) == .refused("rate_limited"), "\(sentence)")
        }
        p.run(for: 1_100_000_000)
        guard case .accepted = p.service.submit("stop by the door") else { Issue.record("goal refused"); return }
        #expect(await eventually { peer.requests.count == 2 })
        #expect(StopGoal.isStop("halt!") && !StopGoal.isStop("e-stop!") && !StopGoal.isStop("estop")
                && !StopGoal.isStop("") && !StopGoal.isStop("!!!"))
    }

    /// A plain-text goal is a redelivery only of the last goal taken: the same words again after
    /// another goal are a new goal; `stop` is never a duplicate.
    @Test func a_plain_text_goal_is_a_redelivery_only_of_the_last_goal_taken() async throws {
        let p = try PlanningLoop(edit: {
            $0 = $0.replacingOccurrences(of: "planner:\n  max_steps: 6\n", with: "planner:\n  max_steps: 6\n  goals: {users: [operator]}\n")
        })
        p.run(for: 1_000_000_000)
        func arrive(_ text: String) -> PlanTopicPayload? {
            p.service.take(GoalArrival(user: "operator", text: text, id: nil, retained: false, arrival: p.now))
            return p.journal.last { $0.kind == .goal }
        }
        #expect(arrive("go to -3,0.5")?.outcome == "accepted")
        p.run(for: 1_100_000_000)
        #expect(arrive("go to -3,1")?.outcome == "accepted")
        p.run(for: 1_100_000_000)
        #expect(arrive("go to -3,0.5")?.outcome == "accepted")  // within 10 s of the first, but another goal came between
        #expect(arrive("go to -3,0.5")?.reason == "duplicate")
        #expect(arrive("stop")?.outcome == "accepted")
        #expect(arrive("stop")?.outcome == "accepted")
        #expect(p.journal.filter { $0.kind == .goal && $0.outcome == "accepted" }.map(\.goalId) == [1, 2, 3, 4, 5])
    }

    /// The `planner` source's queue (8 places) full when a new goal comes: its message is refused,
    /// yet the old plan stops at the executor's next check (the newest goal is an atomic beside the
    /// messages) and motion holds until the new goal's plan — here never (a model that hangs).
    @Test func when_the_dispatch_queue_refuses_a_new_goals_message_expect_the_old_plan_cancelled_and_motion_held() async throws {
        let peer = try await ModelPeer.start(["hang": ["mode": "hang"]])
        let p = try PlanningLoop(router: PlanningLoop.model(peer, "hang", name: "hang", goalKinds: ["goto"]))
        p.run(for: 1_000_000_000)
        let old = try await p.give("patrol the corners")
        p.run(for: 2_000_000_000)
        #expect(p.execution.state == .running && p.loop.snapshot.linearVelocity > 0.1)
        let planning = try #require(p.loop.runtime.planning)
        // The dispatch thread takes nothing meanwhile (lockstep): 8 messages fill the queue.
        for _ in 0..<8 { #expect(planning.post(PlannerMessage(.goal(0)))) }
        #expect(!planning.post(PlannerMessage(.goal(0))))
        guard case .accepted(let new) = p.service.submit("go to -3,1") else { Issue.record("goal refused"); return }
        p.run(for: 100_000_000)  // two of the executor's checks
        #expect(p.execution.goalID == new && p.execution.state == .cancelled && p.execution.reason == .newGoal)
        let held = p.loop.snapshot
        p.run(for: 3_000_000_000)
        #expect(p.loop.snapshot.odometer - held.odometer < 0.05, "drove \(p.loop.snapshot.odometer - held.odometer) m on the old plan")
        #expect(p.loop.status.commandedBy[0] == PlanningLoop.route)
        #expect(await eventually { p.progress(old, "cancelled")?.reason == "new_goal" })
    }

    @Test func when_a_plan_cannot_be_placed_expect_the_reasons_and_no_motion_from_it() async throws {
        let p = try PlanningLoop()
        p.run(for: 1_000_000_000)
        let id = try await p.give("go to 100,100")
        let failed = try #require(p.journal.first { $0.kind == .planningFailed && $0.goalId == id })
        #expect(failed.attempts?.first?.outcome == "rejected")
        #expect(p.journal.contains { $0.kind == .verdict && $0.goalId == id && $0.accepted == false })
        p.run(for: 200_000_000)
        #expect(p.execution.planGoalID == 0 && p.loop.status.commandedBy[0] != PlanningLoop.route)
        #expect(await eventually { p.journal.contains { $0.kind == .progress && $0.event == "planning_failed" && $0.goalId == id } })
    }
}

/// examples/iot-rig-sim.yaml in lockstep: `set_temperature` and `hold` executed by its thermostat.
@Suite("Plan execution: the rig's thermostat")
struct RigPlanExecutionTests {
    @Test func when_the_rig_is_told_to_set_then_hold_a_temperature_expect_the_chamber_to_follow_and_the_setpoint_back_after() async throws {
        let loop = try ConfiguredRigLoop(try Examples.configuration("iot-rig-sim.yaml"))
        let service = try PlannerService(runtime: loop.runtime, scheduler: loop.scheduler)
        service.start()
        defer { service.stop() }
        loop.run(until: 5_000_000_000)
        guard case .accepted(let id) = service.submit("set temperature 25 then hold 30 °C for 2 minutes") else {
            Issue.record("goal refused: \(service.journal.all.map(\.line))")
            return
        }
        #expect(await eventually { service.journal.all.contains { $0.kind == .plan && $0.goalId == id } }, "\(service.journal.all.map(\.line))")
        let planning = try #require(loop.runtime.planning)
        #expect(await eventually {
            loop.run(until: loop.rig.time + 100_000_000)
            return planning.status.planGoalID == id
        })
        let start = loop.rig.time
        // Step 1: within the band (1 °C) of 25 °C; then 2 minutes at 30 °C.
        #expect(loop.run(for: 300_000_000_000) { planning.status.step == 1 })
        let held = loop.rig.time
        #expect(loop.run(for: 400_000_000_000) { planning.status.state == .completed })
        let end = loop.rig.time
        #expect(Double(end - held) / 1e9 >= 119 && Double(end - held) / 1e9 < 125)
        let during = loop.truth.withLock { $0 }.filter { $0.t > held + 60_000_000_000 && $0.t <= end }.map(\.celsius)
        #expect((during.min() ?? 0) > 28.5 && (during.max() ?? 99) < 32, "\(during.min() ?? .nan)…\(during.max() ?? .nan)")
        // Then the setpoint before the hold again (25 °C, not the configuration's 35 °C).
        loop.run(until: end + 600_000_000_000)
        let after = loop.truth.withLock { $0 }.filter { $0.t > end + 400_000_000_000 }.map(\.celsius)
        #expect((after.min() ?? 0) > 23.5 && (after.max() ?? 99) < 26.5, "\(after.min() ?? .nan)…\(after.max() ?? .nan)")
        #expect(loop.truth.withLock { $0 }.filter { $0.t > start && $0.t < held }.allSatisfy { $0.celsius < 27 })
        #expect(!loop.status.latched)
        #expect(await eventually { service.journal.all.contains { $0.goalId == id && $0.event == "completed" } })
    }
}

/// The executor on its own (no runtime): a step's preconditions are judged again when it starts.
@Suite("Plan execution: preconditions at each step's start")
struct PlanStepPreconditionTests {
    /// A policy that only counts what it is told.
    struct Recorder: ControlPolicy {
        var origin: CommandOrigin { .planner }
        var routes = 0
        mutating func step(_ world: World, now: Instant) -> ChannelValues? { nil }
        mutating func direct(_ directive: PlanDirective) { if case .route = directive { routes += 1 } }
    }

    @Test func a_later_steps_precondition_that_no_longer_holds_fails_the_plan_when_the_step_starts() throws {
        var executor = PlanExecutor(events: OverwritingRing(capacity: 64), cell: LatestValue(PlanExecutionStatus()), motionSlots: [0],
                                    retired: RetiredPlans())
        var sources: [any ControlPolicy] = [Recorder()]
        let plan = ExecutablePlan(goalID: 1, steps: [
            ExecutableStep(action: .wait(seconds: 1), slot: nil, ability: 3, timeout: nil, minProgress: nil, window: nil, serial: 1),
            ExecutableStep(action: .route(points: [(1, 1)], speed: nil), slot: 0, ability: 0, timeout: .seconds(60), minProgress: nil,
                           window: nil, serial: 2, preconditions: [.notLatched, .insideWorkspace]),
        ], latchEpoch: 0)
        let start = Instant(nanoseconds: 1_000_000_000)
        executor.newGoal(1, at: start, sources: &sources)
        executor.observe(PlanConditions())
        executor.install(plan, latched: false, epoch: 0, at: start, sources: &sources)
        #expect(executor.status.state == .running && executor.status.step == 0)
        // The wait is over; the robot has left the workspace meanwhile.
        executor.observe(PlanConditions(clear: true, poseKnown: true, insideWorkspace: false))
        executor.tick(latched: false, epoch: 0, at: start + .milliseconds(1_050), sources: &sources)
        #expect(executor.status.state == .failed && executor.status.reason == .preconditionFailed && executor.status.step == 1)
        #expect((sources[0] as? Recorder)?.routes == 0)
        // The same plan where the conditions hold: the route is given.
        var again = PlanExecutor(events: OverwritingRing(capacity: 64), cell: LatestValue(PlanExecutionStatus()), motionSlots: [0],
                                 retired: RetiredPlans())
        again.newGoal(1, at: start, sources: &sources)
        again.observe(PlanConditions())
        again.install(plan, latched: false, epoch: 0, at: start, sources: &sources)
        again.tick(latched: false, epoch: 0, at: start + .milliseconds(1_050), sources: &sources)
        #expect(again.status.state == .running && again.status.step == 1 && (sources[0] as? Recorder)?.routes == 1)
    }
}

/// What the planner is told while a person has the sticks, and what the log shows of what others say.
@Suite("Planning: the world's mode under teleop, and log lines")
struct PlanWorldAndLogTests {
    @Test func while_teleop_has_the_wheels_expect_the_world_mode_teleop() async throws {
        let p = try PlanningLoop(gamepad: [
            .init(at: 2_000_000_000, [.press("BTN_TL")]),
            .init(at: 2_100_000_000, [.axis("ABS_Y", -20000)]),
        ])
        p.run(for: 1_500_000_000)
        #expect(p.service.capture().mode == "running")
        p.loop.run(until: 2_500_000_000)
        #expect(p.loop.status.commandedBy[0] == 0)  // teleop, the example's first policy
        #expect(p.service.capture().mode == "teleop")
    }

    /// `line` itself is escaped, not only the log's copy: whoever prints a `plan` message gets
    /// one line with nothing a terminal acts on (review Low 12).
    @Test func every_plan_messages_line_is_escaped_whoever_prints_it() {
        let hostile = "go\n\u{1B}[2Jplanner: goal 9: plan completed\u{202E}\r\u{7}"
        var goal = PlanTopicPayload(kind: .goal)
        goal.goalId = 1; goal.outcome = "accepted"; goal.user = hostile; goal.text = hostile
        var refused = PlanTopicPayload(kind: .goal)
        refused.outcome = "refused"; refused.source = hostile; refused.text = hostile; refused.reason = hostile
        var verdict = PlanTopicPayload(kind: .verdict)
        verdict.goalId = 1; verdict.backend = hostile; verdict.accepted = false
        verdict.issues = [.init(code: "unknown_ability", path: hostile, message: hostile)]
        var plan = PlanTopicPayload(kind: .plan)
        plan.goalId = 1; plan.backend = hostile; plan.steps = [.init(ability: hostile, arguments: ["x": .string(hostile)])]
        var failed = PlanTopicPayload(kind: .planningFailed)
        failed.goalId = 1; failed.reason = hostile
        var replan = PlanTopicPayload(kind: .replan)
        replan.goalId = 1; replan.reason = hostile
        var progress = PlanTopicPayload(kind: .progress)
        progress.goalId = 1; progress.event = hostile; progress.step = 0; progress.stepCount = 1; progress.ability = hostile; progress.reason = hostile
        for entry in [goal, refused, verdict, plan, failed, replan, progress] {
            let line = entry.line
            #expect(!line.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) || $0.value == 0x202E }, "\(line)")
            #expect(line.contains(#"go\n\u{1B}[2Jplanner"#), "\(line)")
            #expect(entry.printableLine == line)
        }
    }

    @Test func what_goals_and_user_names_say_is_escaped_in_the_log() async throws {
        let loop = try ConfiguredRoverLoop(try Examples.configuration("rover-sim.yaml") {
            $0 = $0.replacingOccurrences(of: "planner:\n  max_steps: 6\n", with: "planner:\n  max_steps: 6\n  goals: {users: [operator]}\n")
        })
        let lines = Mutex<[String]>([])
        let service = try PlannerService(runtime: loop.runtime, scheduler: loop.scheduler, log: { line in lines.withLock { $0.append(line) } })
        service.start()
        defer { service.stop() }
        loop.run(until: 1_000_000_000)
        service.take(GoalArrival(user: "operator", text: "go to -3,1\nplanner: goal 9: plan completed", id: nil, retained: false, arrival: 0))
        service.take(GoalArrival(user: "mallory\u{1B}[2J\u{202E}", text: "go to 0,0", id: nil, retained: false, arrival: 0))
        let logged = lines.withLock { $0 }
        #expect(logged.count >= 2 && logged.allSatisfy { !$0.contains("\n") && !$0.contains("\u{1B}") && !$0.contains("\u{202E}") }, "\(logged)")
        #expect(logged.contains { $0.contains(#"go to -3,1\nplanner: goal 9"#) }, "\(logged)")
        #expect(logged.contains { $0.contains(#"mallory\u{1B}[2J\u{202E}"#) && $0.contains("not_authorised") }, "\(logged)")
    }
}

/// A plan cut short leaves no setpoint behind: a remote stop during `set_temperature`, then the
/// reset, and the thermostat is back on its configured setpoint.
@Suite("Plan execution: the rig's setpoint after a cancelled plan")
struct RigPlanCancellationTests {
    @Test func when_a_stop_cancels_a_plans_setpoint_expect_the_configured_setpoint_back_after_the_reset() async throws {
        let loop = try ConfiguredRigLoop(try Examples.configuration("iot-rig-sim.yaml"))
        let service = try PlannerService(runtime: loop.runtime, scheduler: loop.scheduler)
        service.start()
        defer { service.stop() }
        loop.run(until: 5_000_000_000)
        guard case .accepted(let id) = service.submit("set temperature 50") else {
            Issue.record("goal refused: \(service.journal.all.map(\.line))")
            return
        }
        #expect(await eventually { service.journal.all.contains { $0.kind == .plan && $0.goalId == id } }, "\(service.journal.all.map(\.line))")
        let planning = try #require(loop.runtime.planning)
        #expect(await eventually {
            loop.run(until: loop.rig.time + 100_000_000)
            return planning.status.planGoalID == id
        })
        loop.run(until: loop.rig.time + 10_000_000_000)
        #expect(planning.status.state == .running && planning.status.setpoint == 50)
        loop.publish(ConfiguredRigTests.stop, "stop")
        loop.run(until: loop.rig.time + 3_000_000_000)
        #expect(loop.status.latched && planning.status.state == .cancelled && planning.status.reason == .latched)
        loop.publish(ConfiguredRigTests.reset, "reset \(loop.status.latchSequence)")
        #expect(loop.run(for: 5_000_000_000) { !loop.status.latched })
        let released = loop.rig.time
        loop.run(until: released + 1_200_000_000_000)
        #expect(planning.status.setpoint.isNaN)
        // The chamber settles on the configured 35 °C (band 1 °C), not on the plan's 50 °C.
        let settled = loop.truth.withLock { $0 }.filter { $0.t > released + 900_000_000_000 }.map(\.celsius)
        #expect((settled.min() ?? 0) > 33 && (settled.max() ?? 99) < 37.5, "\(settled.min() ?? .nan)…\(settled.max() ?? .nan)")
    }
}

/// scripts/peers/openai_peer.py on a free loopback port (standard library only), each model name a
/// scripted behaviour; it prints every request it receives.
final class ModelPeer: Sendable {
    static let script = Examples.folder.deletingLastPathComponent().appendingPathComponent("scripts/peers/openai_peer.py").path
    let process: Subprocess
    let baseURL: URL

    private init(process: Subprocess, baseURL: URL) {
        self.process = process
        self.baseURL = baseURL
    }

    static func start(_ models: [String: Any]) async throws -> ModelPeer {
        let json = String(decoding: try JSONSerialization.data(withJSONObject: models), as: UTF8.self)
        let process = try Subprocess("/usr/bin/python3", [script, "--models", json, "--lifetime", "240"])
        _ = await eventually { process.stdout.contains("listening ") || !process.process.isRunning }
        guard let line = process.stdout.split(separator: "\n").first(where: { $0.hasPrefix("listening ") }),
              let port = Int(line.dropFirst("listening ".count).trimmingCharacters(in: .whitespaces)),
              let url = URL(string: "http://127.0.0.1:\(port)/v1")
        else {
            process.signal(SIGKILL)
            throw KindError("the model peer did not start: \(process.stderr)")
        }
        return ModelPeer(process: process, baseURL: url)
    }

    deinit { process.signal(SIGKILL) }

    var requests: [[String: Any]] { process.jsonLines.filter { $0["event"] as? String == "request" } }

    /// Request `n` (from 1) ended with the client gone.
    func closed(_ n: Int) -> Bool {
        process.jsonLines.contains { $0["event"] as? String == "ended" && $0["n"] as? Int == n && $0["client_closed"] as? Bool == true }
    }
}
