import Foundation
import RTScheduler
import RobotConfig
import SafetyGuard
import Telemetry
import Testing
@testable import AIOSRobot

/// A flood of reset requests (a viewer's login writing its own name as fast as it can, or, on a
/// broker that lets anyone write any name, many names): each user's requests pass a rate limit
/// before any work, so the flood neither pushes the useful records out of the 64 the log keeps nor
/// reaches the control path; what the limit refused is counted, per user.
@Suite("Remote reset requests: a flood rate-limited per user, the useful records kept")
struct RemoteResetFloodTests {
    static func reset(_ user: String) -> String { "robotd/iot-rig-sim/estop/reset/\(user)" }

    @Test func when_a_viewer_floods_reset_requests_expect_the_operators_records_kept_and_the_flood_counted() throws {
        let loop = try RemoteCommandTests.stoppedRig()
        let latch = loop.status.latchSequence
        // The operator's request for an old number: refused, recorded.
        loop.publish(Self.reset("operator"), "reset \(latch - 1)")
        RemoteCommandTests.step(loop)
        #expect(loop.runtime.remoteResets.records().map(\.reason) == [.staleLatch])

        // 1000 requests in the viewer's name over 2 s: its burst (4) and rate (2/s) go through.
        let start = loop.rig.time
        for i in 0..<1000 { loop.publish(Self.reset("viewer"), "reset \(latch)", arrival: start + Int64(i) * 2_000_000) }
        loop.run(until: start + 2_000_000_000)
        let records = loop.runtime.remoteResets.records()
        let viewer = records.filter { $0.user == "viewer" }
        #expect(viewer.count >= 4 && viewer.count <= 4 + 5, "\(viewer.count) of the viewer's requests recorded")
        #expect(viewer.allSatisfy { $0.reason == .notAuthorised })
        #expect(records.first?.user == "operator" && records.first?.reason == .staleLatch)
        let counters = loop.runtime.remoteStopCounters
        #expect(counters.rateLimited.load(ordering: .relaxed) == UInt64(1000 - viewer.count))
        #expect(counters.unauthorised.load(ordering: .relaxed) == UInt64(viewer.count))

        // What the limit refused, for the `safety` topic: the viewer's, once.
        let suppressed = loop.runtime.remoteResetLimit.drainSuppressed()
        #expect(suppressed.map(\.user) == ["viewer"] && suppressed.first?.count == UInt64(1000 - viewer.count))
        #expect(loop.runtime.remoteResetLimit.drainSuppressed().isEmpty)

        // The operator's own rate is untouched: its request releases.
        loop.publish(Self.reset("operator"), "reset \(loop.status.latchSequence)")
        RemoteCommandTests.step(loop)
        #expect(!loop.status.latched && loop.status.resets == 1)
        #expect(loop.runtime.remoteResets.records().last?.outcome == .released)
    }

    /// Many names at once (a broker without the ACL): 16 of them are tracked with a bucket each,
    /// the rest share one; the log keeps the operator's record, and the operator's request acts.
    @Test func when_many_names_flood_at_once_expect_a_bounded_number_recorded_and_the_operator_still_heard() throws {
        let loop = try RemoteCommandTests.stoppedRig()
        loop.publish(Self.reset("operator"), "reset 1")
        RemoteCommandTests.step(loop)
        for i in 0..<5000 { loop.publish(Self.reset("name\(i)"), "reset 1") }
        let records = loop.runtime.remoteResets.records()
        // Each of the 16 tracked names' first request, and the shared bucket's burst.
        #expect(records.count == 1 + RemoteResetRateLimit.trackedOthers + Int(RemoteResetRateLimit.burst))
        #expect(records.first?.user == "operator")
        #expect(loop.runtime.remoteStopCounters.rateLimited.load(ordering: .relaxed) == UInt64(5000 - records.count + 1))
        let suppressed = loop.runtime.remoteResetLimit.drainSuppressed()
        #expect(suppressed.count == 1 && suppressed.first?.user == nil)

        loop.publish(Self.reset("operator"), "reset \(loop.status.latchSequence)")
        RemoteCommandTests.step(loop)
        #expect(!loop.status.latched && loop.status.resets == 1)
    }

