import Foundation
import Synchronization
import Testing
@testable import PlannerBackends

/// A back end whose teardowns the test holds: `held` of them pending until `finish()`.
final class HeldTeardownBackend: PlanBackend {
    let name: String
    let held = Atomic<Int>(0)
    let asked = Atomic<Int>(0)
    init(_ name: String) { self.name = name }
    var pendingTeardowns: Int { held.load(ordering: .relaxed) }

    func plan(_ request: PlanRequest, deadline: Duration) async throws -> PlanAnswer {
        asked.add(1, ordering: .relaxed)
        return PlanAnswer(json: goodPlan, backend: name, latency: .milliseconds(1))
    }

    /// As `TeardownQueue.finished(within:)`: true once none is pending, false when `bound` passes.
    func teardownsFinished(within bound: Duration) async -> Bool {
        let end = ContinuousClock.now + bound
        while held.load(ordering: .relaxed) > 0 {
            if ContinuousClock.now >= end { return false }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return true
    }
}

extension PlannerBackendsTimedTests {
    @Suite("Plan router: stale answers, teardowns before the slot is given back")
    struct RouterStaleAndTeardownTests {
        /// A stale answer (the world moved on since the request) is not the model's mistake and no
        /// correction can mend it: it is never sent back with its reasons, and no other back end is
        /// asked about the same old state — the routing ends `stale`, for the caller to ask again.
        /// An ordinary rejection still goes back for a correction.
        @Test func when_an_answer_is_stale_expect_no_correction_asked_and_no_fallback() async {
            let model = ScriptedBackend("model", [.answer(goodPlan)])
            let next = ScriptedBackend("next", [.answer(goodPlan)])
            let router = PlanRouter(routes: [PlanRoute(model, deadline: .seconds(1)), PlanRoute(next, deadline: .seconds(1))],
                                    settings: PlanRouterSettings(maximumRetriesAfterRejection: 2))
            let routing = await router.plan(testRequest()) { _ in .stale(["the mode changed from manual to auto since the request"]) }
            #expect(routing.outcome == .stale)
            #expect(model.requests.count == 1 && model.requests.allSatisfy { $0.feedback.isEmpty })
            #expect(next.requests.isEmpty)
            #expect(routing.attempts.map(\.outcome) == [.rejected(["the mode changed from manual to auto since the request"])])
            let health = router.health()[0]
            #expect(health.answers == 1 && health.rejected == 1 && health.failures == 0)

            // The contrast: a rejection (the model's mistake) goes back for a correction.
            let corrected = await router.plan(testRequest()) { answer in
                model.requests.count < 3 ? .reject(["step 1: goto outside the workspace"]) : .accept
            }
            #expect(corrected.answer?.backend == "model")
            #expect(model.requests.map(\.feedback.count) == [0, 0, 1])
        }

        /// The caller waits for the back ends' teardowns before it gives its request slot back,
        /// within a bound: a back end whose teardown overran it is counted (`teardownsOverdue`) and
        /// skipped while that teardown is pending — one is enough, where without an overrun more
        /// than one is needed — and asked again once it ran.
        @Test func when_a_teardown_overruns_its_bound_expect_it_counted_and_the_back_end_skipped_until_it_ran() async {
            let slow = HeldTeardownBackend("slow")
            let next = ScriptedBackend("next", [.answer(goodPlan)])
            let router = PlanRouter(routes: [PlanRoute(slow, deadline: .seconds(1)), PlanRoute(next, deadline: .seconds(1))])
            // Nothing pending: at once.
            let (none, quick) = await timed { await router.teardownsFinished(within: .seconds(5)) }
            #expect(none.isEmpty && quick < 1)
            slow.held.store(1, ordering: .relaxed)
            let (late, waited) = await timed { await router.teardownsFinished(within: .milliseconds(200)) }
            #expect(late == ["slow"])
            #expect(waited >= 0.19 && waited < 3, "waited \(waited) s")
            #expect(router.health()[0].teardownsOverdue == 1 && router.health()[1].teardownsOverdue == 0)
            let skipped = await router.plan(testRequest(), validate: workspaceValidator)
            #expect(skipped.answer?.backend == "next")
            #expect(skipped.attempts.first?.outcome == .skipped(.teardownsPending(1)))
            #expect(slow.asked.load(ordering: .relaxed) == 0)
            // Its teardown ran: asked again, and one pending later is no reason to skip it.
            slow.held.store(0, ordering: .relaxed)
            let asked = await router.plan(testRequest(), validate: workspaceValidator)
            #expect(asked.answer?.backend == "slow")
            slow.held.store(1, ordering: .relaxed)
            let again = await router.plan(testRequest(), validate: workspaceValidator)
            #expect(again.answer?.backend == "slow")
            let health = router.health()[0]
            #expect(health.teardownsOverdue == 1 && health.skippedByReason == ["teardowns_pending": 1])
        }

        /// Over a real connection: a request to a server that floods, cut at its size cap, returns to
        /// its caller at once; its teardown is already queued then, so waiting for the back end's
        /// teardowns covers it — once the wait returns, none is pending.
        @Test func when_a_request_cut_short_returns_expect_its_teardown_waited_for() async throws {
            let peer = try await OpenAIPeer.start(["flood": ["mode": "endless", "interval": 0]])
            let backend = try peer.backend("flood", model: "flood", maximumResponseBytes: 65536)
            let router = PlanRouter(routes: [PlanRoute(backend, deadline: .seconds(10))])
            for _ in 0..<3 {
                let routing = await router.plan(testRequest(), validate: workspaceValidator)
                guard case .failed(let error)? = routing.attempts.last?.outcome else { Issue.record("\(routing.attempts)"); continue }
                #expect(error.kind == "too_large")
                let late = await router.teardownsFinished(within: .seconds(10))
                #expect(late.isEmpty)
                #expect(backend.pendingTeardowns == 0)
            }
        }
    }
}
