import Foundation
import Planner
import PlannerBackends
import RobotConfig
import Synchronization
import Telemetry
import Testing
import TestSupport
@testable import AIOSRobot

/// A back end that records each question (its goal and how much feedback it carried) and answers
/// the built-in planner's plan once its gate is open; `hangs`: never answers, until cancelled. Its
/// teardowns are the test's: `heldTeardowns` pending until set to 0.
final class QuestionRecordingBackend: PlanBackend {
    let inner: BuiltinPlanBackend
    let isOpen = Atomic<Bool>(false)
    let hangs: Bool
    let heldTeardowns = Atomic<Int>(0)
    private let questions = Mutex<[(goal: String, feedback: Int, at: ContinuousClock.Instant)]>([])
    var name: String { "recording" }

    init(context: PlanningContext, hangs: Bool = false) {
        inner = BuiltinPlanBackend(context: context)
        self.hangs = hangs
    }

    func asked(_ goal: String) -> Int { questions.withLock { $0.filter { $0.goal == goal }.count } }
    var withFeedback: Int { questions.withLock { $0.filter { $0.feedback > 0 }.count } }
    func firstAsked(_ goal: String) -> ContinuousClock.Instant? { questions.withLock { $0.first { $0.goal == goal }?.at } }

    var pendingTeardowns: Int { heldTeardowns.load(ordering: .relaxed) }

    func teardownsFinished(within bound: Duration) async -> Bool {
        let end = ContinuousClock.now + bound
        while heldTeardowns.load(ordering: .relaxed) > 0 {
            if ContinuousClock.now >= end { return false }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return true
    }

    func plan(_ request: PlannerBackends.PlanRequest, deadline: Duration) async throws -> PlanAnswer {
        questions.withLock { $0.append((request.goal, request.feedback.count, ContinuousClock.now)) }
        if hangs {
            try await Task.sleep(for: .seconds(60))
            throw PlanBackendError.other("woke up")
        }
        while !isOpen.load(ordering: .acquiring) { try await Task.sleep(for: .milliseconds(5)) }
        let answer = try await inner.plan(PlannerBackends.PlanRequest(systemPrompt: request.systemPrompt, goal: request.goal,
                                                                      data: request.data, schema: request.schema),
                                          deadline: deadline)
        return PlanAnswer(json: answer.json, backend: name, latency: answer.latency)
    }
}

@Suite("Planner service: stale answers, the request slot and the health figures", .serialized)
struct PlannerSlotAndStaleTests {
    static func service(_ make: (PlanningContext) -> QuestionRecordingBackend,
                        adjust: (inout RobotConfiguration) -> Void = { _ in }) throws -> (ConfiguredRoverLoop, PlannerService, QuestionRecordingBackend) {
        var configuration = try Examples.configuration("rover-sim.yaml")
        // Goals one after the other on a clock that only the test advances.
        configuration.planner.goals.minIntervalMs = 0
        adjust(&configuration)
        let loop = try ConfiguredRoverLoop(configuration)
        let backend = make(try PlanningContext(configuration: loop.runtime.configuration))
        let router = PlanRouter(routes: [PlanRoute(backend, deadline: .seconds(20))])
        return (loop, try PlannerService(runtime: loop.runtime, scheduler: loop.scheduler, router: router), backend)
    }

    /// The model's answer comes back after `max_plan_age_s` (the world's clock moved on while it
    /// thought): stale. docs/planner.md: a stale plan is never corrected — the request asks again
    /// from the state now (`replan`). Before, the router sent it back for a "correction" (twice,
    /// each as stale as the first) before the replan.
    @Test func when_an_answer_is_stale_expect_a_new_question_from_the_state_now_and_no_correction() async throws {
        let (loop, service, backend) = try Self.service({ QuestionRecordingBackend(context: $0) }) { $0.planner.maxPlanAgeS = 0.5 }
        defer { service.stop() }
        loop.run(until: 1_000_000_000)
        guard case .accepted(let id) = service.submit("go to -2,1") else { Issue.record("goal refused"); return }
        #expect(await eventually { backend.asked("go to -2,1") == 1 })
        loop.run(until: 2_000_000_000)  // a second passes while the model thinks
        backend.isOpen.store(true, ordering: .releasing)
        #expect(await eventually { service.journal.all.contains { $0.goalId == id && $0.kind == .plan } }, "\(service.journal.all.map(\.line))")
        let entries = service.journal.all.filter { $0.goalId == id }
        #expect(backend.withFeedback == 0, "a stale answer was sent back for a correction")
        #expect(backend.asked("go to -2,1") == 2)
        #expect(entries.filter { $0.kind == .replan }.count == 1, "\(entries.map(\.line))")
        let verdicts = entries.filter { $0.kind == .verdict }
        #expect(verdicts.map(\.accepted) == [false, true] && verdicts.map(\.round) == [0, 0], "\(entries.map(\.line))")
        #expect(verdicts.first?.issues?.map(\.code) == ["stale_age"])
    }