    /// The limiter on its own: a burst, then the rate; an idle name gives its place to a new one.
    @Test func the_rate_limit_is_a_token_bucket_per_user_with_a_bounded_number_of_names() {
        let limit = RemoteResetRateLimit(authorisedUsers: ["operator"])
        let second: Int64 = 1_000_000_000
        #expect((0..<6).map { _ in limit.admit(user: "operator", at: 0) } == [true, true, true, true, false, false])
        #expect(limit.admit(user: "operator", at: second / 2 - 1_000) == false)
        #expect(limit.admit(user: "operator", at: second / 2 + 1_000) == true)  // 2 a second: one token in 0.5 s
        for i in 0..<RemoteResetRateLimit.trackedOthers { #expect(limit.admit(user: "n\(i)", at: 0)) }
        // The table is full: a new name goes to the shared bucket (4 in a burst).
        #expect((0..<5).map { limit.admit(user: "late\($0)", at: 0) } == [true, true, true, true, false])
        // Two seconds on, n0…n15 are idle again: a new name takes the place of one of them.
        #expect((0..<5).map { _ in limit.admit(user: "fresh", at: 2 * second) } == [true, true, true, true, false])
        #expect(limit.suppressedTotal == 5)
        // Per bucket, oldest first: the shared one (no user), the operator, the new name.
        let report = limit.drainSuppressed()
        #expect(report.map(\.user) == [nil, "operator", "fresh"] && report.map(\.count) == [1, 3, 1])
        #expect(limit.drainSuppressed().isEmpty)
    }
}

/// `robotd monitor` shows the rate-limited summaries per user: each interval's summary folds into
/// the previous one of the same user only, and the user is said.
@Suite("Remote reset requests: rate-limited summaries in robotd monitor")
struct RemoteResetMonitorTests {
    static func summary(user: String?, count: UInt64, at: Double) -> [UInt8] {
        var g = GuardRecord(kind: "summary", atUnixS: 1_795_666_000 + at, atS: at)
        g.summaryOf = "remote-reset-request"
        g.user = user
        g.outcome = "ignored"
        g.reason = "rate-limited"
        g.count = count
        g.firstAtS = at
        g.lastAtS = at + 0.9
        return TelemetryJSON.encode(SafetyEvent(seq: UInt64(at), tUnixS: 1_795_666_000 + at, suppressed: 0, record: g))
    }

    @Test func when_two_users_are_rate_limited_every_interval_expect_one_folded_line_each_with_the_user() throws {
        var view = FleetView(settings: .init(recentEvents: 4), now: 100)
        for (topic, payload) in [("status", Recorded.online), ("state", Recorded.latchedState), ("deadlines", Recorded.deadlines)] {
            let accepted = view.receive(topic: "robotd/iot-rig-sim/\(topic)", payload: Array(payload.utf8), retained: false, at: 100)
            #expect(accepted)
        }
        for second in 10...12 {
            for user in ["viewer", "mallory"] {
                let accepted = view.receive(topic: "robotd/iot-rig-sim/safety", payload: Self.summary(user: user, count: 7, at: Double(second)),
                                            retained: false, at: 100.5)
                #expect(accepted)
            }
        }
        let screen = FleetScreen.render(view, width: 200).split(separator: "\n").map(String.init)
        let rows = screen.filter { $0.contains("remote-reset-request") }
        #expect(rows.count == 2, "\(screen.joined(separator: "\n"))")
        #expect(rows.contains { $0.contains("remote-reset-request ×21 since 10.00 s; rate-limited; user viewer") }, "\(rows)")
        #expect(rows.contains { $0.contains("remote-reset-request ×21 since 10.00 s; rate-limited; user mallory") }, "\(rows)")
    }
}
