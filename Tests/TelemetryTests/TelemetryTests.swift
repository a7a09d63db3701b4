import Foundation
@testable import RTScheduler
@testable import SafetyGuard
@testable import Telemetry
import Testing

@Suite("Telemetry: rate limits, levels, payloads")
struct TelemetryTests {
    static let clock = TelemetryClock(origin: Instant(nanoseconds: 1_000_000_000), monotonicNow: Instant(nanoseconds: 1_000_000_000),
                                      unixNow: 1_700_000_000)

    static func at(ms: Int64) -> Instant { Instant(nanoseconds: 1_000_000_000 + ms * 1_000_000) }

    @Test func sha256_matches_the_standard_vectors() {
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        // Two blocks (56 bytes: the padding spills into a second block).
        #expect(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
            == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(SHA256.hex(Array(repeating: UInt8(ascii: "a"), count: 1000))
            == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }

    @Test func when_events_come_faster_than_the_rate_expect_a_burst_then_the_rate_and_the_suppressed_carried() {
        var limiter = EventRateLimiter(perSecond: 10, burst: 3)
        var admitted: [(ms: Int64, carried: UInt64)] = []
        // 100 events in 1 s (every 10 ms): 3 at once, then one per 100 ms.
        for i: Int64 in 0..<100 {
            if let carried = limiter.admit(at: Self.at(ms: i * 10)) { admitted.append((i * 10, carried)) }
        }
        #expect(admitted.count >= 12 && admitted.count <= 13)
        #expect(admitted.prefix(3).map(\.carried) == [0, 0, 0])
        #expect(UInt64(admitted.count) + limiter.totalSuppressed == 100)
        #expect(admitted.reduce(0) { $0 + $1.carried } + limiter.pendingSuppressed == limiter.totalSuppressed)
        // Quiet for a second: the bucket refills, the next one carries what is pending.
        let pending = limiter.pendingSuppressed
        #expect(limiter.admit(at: Self.at(ms: 3_000)) == pending)
        #expect(limiter.pendingSuppressed == 0)
    }

    @Test func when_an_admitted_event_is_dropped_expect_it_and_its_carried_count_suppressed() {
        var limiter = EventRateLimiter(perSecond: 1, burst: 1)
        #expect(limiter.admit(at: Self.at(ms: 0)) == 0)
        #expect(limiter.admit(at: Self.at(ms: 10)) == nil)
        let carried = limiter.admit(at: Self.at(ms: 2_000))
        #expect(carried == 1)
        limiter.noteDropped(carried: carried ?? 0)
        #expect(limiter.admitted == 1 && limiter.totalSuppressed == 2 && limiter.pendingSuppressed == 2)
        #expect(limiter.admit(at: Self.at(ms: 4_000)) == 2)
    }

    static func task(period: Duration? = .milliseconds(10), window: TaskFigures, total: TaskFigures? = nil) -> TaskAccounting {
        TaskAccounting(id: TaskID(index: 0), name: "policy", kind: period == nil ? .event : .periodic, priority: .high, critical: true,
                       period: period, relativeDeadline: .milliseconds(10), window: window, total: total ?? window, queue: nil)
    }

    static func figures(releases: UInt64, misses: UInt64 = 0, skipped: UInt64 = 0, faults: UInt64 = 0) -> TaskFigures {
        var f = TaskFigures()
        f.releases = releases
        f.completions = releases
        f.misses = misses
        f.skippedReleases = skipped
        f.deadlineFaults = faults
        return f
    }

    @Test func levels_follow_the_thresholds() {
        var levels = TaskLevels(thresholds: LevelThresholds(missRatioWarn: 0.01, missRatioError: 0.1, stalePeriods: 3))
        #expect(levels.evaluate(Self.task(window: Self.figures(releases: 100)), at: Self.at(ms: 0)).level == .ok)
        #expect(levels.evaluate(Self.task(window: Self.figures(releases: 100, misses: 1), total: Self.figures(releases: 200)), at: Self.at(ms: 1)).level == .ok)
        #expect(levels.evaluate(Self.task(window: Self.figures(releases: 100, misses: 5), total: Self.figures(releases: 300)), at: Self.at(ms: 2)).level == .warn)
        let error = levels.evaluate(Self.task(window: Self.figures(releases: 100, misses: 20), total: Self.figures(releases: 400)), at: Self.at(ms: 3))
        #expect(error.level == .error && error.message == "20 of 100 releases missed (20.0 %)")
        #expect(levels.evaluate(Self.task(window: Self.figures(releases: 100, misses: 1, faults: 1), total: Self.figures(releases: 500)), at: Self.at(ms: 4)).level == .error)
        #expect(levels.evaluate(Self.task(window: Self.figures(releases: 100, skipped: 2), total: Self.figures(releases: 600)), at: Self.at(ms: 5)).level == .warn)
        // Nothing released: not stale before 3 periods (30 ms) have passed since the last release, stale after.
        let silent = Self.task(window: Self.figures(releases: 0), total: Self.figures(releases: 600))
        #expect(levels.evaluate(silent, at: Self.at(ms: 25)).level == .ok)
        let stale = levels.evaluate(silent, at: Self.at(ms: 40))
        #expect(stale.level == .stale && stale.message == "no release for 35.0 ms (period 10.0 ms)")
        // An event task is never stale.
        #expect(levels.evaluate(Self.task(period: nil, window: Self.figures(releases: 0)), at: Self.at(ms: 10_000)).level == .ok)
    }

    @Test func payloads_have_snake_case_keys_with_units() throws {
        let event = MissEvent(seq: 1, tUnixS: 1.5, task: "guard", kind: "finish-late", latenessUs: 12.5, releaseUnixS: 1, releaseS: 0.5,
                              deadlineUnixS: 1.01, suppressed: 0)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(TelemetryJSON.encode(event))) as? [String: Any])
        #expect(Set(json.keys) == ["seq", "t_unix_s", "task", "kind", "lateness_us", "release_unix_s", "release_s", "deadline_unix_s", "suppressed"])
        #expect(try TelemetryJSON.decode(MissEvent.self, from: TelemetryJSON.encode(event)) == event)
        let latency = DeadlinesReporterProbe.latency(LatencySummary(count: 3, p50: 1500, p99: 2000, p999: 2000, max: 2100))
        let keys = try #require(try JSONSerialization.jsonObject(with: Data(TelemetryJSON.encode(latency))) as? [String: Any])
        #expect(Set(keys.keys) == ["count", "p50_us", "p99_us", "p999_us", "max_us"])
        #expect(keys["p50_us"] as? Double == 1.5)
    }

    @Test func safety_records_are_events_and_clamps_come_as_one_summary_per_channel() throws {
        var reporter = SafetyReporter(channelNames: ["left", "right"], sensorNames: ["range"], eventsPerSecond: 100)
        let ring = OverwritingRingProbe.records
        let events = reporter.events(ring, at: Self.at(ms: 100), clock: Self.clock)
        #expect(events.map(\.record.kind) == ["latched", "reset-refused", "summary", "summary"])
        #expect(events.map(\.seq) == [1, 2, 3, 4])
        let latch = events[0].record
        #expect(latch.fault == "remote-stop" && latch.category == 1 && latch.atS == 0.01)
        #expect(events[1].record.causes == ["remote-stop"])
        let left = events[2].record
        #expect(left.summaryOf == "clamped" && left.channel == "left" && left.count == 3 && left.firstAtS == 0.02 && left.lastAtS == 0.04)
        #expect(events[3].record.channel == "right" && events[3].record.count == 1)
        // Flattened on the wire: the record's keys beside seq.
        let json = try #require(try JSONSerialization.jsonObject(with: Data(TelemetryJSON.encode(events[2]))) as? [String: Any])
        #expect(json["seq"] as? Int == 3 && json["summary_of"] as? String == "clamped" && json["count"] as? Int == 3)
        #expect(try TelemetryJSON.decode(SafetyEvent.self, from: TelemetryJSON.encode(events[2])) == events[2])
    }
}

