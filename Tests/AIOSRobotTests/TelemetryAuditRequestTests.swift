import Foundation
import Glibc
import RTScheduler
import RobotConfig
import Synchronization
import Telemetry
import TestSupport
import Testing
import Transports
@testable import AIOSRobot

/// `audit/request` answered at most once a second: a client asking every 50 ms gets an audit a
/// second, every request answered by the next audit (the extra ones counted as coalesced), never
/// one audit of the whole ring per request.
@Suite("Telemetry: audit requests rate-limited", .serialized, .enabled(if: MosquittoBroker.isInstalled, "mosquitto is not installed"))
struct TelemetryAuditRequestTests {
    final class Audits: Sendable {
        let arrivals = Mutex<[Date]>([])
    }

    @Test func when_audits_are_requested_every_50_ms_expect_at_most_one_audit_a_second_and_every_request_answered() throws {
        let directory = try temporaryDirectory("robotd-audit-rate")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let broker = try MosquittoBroker()
        try broker.start()
        defer { broker.stop() }
        let configuration = try rigConfiguration(in: directory, port: broker.port, telemetry: "{interval_ms: 200}")
        let prefix = "robotd/\(configuration.robot.id)/"
        var options = RobotDaemon.Options()
        options.realtime = RealtimeOptions()
        let daemon = try RobotDaemon(configuration: configuration, options: options) { _ in }
        try daemon.start()
        defer { daemon.stop(reason: "test") }
        let monitor = try #require(daemon.telemetry)

        let audits = Audits()
        let watcher = try MQTTClient(options: MQTTOptions(port: broker.port, clientID: "audit-watcher-\(getpid())")) { m in
            if m.topic == prefix + "audit" { audits.arrivals.withLock { $0.append(Date()) } }
        }
        try watcher.subscribe(.init(filter: prefix + "audit", qos: 1))
        try watcher.start()
        defer { watcher.stop() }
        #expect(waitUntil { watcher.isSubscribed && monitor.client.isSubscribed })

        let requests = 40
        for _ in 0..<requests {
            try watcher.publish(topic: prefix + "audit/request", payload: Array("now".utf8), qos: 1, retain: false)
            usleep(50_000)
        }
        // The last requests are answered within a second of the previous audit.
        let published = { monitor.counters.auditsPublished.load(ordering: .relaxed) }
        let coalesced = { monitor.counters.auditRequestsCoalesced.load(ordering: .relaxed) }
        #expect(waitUntil(seconds: 5) { published() + coalesced() == UInt64(requests) }, "\(published()) audits, \(coalesced()) coalesced")
        usleep(1_500_000)
        #expect(published() + coalesced() == UInt64(requests))
        // 2 s of requests: an audit at the first, then one a second.
        #expect(published() >= 2 && published() <= 4, "\(published()) audits for \(requests) requests")
        #expect(waitUntil { audits.arrivals.withLock { $0.count } == Int(published()) })
        let times = audits.arrivals.withLock { $0 }
        for (a, b) in zip(times, times.dropFirst()) { #expect(b.timeIntervalSince(a) > 0.8, "two audits \(b.timeIntervalSince(a)) s apart") }
    }
}
