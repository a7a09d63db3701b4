import Foundation
import Testing
import TestSupport
@testable import PlannerBackends

/// A validator like the planner's: the answer must be JSON, each goto inside ±10 m.
@Sendable func workspaceValidator(_ answer: PlanAnswer) -> [String]? {
    guard let plan = try? JSONSerialization.jsonObject(with: Data(answer.json.utf8)) as? [String: Any],
          let steps = plan["steps"] as? [[String: Any]]
    else {
        return ["the answer is not a JSON plan with steps"]
    }
    var reasons: [String] = []
    for (index, step) in steps.enumerated() {
        for axis in ["x", "y"] {
            guard let value = step[axis] as? Double, value.isFinite else {
                reasons.append("step \(index + 1): \(axis) is not a finite number")
                continue
            }
            if abs(value) > 10 { reasons.append("step \(index + 1): goto outside the workspace (\(axis) \(value) m, limit ±10 m)") }
        }
    }
    return reasons.isEmpty ? nil : reasons
}

extension PlannerBackendsTimedTests {
    /// The router over real clients against the peer: fallback, breakers, rejection feedback, deadlines.
    @Suite("Plan router against a scripted server", .enabled(if: OpenAIPeer.isAvailable, "python3 is not installed"))
    struct PlanRouterPeerTests {
        @Test func when_the_first_back_end_returns_500_expect_the_next_to_answer_with_both_attempts_recorded() async throws {
            let peer = try await OpenAIPeer.start(["broken": ["mode": "status", "status": 500], "good": ["mode": "ok", "content": goodPlan]])
            let router = PlanRouter(routes: [
                PlanRoute(try peer.backend("primary", model: "broken"), deadline: .seconds(5)),
                PlanRoute(try peer.backend("secondary", model: "good"), deadline: .seconds(5)),
            ])
            let routing = await router.plan(testRequest(), validate: workspaceValidator)
            let answer = try #require(routing.answer)
            #expect(answer.backend == "secondary")
            #expect(answer.json == goodPlan)
            #expect(routing.attempts.map(\.backend) == ["primary", "secondary"])
            #expect(routing.attempts.map(\.outcome) == [.failed(.httpStatus(500, body: "")), .accepted])
            #expect(routing.attempts.allSatisfy { $0.latency > .zero && $0.latency < .seconds(5) })
            #expect(routing.attempts[1].startedAfter >= routing.attempts[0].latency)
            #expect(routing.elapsed >= routing.attempts[0].latency + routing.attempts[1].latency)
            let health = router.health()
            #expect(health[0].failures == 1 && health[0].failuresByKind == ["http_status": 1] && health[0].lastError == "HTTP 500")
            #expect(health[1].accepted == 1 && health[1].lastLatency == routing.attempts[1].latency)
            #expect(health[1].latencyP50 == routing.attempts[1].latency)
            #expect(router.recentAttempts() == routing.attempts)
        }