/// Internal helpers reached through public API.
enum DeadlinesReporterProbe {
    static func latency(_ s: LatencySummary) -> LatencyFigures {
        var report = AccountingReport(at: Instant(nanoseconds: 2_000_000_000), windowStart: Instant(nanoseconds: 1_000_000_000), tasks: [],
                                      misses: [], missesLost: 0, missesLostTotal: 0, dispatchStalls: 0)
        var f = TaskFigures()
        f.responseTime = s
        report.tasks = [TaskAccounting(id: TaskID(index: 0), name: "t", kind: .event, priority: .high, critical: false, period: nil,
                                       relativeDeadline: .milliseconds(1), window: f, total: f, queue: nil)]
        var reporter = DeadlinesReporter(thresholds: LevelThresholds(), missEventsPerSecond: 10)
        return reporter.deadlines(report, clock: TelemetryTests.clock, telemetry: TelemetryCounters()).tasks[0].window.response
    }
}

/// Records as the guard appends them (its internal initialiser).
enum OverwritingRingProbe {
    static var records: [AuditRecord] {
        let at = { TelemetryTests.at(ms: $0) }
        return [
            AuditRecord(at: at(10), kind: .latched, fault: .remoteStop, category: .one),
            AuditRecord(at: at(20), kind: .clamped, channel: 0, origin: .policy, requested: 2, approved: 1, clampReasons: .range),
            AuditRecord(at: at(25), kind: .resetRefused, fault: .remoteStop, causes: StopCauses(.remoteStop)),
            AuditRecord(at: at(30), kind: .clamped, channel: 0, origin: .policy, requested: 2, approved: 1.5, clampReasons: .rate),
            AuditRecord(at: at(35), kind: .clamped, channel: 1, origin: .policy, requested: 3, approved: 1, clampReasons: .range),
            AuditRecord(at: at(40), kind: .clamped, channel: 0, origin: .policy, requested: 2, approved: 1, clampReasons: .range),
        ]
    }
}
