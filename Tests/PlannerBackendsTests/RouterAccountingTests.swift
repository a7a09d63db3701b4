import Foundation
import Synchronization
import Testing
@testable import PlannerBackends

/// A back end whose pending teardowns the test sets, answering `goodPlan` at once.
final class TeardownCountingBackend: PlanBackend {
    let name: String
    let waiting = Atomic<Int>(0)
    let asked = Atomic<Int>(0)
    init(_ name: String) { self.name = name }
    var pendingTeardowns: Int { waiting.load(ordering: .relaxed) }
    func plan(_ request: PlanRequest, deadline: Duration) async throws -> PlanAnswer {
        asked.add(1, ordering: .relaxed)
        return PlanAnswer(json: goodPlan, backend: name, latency: .milliseconds(1))
    }
}

extension PlannerBackendsTimedTests {
    /// Review finding Medium 5: a hanging or flooding back end must not pile up requests through its
    /// callers' cancellations, and its figures must say what happened.
    @Suite("Plan router: cancellations, teardowns, configuration failures")
    struct RouterAccountingTests {
        /// More than one teardown waiting: the back end is skipped, with the reason, and the next
        /// route answers; one waiting: asked as usual.
        @Test func when_a_back_end_has_teardowns_waiting_expect_it_skipped_with_the_reason() async {
            let busy = TeardownCountingBackend("busy")
            let next = ScriptedBackend("next", [.answer(goodPlan)])
            let router = PlanRouter(routes: [PlanRoute(busy, deadline: .seconds(1)), PlanRoute(next, deadline: .seconds(1))])
            busy.waiting.store(2, ordering: .relaxed)
            let skipped = await router.plan(testRequest(), validate: workspaceValidator)
            #expect(skipped.answer?.backend == "next")
            #expect(skipped.attempts.first?.outcome == .skipped(.teardownsPending(2)))
            #expect(busy.asked.load(ordering: .relaxed) == 0)
            var health = router.health()[0]
            #expect(health.skipped == 1 && health.skippedByReason == ["teardowns_pending": 1] && health.pendingTeardowns == 2)
            #expect(health.requests == 0)
            busy.waiting.store(1, ordering: .relaxed)
            let asked = await router.plan(testRequest(), validate: workspaceValidator)
            #expect(asked.answer?.backend == "busy")
            health = router.health()[0]
            #expect(health.skipped == 1 && health.requests == 1 && health.accepted == 1 && health.pendingTeardowns == 1)
        }