        /// Closed → open after 2 failures (the back end is then not asked) → half-open after the
        /// cool-down: the probe fails → open again → the next probe answers → closed.
        @Test func when_a_back_end_keeps_failing_expect_its_breaker_to_open_half_open_and_close() async throws {
            let peer = try await OpenAIPeer.start([
                "flaky": [["mode": "status", "status": 500, "times": 3], ["mode": "ok", "content": goodPlan]],
                "good": ["mode": "ok", "content": goodPlan],
            ])
            let clock = ManualBreakerClock()
            let router = PlanRouter(routes: [
                PlanRoute(try peer.backend("primary", model: "flaky"), deadline: .seconds(5),
                          breaker: BreakerSettings(failureThreshold: 2, coolDown: .seconds(30))),
                PlanRoute(try peer.backend("secondary", model: "good"), deadline: .seconds(5)),
            ], clock: clock)
            func route() async -> PlanRouting { await router.plan(testRequest(), validate: workspaceValidator) }
            func primary() -> BackendHealth { router.health()[0] }

            var routing = await route()
            #expect(routing.answer?.backend == "secondary")
            #expect(primary().breaker == .closed && primary().consecutiveFailures == 1)
            routing = await route()
            #expect(routing.answer?.backend == "secondary")
            guard case .open = primary().breaker else { Issue.record("expected open, got \(primary().breaker)"); return }
            #expect(primary().breakerOpened == 1)

            // Open: the primary is skipped, not asked.
            clock.advance(by: .seconds(29))
            routing = await route()
            #expect(routing.attempts.first?.outcome == .skipped(.breakerOpen(retryIn: .seconds(1))))
            #expect(routing.answer?.backend == "secondary")
            #expect(peer.requests(model: "flaky").count == 2)

            // Half-open after the cool-down: one probe, which fails: open again.
            clock.advance(by: .seconds(2))
            routing = await route()
            #expect(routing.attempts.first?.outcome == .failed(.httpStatus(500, body: "")))
            #expect(peer.requests(model: "flaky").count == 3)
            guard case .open = primary().breaker else { Issue.record("expected open again, got \(primary().breaker)"); return }
            #expect(primary().breakerOpened == 2)

            // The next probe answers: closed, and the primary gives the plan again.
            clock.advance(by: .seconds(31))
            routing = await route()
            #expect(routing.answer?.backend == "primary")
            #expect(routing.attempts.map(\.outcome) == [.accepted])
            #expect(primary().breaker == .closed && primary().consecutiveFailures == 0)
            #expect(primary().requests == 4 && primary().failures == 3 && primary().accepted == 1 && primary().skipped == 1)
        }

        /// A schema-valid but unsafe plan is rejected; the reasons and the rejected answer reach the
        /// server in the next request's messages; after two retries the router falls back.
        @Test func when_plans_are_rejected_expect_the_reasons_fed_back_then_a_fallback() async throws {
            let peer = try await OpenAIPeer.start(["unsafe": ["mode": "ok", "content": unsafePlan], "good": ["mode": "ok", "content": goodPlan]])
            let router = PlanRouter(routes: [
                PlanRoute(try peer.backend("llm", model: "unsafe"), deadline: .seconds(5)),
                PlanRoute(try peer.backend("fallback", model: "good"), deadline: .seconds(5)),
            ], settings: PlanRouterSettings(maximumRetriesAfterRejection: 2))
            let routing = await router.plan(testRequest(), validate: workspaceValidator)
            #expect(routing.answer?.backend == "fallback")
            let reason = "step 1: goto outside the workspace (x 40.0 m, limit ±10 m)"
            #expect(routing.attempts.map(\.outcome) == [.rejected([reason]), .rejected([reason]), .rejected([reason]), .accepted])
            #expect(routing.attempts.map(\.round) == [0, 1, 2, 0])

            let asked = peer.requests(model: "unsafe")
            #expect(asked.count == 3)
            let first = OpenAIPeer.messages(asked[0]), third = OpenAIPeer.messages(asked[2])
            #expect(first.map(\.role) == ["system", "user"])
            #expect(third.map(\.role) == ["system", "user", "assistant", "user", "assistant", "user"])
            #expect(third[2].content == unsafePlan)
            let quotedReasons = "REJECTED (data):\n" + #"["step 1: goto outside the workspace (x 40.0 m, limit ±10 m)"]"#
            #expect(third[3].content.hasPrefix(quotedReasons))
            #expect(third[5].content.hasPrefix(quotedReasons))
            // The fallback is asked afresh, without the other model's history.
            #expect(OpenAIPeer.messages(try #require(peer.requests(model: "good").first)).count == 2)
            #expect(router.health()[0].rejected == 3 && router.health()[0].failures == 0)
        }

