import Foundation
import Planner
import PlannerBackends
import RobotConfig
import RobotSim
import Synchronization
import Testing
import TestSupport
@testable import AIOSRobot

/// A back end that answers (with the built-in planner's plan) only once its gate is open, and
/// counts the questions per goal: the test decides when an answer arrives.
final class AnswerGate: Sendable {
    let isOpen = Atomic<Bool>(false)
    private let goals = Mutex<[String]>([])

    func asked(_ goal: String) -> Int { goals.withLock { $0.filter { $0 == goal }.count } }
    fileprivate func note(_ goal: String) { goals.withLock { $0.append(goal) } }
}

struct GatedBackend: PlanBackend {
    let inner: BuiltinPlanBackend
    let gate: AnswerGate
    var name: String { "gated" }

    func plan(_ request: PlannerBackends.PlanRequest, deadline: Duration) async throws -> PlanAnswer {
        gate.note(request.goal)
        while !gate.isOpen.load(ordering: .acquiring) { try await Task.sleep(for: .milliseconds(5)) }
        let answer = try await inner.plan(request, deadline: deadline)
        return PlanAnswer(json: answer.json, backend: name, latency: answer.latency)
    }
}

/// A stop (and its reset) between a goal being taken and its request being looked after: the goal
/// is cancelled by that stop, said once, and never planned again with the latch epoch of before it
/// (review Low 10). The planner service runs without its watcher task: the test makes the
/// watcher's look itself, at the moment it chooses, so the interleaving is the same every run.
@Suite("Planner service: a stop between a goal's start and its request", .serialized)
struct PlannerEpochTests {
    /// The e-stop pressed and released and the reset given at 2.512–2.525 s.
    static let stopAndReset: [SimulatedGamepad.Step] = [
        .init(at: 2_512_000_000, [.press("BTN_EAST")]),
        .init(at: 2_516_000_000, [.release("BTN_EAST")]),
        .init(at: 2_521_000_000, [.press("BTN_START")]),
        .init(at: 2_525_000_000, [.release("BTN_START")]),
    ]

    static func service(_ gate: AnswerGate) throws -> (ConfiguredRoverLoop, PlannerService) {
        let loop = try ConfiguredRoverLoop(try Examples.configuration("rover-sim.yaml"), gamepad: stopAndReset)
        let context = try PlanningContext(configuration: loop.runtime.configuration)
        let router = PlanRouter(routes: [PlanRoute(GatedBackend(inner: BuiltinPlanBackend(context: context), gate: gate), deadline: .seconds(20))])
        return (loop, try PlannerService(runtime: loop.runtime, scheduler: loop.scheduler, router: router))
    }

    /// The watcher looks after the stop but before the new goal's task is stored: it has no
    /// request of that goal to cancel (it used to cancel the previous goal's, finished long ago,
    /// and let this one run on with the old epoch, planned three times over). Storing looks at the
    /// epoch again: the request is cancelled there, while its question is still unanswered — the
    /// hook waits until the back end has it, so the request's own look at the epoch (before it
    /// asks) cannot be what ends it.
    @Test func when_the_watcher_sees_a_stop_before_the_request_is_stored_expect_it_cancelled_and_never_planned_again() async throws {
        let gate = AnswerGate()
        let (loop, service) = try Self.service(gate)
        defer { service.stop() }
        loop.run(until: 1_000_000_000)
        // A first goal, planned: its finished request is the one the service kept last.
        gate.isOpen.store(true, ordering: .releasing)
        guard case .accepted(let first) = service.submit("go to -2.5,0.5") else { Issue.record("goal refused"); return }
        #expect(await eventually { service.journal.all.contains { $0.goalId == first && $0.kind == .plan } }, "\(service.journal.all.map(\.line))")
        gate.isOpen.store(false, ordering: .releasing)
        loop.run(until: 2_500_000_000)
        let epoch = loop.runtime.latchEpoch
        service.beforeStoringRequest.withLock {
            $0 = GoalHook { _ in
                // The request is with the back end (waiting at the gate)...
                let deadline = ContinuousClock.now + .seconds(10)
                while gate.asked("go to -2,1") == 0 && ContinuousClock.now < deadline { usleep(1000) }
                loop.run(until: 2_540_000_000)  // ...when the stop and its reset come,
                service.watch()                 // and the watcher looks, all before the task is stored.
            }
        }
        // On a thread of its own: the hook blocks, and the request needs the cooperative pool.
        let decision = await withCheckedContinuation { done in
            Thread { done.resume(returning: service.submit("go to -2,1")) }.start()
        }
        guard case .accepted(let id) = decision else { Issue.record("goal refused: \(decision)"); return }
        #expect(gate.asked("go to -2,1") == 1)
        service.beforeStoringRequest.withLock { $0 = nil }
        #expect(loop.runtime.latchEpoch >= epoch + 2 && !loop.status.latched && loop.status.resets == 1)
        gate.isOpen.store(true, ordering: .releasing)
        #expect(await eventually { service.journal.all.contains { $0.goalId == id && $0.kind == .planningFailed } })
        try await Task.sleep(for: .milliseconds(300))
        let entries = service.journal.all.filter { $0.goalId == id }
        // Cancelled before any answer was judged: no verdict, no replan, no plan.
        #expect(!entries.contains { $0.kind == .verdict || $0.kind == .replan || $0.kind == .plan }, "\(entries.map(\.line))")
        #expect(entries.filter { $0.kind == .planningFailed }.map(\.reason) == [PlannerService.latchCancelReason], "\(entries.map(\.line))")
        #expect(gate.asked("go to -2,1") <= 1)
    }