    /// A new goal cancels the request in flight; the request returns at once, but its back end's
    /// connection may still be torn down (a flood). The slot (`max_requests_in_flight`: 1) is held
    /// until that teardown ran: the new goal's question waits for it. Past the bound (1 s) the slot
    /// is given back anyway, the overrun counted, and the back end skipped while its teardown is
    /// pending. The `plan` topic's health carries these figures, valid against its schema.
    @Test func when_a_cancelled_requests_teardown_is_pending_expect_the_next_question_to_wait_for_it() async throws {
        let (loop, service, backend) = try Self.service { QuestionRecordingBackend(context: $0, hangs: true) }
        defer { service.stop() }
        loop.run(until: 1_000_000_000)
        guard case .accepted = service.submit("go to -2,1") else { Issue.record("goal refused"); return }
        #expect(await eventually { backend.asked("go to -2,1") == 1 })
        // Its connection's teardown pending once it is cancelled, until the test lets it end.
        backend.heldTeardowns.store(1, ordering: .relaxed)
        guard case .accepted = service.submit("go to -2.5,0.5") else { Issue.record("goal refused"); return }
        try await Task.sleep(for: .milliseconds(400))
        #expect(backend.asked("go to -2.5,0.5") == 0, "a new question went out beside the old connection's teardown")
        let released = ContinuousClock.now
        backend.heldTeardowns.store(0, ordering: .relaxed)
        #expect(await eventually { backend.asked("go to -2.5,0.5") == 1 })
        if let asked = backend.firstAsked("go to -2.5,0.5") { #expect(asked >= released) }

        // A teardown that never ends within the bound: the slot comes back after it, counted, and
        // the back end is skipped while the teardown is pending.
        backend.heldTeardowns.store(1, ordering: .relaxed)
        let submitted = ContinuousClock.now
        guard case .accepted(let third) = service.submit("go to -3,0.5") else { Issue.record("goal refused"); return }
        #expect(await eventually(seconds: 15) { service.journal.all.contains { $0.goalId == third && $0.kind == .planningFailed } })
        #expect(ContinuousClock.now - submitted >= PlannerService.teardownBound - .milliseconds(50))
        #expect(backend.asked("go to -3,0.5") == 0)
        let health = service.health()[0]
        #expect(health.teardownsOverdue == 1 && health.skippedByReason["teardowns_pending"] == 1 && health.cancelled == 2)
        #expect(health.pendingTeardowns == 1)

        // The health message: the router's figures, named as the schema says, valid against it.
        let message = try #require(service.journal.all.last { $0.kind == .health })
        let figures = try #require(message.backends?.first)
        #expect(figures.cancelled == 2 && figures.teardownsOverdue == 1 && figures.pendingTeardowns == 1)
        #expect(figures.skippedByReason == ["teardowns_pending": 1])
        let text = String(decoding: TelemetryJSON.encode(message), as: UTF8.self)
        for key in [#""cancelled":2"#, #""unanswered":0"#, #""configuration_failures":0"#, #""skipped_by_reason":{"teardowns_pending":1}"#,
                    #""pending_teardowns":1"#, #""teardowns_overdue":1"#, #""failures_by_kind":{}"#, #""unanswered_time_us":"#] {
            #expect(text.contains(key), "\(key) not in \(text)")
        }
        #expect(try TelemetryJSON.decode(PlanTopicPayload.self, from: Array(text.utf8)) == message)
        // Stamped with this run, as `state` names it (the schema requires the three keys).
        #expect(message.run == RunIdentity.current() && text.contains(#""pid":\#(getpid())"#) && text.contains(#""boot_id":""#) && text.contains(#""run_id":""#), "\(text)")
        try SchemaCheck.validate([text], schema: "plan")
        backend.heldTeardowns.store(0, ordering: .relaxed)
    }
}