        /// An answer that is not JSON is a rejection (the model can correct it), not a failure.
        @Test func when_the_answer_is_invalid_json_expect_a_rejection_and_a_corrected_retry() async throws {
            let peer = try await OpenAIPeer.start(["m": [["mode": "ok", "content": #"{"steps": [{"ability": "goto", "x": 2,"#, "times": 1],
                                             ["mode": "ok", "content": goodPlan]]])
            let router = PlanRouter(routes: [PlanRoute(try peer.backend("llm", model: "m"), deadline: .seconds(5))])
            let routing = await router.plan(testRequest(), validate: workspaceValidator)
            #expect(routing.answer?.json == goodPlan)
            #expect(routing.attempts.map(\.outcome) == [.rejected(["the answer is not a JSON plan with steps"]), .accepted])
            let second = OpenAIPeer.messages(try #require(peer.requests(model: "m").last))
            #expect(second.last?.content.contains("the answer is not a JSON plan with steps") == true)
            #expect(router.health()[0].breaker == .closed)
        }

        /// A hanging back end costs its own deadline and no more: the fallback answers right after.
        @Test func when_the_first_back_end_hangs_expect_its_deadline_to_cut_it_and_the_next_to_answer() async throws {
            let peer = try await OpenAIPeer.start(["hang": ["mode": "hang"], "good": ["mode": "ok", "content": goodPlan]])
            let router = PlanRouter(routes: [
                PlanRoute(try peer.backend("llm", model: "hang"), deadline: .milliseconds(400)),
                PlanRoute(try peer.backend("fallback", model: "good"), deadline: .seconds(5)),
            ])
            var totals: [Double] = []
            for _ in 0..<3 {
                let routing = await router.plan(testRequest(), validate: workspaceValidator)
                #expect(routing.answer?.backend == "fallback")
                #expect(routing.attempts.first?.outcome == .failed(.timeout(after: .milliseconds(400))))
                totals.append(routing.elapsed.inSeconds)
            }
            print("hang then fallback: answered after \(totals.map { String(format: "%.3f", $0) }.joined(separator: " ")) s (deadline 0.400 s)")
            #expect(median(totals) < 0.4 + 0.3)
            #expect(router.health()[0].failuresByKind == ["timeout": 3])
            guard case .open = router.health()[0].breaker else { Issue.record("3 timeouts should open the breaker"); return }
        }

        @Test func when_the_first_back_end_streams_an_endless_body_expect_the_cap_to_cut_it_and_the_next_to_answer() async throws {
            let peer = try await OpenAIPeer.start(["endless": ["mode": "endless", "interval": 0.001], "good": ["mode": "ok", "content": goodPlan]])
            let router = PlanRouter(routes: [
                PlanRoute(try peer.backend("llm", model: "endless", maximumResponseBytes: 32 * 1024), deadline: .seconds(10)),
                PlanRoute(try peer.backend("fallback", model: "good"), deadline: .seconds(5)),
            ])
            let routing = await router.plan(testRequest(), validate: workspaceValidator)
            #expect(routing.answer?.backend == "fallback")
            guard case .failed(let error) = routing.attempts.first?.outcome else { Issue.record("no failure recorded"); return }
            #expect(error.kind == "too_large")
            #expect(routing.elapsed < .seconds(3))
        }

        /// A route whose deadline is longer than the time the request has left is skipped unasked.
        @Test func when_a_deadline_exceeds_the_time_left_expect_the_route_skipped() async throws {
            let peer = try await OpenAIPeer.start(["slow": ["mode": "ok", "content": goodPlan, "delay": 0.2], "good": ["mode": "ok", "content": goodPlan]])
            let router = PlanRouter(routes: [
                PlanRoute(try peer.backend("big", model: "slow"), deadline: .seconds(20)),
                PlanRoute(try peer.backend("small", model: "good"), deadline: .milliseconds(500)),
            ])
            let routing = await router.plan(testRequest(), budget: .seconds(2), validate: workspaceValidator)
            #expect(routing.answer?.backend == "small")
            guard case .skipped(.notEnoughTime(let left, let deadline))? = routing.attempts.first?.outcome else {
                Issue.record("expected a skip for time, got \(routing.attempts)")
                return
            }
            #expect(deadline == .seconds(20) && left <= .seconds(2) && left > .seconds(1))
            #expect(peer.requests(model: "slow").isEmpty)

            // With time enough, the slow one answers (its 0.2 s delay shows in its latency).
            let roomy = await router.plan(testRequest(), budget: .seconds(60), validate: workspaceValidator)
            #expect(roomy.answer?.backend == "big")
            #expect(try #require(roomy.answer).latency >= .milliseconds(200))
        }
    }
}
