import Foundation
@testable import RTScheduler
@testable import SafetyGuard
@testable import Telemetry
import Testing

/// The `safety` topic's rate limits: the guard's interventions and the remote reset requests each
/// have their own, so a flood of requests cannot hide an intervention (nor interventions a
/// request); requests refused by their user's rate come as one summary per user.
@Suite("Telemetry: safety events, the guard's and remote requests' limits apart")
struct SafetyEventLimitsTests {
    static func request(_ i: Int, at ms: Int64) -> RemoteResetRequest {
        RemoteResetRequest(at: TelemetryTests.at(ms: ms), user: "viewer\(i)", latch: 7, outcome: "refused", reason: "user-not-authorised", causes: [])
    }

    @Test func when_remote_requests_flood_expect_every_guard_intervention_published_and_the_requests_counted_apart() {
        var reporter = SafetyReporter(channelNames: ["left", "right"], sensorNames: ["range"], eventsPerSecond: 20)
        // 200 requests in the same read as the latch and its refusal.
        let requests = (0..<200).map { Self.request($0, at: 5) }
        let events = reporter.events(OverwritingRingProbe.records, remoteResets: requests, at: TelemetryTests.at(ms: 100), clock: TelemetryTests.clock)
        let guardEvents = events.filter { !SafetyReporter.isRemote($0.record) }
        let remote = events.filter { SafetyReporter.isRemote($0.record) }
        // The guard's four (the latch, the refused reset, two clamp summaries) all go out.
        #expect(guardEvents.map(\.record.kind) == ["latched", "reset-refused", "summary", "summary"])
        #expect(guardEvents.allSatisfy { $0.suppressed == 0 })
        // The requests: a burst of 20, the rest counted by their own limit.
        #expect(remote.count == 20)
        #expect(reporter.remoteLimiter.totalSuppressed == 180 && reporter.limiter.totalSuppressed == 0)
        #expect(events.map(\.seq) == Array(1...UInt64(events.count)))

        // Later, one guard record and one request: each carries only its own limit's count.
        let later = reporter.events([AuditRecord(at: TelemetryTests.at(ms: 5_000), kind: .latched, fault: .remoteStop, category: .one)],
                                    remoteResets: [Self.request(999, at: 5_000)], at: TelemetryTests.at(ms: 5_100), clock: TelemetryTests.clock)
        #expect(later.count == 2)
        #expect(later.first { $0.record.kind == "latched" }?.suppressed == 0)
        #expect(later.first { $0.record.kind == SafetyReporter.remoteResetKind }?.suppressed == 180)
    }

    @Test func when_the_guard_floods_expect_a_remote_request_still_published() {
        var reporter = SafetyReporter(channelNames: ["left"], sensorNames: [], eventsPerSecond: 5)
        let records = (0..<50).map { AuditRecord(at: TelemetryTests.at(ms: Int64($0)), kind: .latched, fault: .remoteStop, category: .one) }
        let events = reporter.events(records, remoteResets: [Self.request(1, at: 60)], at: TelemetryTests.at(ms: 100), clock: TelemetryTests.clock)
        #expect(events.filter { $0.record.kind == "latched" }.count == 5)
        #expect(events.filter { $0.record.kind == SafetyReporter.remoteResetKind }.map(\.record.user) == ["viewer1"])
        #expect(reporter.limiter.totalSuppressed == 45 && reporter.remoteLimiter.totalSuppressed == 0)
    }

    @Test func requests_refused_by_their_users_rate_come_as_one_summary_per_user() throws {
        var reporter = SafetyReporter(channelNames: [], sensorNames: [], eventsPerSecond: 20)
        let limited = [
            RateLimitedResets(user: "viewer", count: 996, first: TelemetryTests.at(ms: 10), last: TelemetryTests.at(ms: 1_990)),
            RateLimitedResets(user: nil, count: 30, first: TelemetryTests.at(ms: 20), last: TelemetryTests.at(ms: 30)),
        ]
        let events = reporter.events([], rateLimitedResets: limited, at: TelemetryTests.at(ms: 2_000), clock: TelemetryTests.clock)
        #expect(events.count == 2)
        let viewer = events[0].record
        #expect(viewer.kind == "summary" && viewer.summaryOf == SafetyReporter.remoteResetKind && viewer.user == "viewer")
        #expect(viewer.outcome == "ignored" && viewer.reason == "rate-limited" && viewer.count == 996)
        #expect(viewer.firstAtS == 0.01 && viewer.lastAtS == 1.99)
        #expect(events[1].record.user == nil && events[1].record.count == 30)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(TelemetryJSON.encode(events[0]))) as? [String: Any])
        #expect(json["summary_of"] as? String == "remote-reset-request" && json["reason"] as? String == "rate-limited" && json["count"] as? Int == 996)
    }
}