    /// A quick back end (the built-in planner, a call's validator) can end its request before the
    /// service stores the request's task. That request is still the goal's: left alone, not
    /// cancelled — cancelled, its plan was recorded on `plan` and never reached the executor, with
    /// nothing said (seen under load in MCPVocabularyTests: a goto accepted and never started).
    @Test func when_the_request_ends_before_its_task_is_stored_expect_its_plan_started() async throws {
        #expect(PlannerService.afterSubmit(goalIsCurrent: true, inFlight: false, epochMoved: false) == .leave)
        #expect(PlannerService.afterSubmit(goalIsCurrent: true, inFlight: true, epochMoved: false) == .store)
        #expect(PlannerService.afterSubmit(goalIsCurrent: false, inFlight: false, epochMoved: false) == .cancel)
        #expect(PlannerService.afterSubmit(goalIsCurrent: true, inFlight: false, epochMoved: true) == .cancel)
        #expect(PlannerService.afterSubmit(goalIsCurrent: true, inFlight: true, epochMoved: true) == .cancel)

        let gate = AnswerGate()
        gate.isOpen.store(true, ordering: .releasing)
        let (loop, service) = try Self.service(gate)
        defer { service.stop() }
        loop.run(until: 1_000_000_000)
        service.beforeStoringRequest.withLock {
            $0 = GoalHook { id in
                // The request ends (its plan recorded) before its task is stored.
                let deadline = ContinuousClock.now + .seconds(10)
                while !service.journal.all.contains(where: { $0.goalId == id && $0.kind == .plan }) && ContinuousClock.now < deadline { usleep(1000) }
                usleep(20_000)
            }
        }
        let decision = await withCheckedContinuation { done in
            Thread { done.resume(returning: service.submit("go to -2.5,0.5")) }.start()
        }
        service.beforeStoringRequest.withLock { $0 = nil }
        guard case .accepted(let id) = decision else { Issue.record("goal refused: \(decision)"); return }
        #expect(service.journal.all.contains { $0.goalId == id && $0.kind == .plan })
        // The plan reaches the executor: it takes it.
        var time = loop.rover.time
        let started = await eventually(seconds: 20) {
            time += 50_000_000
            loop.run(until: time)
            return loop.runtime.planning?.status.planGoalID == id
        }
        #expect(started, "\(service.journal.all.map(\.line))")
    }

    /// No watcher looks at all while the model thinks: its answer comes back stale for the latch
    /// epoch. That is the end of the goal — it is not planned again from the state now with the
    /// epoch of before the stop (which every later answer would fail the same way).
    @Test func when_an_answer_is_stale_for_the_latch_epoch_expect_the_goal_ended_by_the_stop_not_replanned() async throws {
        let gate = AnswerGate()
        let (loop, service) = try Self.service(gate)
        defer { service.stop() }
        loop.run(until: 2_500_000_000)
        guard case .accepted(let id) = service.submit("go to -2,1") else { Issue.record("goal refused"); return }
        #expect(await eventually { gate.asked("go to -2,1") == 1 })
        loop.run(until: 2_540_000_000)  // the stop and its reset while the model thinks
        #expect(!loop.status.latched && loop.status.resets == 1)
        gate.isOpen.store(true, ordering: .releasing)
        #expect(await eventually { service.journal.all.contains { $0.goalId == id && $0.kind == .planningFailed } }, "\(service.journal.all.map(\.line))")
        try await Task.sleep(for: .milliseconds(300))
        let entries = service.journal.all.filter { $0.goalId == id }
        #expect(!entries.contains { $0.kind == .replan || $0.kind == .plan }, "\(entries.map(\.line))")
        #expect(entries.filter { $0.kind == .planningFailed }.map(\.reason) == [PlannerService.latchCancelReason], "\(entries.map(\.line))")
        #expect(gate.asked("go to -2,1") == 1)
    }
}
