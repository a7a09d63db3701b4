import Foundation
import Testing
import TestSupport
@testable import PlannerBackends

extension PlannerBackendsTimedTests {
    /// Requests that end early leave their sessions to be torn down later (FoundationNetworking's
    /// `cancel()` can wait for seconds): that teardown must not cost a thread per request.
    @Suite("HTTP teardown", .enabled(if: OpenAIPeer.isAvailable, "python3 is not installed"))
    struct TeardownTests {
        /// This process's threads now.
        static func threads() -> Int {
            (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count) ?? 0
        }

        /// `count` samples of the thread count, 50 ms apart.
        static func samples(_ count: Int) async -> [Int] {
            var taken: [Int] = []
            for _ in 0..<count {
                taken.append(threads())
                try? await Task.sleep(for: .milliseconds(50))
            }
            return taken
        }

        /// 100 requests to a server that never answers, all in flight at once, all cancelled by
        /// their callers: the teardowns share the back end's one queue, so the process's threads grow
        /// by a few, not by one per request (measured on this VM: +3 to +7 with the back end's
        /// queue, +98 to +101 with a queue per request). Other suites may run beside this one, so the
        /// growth is the median of the counts in the second after less the most before, with a
        /// generous bound. Every connection is still closed (within seconds: 7–10 s measured).
        @Test func when_many_requests_to_a_hanging_server_are_cancelled_expect_threads_bounded_and_connections_closed() async throws {
            let peer = try await OpenAIPeer.start(["m": ["mode": "hang"]])
            let backend = try peer.backend("local", model: "m")
            let count = 100
            let before = await Self.samples(5)
            let tasks = (0..<count).map { _ in Task { try await backend.plan(testRequest(), deadline: .seconds(60)) } }
            let arrived = await OpenAIPeer.eventually(seconds: 30) { peer.requests(model: "m").count == count }
            #expect(arrived, "the peer saw \(peer.requests(model: "m").count) of \(count) requests")
            let clock = ContinuousClock()
            let cancelled = clock.now
            for task in tasks { task.cancel() }
            for task in tasks {
                guard case .failure(let error) = await task.result else { Issue.record("answered"); continue }
                #expect(error as? PlanBackendError == .cancelled)
            }
            let released = (clock.now - cancelled).inSeconds
            let after = await Self.samples(20)
            let growth = after.sorted()[after.count / 2] - (before.max() ?? 0)
            var closed = 0
            for n in 1...count where await peer.ended(n, seconds: 30)?["client_closed"] as? Bool == true { closed += 1 }
            let allClosed = (clock.now - cancelled).inSeconds
            print("\(count) cancelled requests: callers released after \(String(format: "%.3f", released)) s; threads before \(before), after \(after) (growth \(growth)); \(closed) connections closed by \(String(format: "%.2f", allClosed)) s")
            #expect(growth < 40)
            #expect(released < 5)
            #expect(closed == count)
            #expect(allClosed < 30)
        }
    }
}