        /// Goals that come faster than a hanging back end's deadline cancel each request before it
        /// times out. The time those requests ran adds up: each whole deadline of it counts against the
        /// breaker as one failure, so the breaker opens after as much unanswered time as timeouts would
        /// take — here deadline 400 ms, threshold 2, requests cancelled after ~150 ms: a failure every
        /// third request, open after the sixth. The figures keep requests = answers + failures + cancelled.
        @Test func when_callers_keep_cancelling_a_hanging_back_end_expect_its_breaker_to_open() async throws {
            let clock = ManualBreakerClock()
            let hanging = ScriptedBackend("llm", [.hang])
            let router = PlanRouter(routes: [PlanRoute(hanging, deadline: .milliseconds(400),
                                                       breaker: BreakerSettings(failureThreshold: 2, coolDown: .seconds(30)))],
                                    clock: clock)
            // Each request cut after at least 150 ms: a whole deadline takes at most three, two
            // failures at most six (fewer when a hypervisor stretches the sleeps).
            var cut: [Duration] = []
            for n in 1...12 {
                if case .open = router.health()[0].breaker { break }
                let task = Task { await router.plan(testRequest(), validate: workspaceValidator) }
                guard await OpenAIPeer.eventually(seconds: 5, { hanging.requests.count >= n }) else {
                    Issue.record("request \(n) never reached the back end: \(router.health()[0])")
                    task.cancel()
                    break
                }
                try await Task.sleep(for: .milliseconds(150))
                task.cancel()
                let routing = await task.value
                #expect(routing.outcome == .cancelled)
                #expect(routing.attempts.map(\.outcome) == [.cancelled])
                cut.append(routing.attempts.first?.latency ?? .zero)
                let health = router.health()[0]
                // The first failure needs at least two cut requests (2 × 150 ms < 400 ms).
                if n == 1 { #expect(health.unanswered == 0 && health.consecutiveFailures == 0 && health.breaker == .closed, "\(health)") }
            }
            var health = router.health()[0]
            guard case .open = health.breaker else {
                Issue.record("the breaker never opened: \(health), requests cut after \(cut)")
                return
            }
            let count = hanging.requests.count
            #expect(count >= 4 && count <= 6, "\(count) requests, cut after \(cut)")
            #expect(health.unanswered == 2 && health.breakerOpened == 1)
            #expect(health.requests == count && health.cancelled == count && health.failures == 0 && health.answers == 0)
            #expect(health.lastError?.contains("requests cancelled by their callers") == true, "\(health.lastError ?? "-")")
            let skipped = await router.plan(testRequest(), validate: workspaceValidator)
            #expect(skipped.attempts.first?.outcome == .skipped(.breakerOpen(retryIn: .seconds(30))))
            #expect(hanging.requests.count == count)
            health = router.health()[0]
            #expect(health.skippedByReason == ["breaker_open": 1])
        }

        /// An answer in between wipes the unanswered time: callers cancelling a back end that does
        /// answer never open its breaker.
        @Test func when_a_back_end_answers_between_cancelled_requests_expect_no_failure_counted() async throws {
            let backend = ScriptedBackend("llm", [.hang, .hang, .answer(goodPlan), .hang, .hang, .answer(goodPlan)])
            let router = PlanRouter(routes: [PlanRoute(backend, deadline: .milliseconds(400), breaker: BreakerSettings(failureThreshold: 1))])
            for n in 1...6 {
                let task = Task { await router.plan(testRequest(), validate: workspaceValidator) }
                // Not asked at all when its breaker opened (the failure this test rules out).
                let asked = await OpenAIPeer.eventually(seconds: 5) { backend.requests.count >= n }
                guard asked else {
                    Issue.record("request \(n) never reached the back end: \(router.health()[0])")
                    task.cancel()
                    break
                }
                if n % 3 == 0 {
                    #expect(await task.value.answer != nil)
                    continue
                }
                try await Task.sleep(for: .milliseconds(150))
                task.cancel()
                _ = await task.value
            }
            let health = router.health()[0]
            #expect(health.breaker == .closed && health.unanswered == 0 && health.cancelled == 4 && health.accepted == 2, "\(health)")
            #expect(health.unansweredTime == .zero)
        }

        /// A redirect (or a configuration the back end cannot work with) is mended by no retry: the
        /// breaker opens at the first, whatever its threshold, and the health says why.
        @Test(arguments: [PlanBackendError.redirectRefused(status: 307), .configuration("a proxy in the environment")])
        func when_a_back_end_fails_by_configuration_expect_its_breaker_open_at_once(error: PlanBackendError) async {
            let clock = ManualBreakerClock()
            let misrouted = ScriptedBackend("hosted", [.fail(error)])
            let router = PlanRouter(routes: [
                PlanRoute(misrouted, deadline: .seconds(1), breaker: BreakerSettings(failureThreshold: 5, coolDown: .seconds(60))),
                PlanRoute(ScriptedBackend("next", [.answer(goodPlan)]), deadline: .seconds(1)),
            ], clock: clock)
            let first = await router.plan(testRequest(), validate: workspaceValidator)
            #expect(first.attempts.first?.outcome == .failed(error))
            #expect(first.answer?.backend == "next")
            let health = router.health()[0]
            guard case .open = health.breaker else { Issue.record("expected open, got \(health)"); return }
            #expect(health.configurationFailures == 1 && health.failures == 1 && health.breakerOpened == 1)
            #expect(health.lastError?.contains("a configuration failure: its breaker opened at once") == true, "\(health.lastError ?? "-")")
            let second = await router.plan(testRequest(), validate: workspaceValidator)
            #expect(second.attempts.first?.outcome == .skipped(.breakerOpen(retryIn: .seconds(60))))
            #expect(misrouted.requests.count == 1)
        }
    }
}
