import Foundation
import RTScheduler
import RobotConfig
import SafetyGuard
import Testing
@testable import AIOSRobot

/// The operator station's keep-alive on `<stop topic>/alive` carries a counter that must advance:
/// a keep-alive replayed by a bridge, redelivered (QoS 1 duplicate) or retained does not count as
/// a live station, so the stop path's silence is still seen — a stop.
@Suite("Remote stop keep-alive: an advancing counter, replays ignored and counted")
struct RemoteKeepAliveTests {
    static let alive = "robotd/iot-rig-sim/estop/alive"

    static func rig() throws -> ConfiguredRigLoop {
        try ConfiguredRigLoop(try Examples.configuration("iot-rig-sim.yaml") {
            $0 = $0.replacingOccurrences(of: "heartbeat_ms: none", with: "heartbeat_ms: 500")
        })
    }

    static func step(_ loop: ConfiguredRigLoop) { loop.run(until: loop.rig.time + 200_000_000) }

    @Test func a_keepalive_counter_is_a_plain_decimal_number() {
        #expect(RemoteStop.keepAliveNumber(Array("1".utf8)) == 1)
        #expect(RemoteStop.keepAliveNumber(Array(" 1795664561024\n".utf8)) == 1_795_664_561_024)
        #expect(RemoteStop.keepAliveNumber(Array("9999999999999999999".utf8)) == 9_999_999_999_999_999_999)
        for text in ["", " ", "alive", "-1", "+1", "1.5", "1e3", "0x10", "1 2", "٣", #"{"seq": 3}"#, "99999999999999999999"] {
            #expect(RemoteStop.keepAliveNumber(Array(text.utf8)) == nil, "\(text)")
        }
        #expect(RemoteStop.keepAliveNumber(Array(repeating: UInt8(ascii: "1"), count: 100)) == nil)
    }

    /// A live station's counter advances: the rig runs. Then only the last keep-alive comes again
    /// and again (a bridge replaying it, a QoS 1 redelivery) with a retained one among them: none
    /// counts, the link goes silent — a stop, each replay counted — and a reset is refused until
    /// the counter advances again.
    @Test func when_the_same_keepalive_is_replayed_expect_the_link_silent_a_stop_and_the_replays_counted() throws {
        let loop = try Self.rig()
        var counter: UInt64 = 1_795_664_561_000
        for _ in 0..<100 {
            counter += 200
            loop.publish(Self.alive, "\(counter)")
            Self.step(loop)
        }
        #expect(!loop.status.latched && loop.heaterOn && loop.status.linksUp)
        let counters = loop.runtime.remoteStopCounters
        #expect(counters.keepAlivesStale.load(ordering: .relaxed) == 0 && counters.lastKeepAlive.load(ordering: .relaxed) == counter)

        // The same keep-alive over and over, an older one, a retained newer one, and garbage.
        for i in 0..<10 {
            loop.publish(Self.alive, "\(counter)")
            if i == 3 { loop.publish(Self.alive, "\(counter - 400)") }
            if i == 5 { loop.publish(Self.alive, "\(counter + 10_000)", retained: true) }
            if i == 7 { loop.publish(Self.alive, "alive") }
            Self.step(loop)
        }
        #expect(loop.status.latched && loop.status.latchCause == .connectionLost && !loop.status.linksUp)
        #expect(counters.keepAlivesStale.load(ordering: .relaxed) == 11)
        #expect(counters.keepAlivesUnrecognised.load(ordering: .relaxed) == 1)
        #expect(counters.retainedIgnored.load(ordering: .relaxed) == 1)
        // A reset while the replays go on is refused: the cause persists.
        loop.publish(Self.alive, "\(counter)")
        loop.publish("robotd/iot-rig-sim/estop/reset/operator", "reset \(loop.status.latchSequence)")
        Self.step(loop)
        #expect(loop.status.latched && loop.status.refusedResets == 1)

        // The station's counter advances again: the link is back, and a reset releases.
        for _ in 0..<5 {
            counter += 200
            loop.publish(Self.alive, "\(counter)")
            Self.step(loop)
        }
        #expect(loop.status.linksUp && loop.status.latched)
        counter += 200
        loop.publish(Self.alive, "\(counter)")
        loop.publish("robotd/iot-rig-sim/estop/reset/operator", "reset \(loop.status.latchSequence)")
        Self.step(loop)
        #expect(!loop.status.latched && loop.status.resets == 1)
    }

    /// A broker whose queue for robotd's connection is full drops new QoS 1 messages (the stop)
    /// and still passes QoS 0 ones: a keep-alive delivered at QoS 0 proves nothing of the stop's
    /// path. Advancing counters at QoS 0 alone: the link goes silent (a stop), each counted. The
    /// reset topics are subscribed at QoS 0 (a flood of them never fills that queue), the stop and
    /// the keep-alive at QoS 1.
    @Test func when_keepalives_arrive_at_qos_0_expect_them_not_counted_and_a_stop() throws {
        let loop = try Self.rig()
        let endpoint = try #require(loop.runtime.endpoints.first { $0.0 == "estop.remote" })
        guard case .mqtt(let m) = endpoint.1 else { Issue.record("not an MQTT endpoint"); return }
        #expect(m.subscriptions.first { $0.filter == "robotd/iot-rig-sim/estop/reset/+" }?.qos == 0)
        #expect(m.subscriptions.first { $0.filter == "robotd/iot-rig-sim/estop" }?.qos == 1)
        #expect(m.subscriptions.first { $0.filter == Self.alive }?.qos == 1)
        var counter: UInt64 = 1_795_664_561_000
        for _ in 0..<20 {
            counter += 200
            loop.publish(Self.alive, "\(counter)")
            Self.step(loop)
        }
        #expect(!loop.status.latched && loop.status.linksUp)
        for _ in 0..<10 {
            counter += 200
            loop.publish(Self.alive, "\(counter)", qos: 0)
            Self.step(loop)
        }
        let counters = loop.runtime.remoteStopCounters
        #expect(loop.status.latched && loop.status.latchCause == .connectionLost && !loop.status.linksUp)
        #expect(counters.keepAlivesQoS0.load(ordering: .relaxed) == 10)
        #expect(counters.lastKeepAlive.load(ordering: .relaxed) == counter - 2000)
    }

    /// A far-future counter is not taken (counted): the station's next real keep-alives still
    /// count, and `last_keepalive` stays where the station is. The first of a run is bounded too.
    @Test func when_a_keepalive_jumps_far_ahead_expect_it_refused_and_the_station_still_heard() throws {
        let counters = RemoteStopCounters()
        #expect(counters.advanceKeepAlive(to: RemoteStopCounters.largestFirstKeepAlive + 1) == .jumped)
        #expect(counters.advanceKeepAlive(to: 1) == .taken)
        #expect(counters.advanceKeepAlive(to: 1 + RemoteStopCounters.largestKeepAliveStep + 1) == .jumped)
        #expect(counters.advanceKeepAlive(to: 1 + RemoteStopCounters.largestKeepAliveStep) == .taken)

        let loop = try Self.rig()
        var counter: UInt64 = 1_795_664_561_000
        for i in 0..<30 {
            counter += 200
            loop.publish(Self.alive, "\(counter)")
            if i == 10 { loop.publish(Self.alive, "9000000000000000000") }
            if i == 12 { loop.publish(Self.alive, "\(counter + 1_000_000_000_000)") }
            Self.step(loop)
        }
        let c = loop.runtime.remoteStopCounters
        #expect(!loop.status.latched && loop.status.linksUp)
        #expect(c.keepAlivesJumped.load(ordering: .relaxed) == 2 && c.keepAlivesStale.load(ordering: .relaxed) == 0)
        #expect(c.lastKeepAlive.load(ordering: .relaxed) == counter)
    }

    /// A reset topic naming a user longer than 64 bytes: only counted, never recorded nor kept by
    /// the rate limit; 64 bytes is still a name (refused as not authorised, recorded).
    @Test func when_a_reset_topic_names_a_user_over_64_bytes_expect_it_only_counted() throws {
        let loop = try Self.rig()
        loop.publish("robotd/iot-rig-sim/estop/reset/" + String(repeating: "a", count: 65), "reset 1")
        loop.publish("robotd/iot-rig-sim/estop/reset/" + String(repeating: "b", count: 64), "reset 1")
        Self.step(loop)
        let c = loop.runtime.remoteStopCounters
        #expect(c.namesTooLong.load(ordering: .relaxed) == 1 && c.unauthorised.load(ordering: .relaxed) == 1)
        #expect(loop.runtime.remoteResets.records().map(\.user) == [String(repeating: "b", count: 64)])
    }
}
