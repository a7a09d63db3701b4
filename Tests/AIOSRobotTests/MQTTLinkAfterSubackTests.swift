import Foundation
import Glibc
import RTScheduler
import RobotConfig
import TestSupport
import Testing
import Transports
@testable import AIOSRobot

/// After a reconnect, the broker link (the remote stop's topics, the `mqtt` inputs) counts as up
/// only once the SUBACKs of its subscriptions arrive, not at the CONNACK: a stop published in
/// between is not delivered to robotd. A minimal broker answers the SUBSCRIBEs of its second
/// connection 2 s late.
@Suite("The broker link after a reconnect: up at the SUBACK, not at the CONNACK", .serialized)
struct MQTTLinkAfterSubackTests {
    @Test func when_the_subacks_come_late_after_a_reconnect_expect_the_link_down_until_they_arrive() throws {
        let broker = try MinimalBroker(["--refusals", "0", "--drop-first-after", "2", "--suback-delay", "2"])
        defer { broker.stop() }
        let configuration = try Examples.configuration("iot-rig-sim.yaml") {
            $0 = $0.replacingOccurrences(of: "broker: 127.0.0.1:18830", with: "broker: 127.0.0.1:\(broker.port)")
                .replacingOccurrences(of: "client_id: robotd-iot-rig-sim", with: "client_id: robotd-suback-\(getpid())")
                // One connection to the broker: the control one.
                .replacingOccurrences(of: "  keepalive_s: 5\n", with: "  keepalive_s: 5\n  telemetry: {enabled: false}\n")
        }
        #expect(configuration.mqtt?.telemetry?.enabled == false)
        var options = RobotDaemon.Options()
        options.realtime = RealtimeOptions()
        let lines = LogLines()
        let daemon = try RobotDaemon(configuration: configuration, options: options) { line in lines.list.withLock { $0.append(line) } }
        try daemon.start()
        defer { daemon.stop(reason: "test") }
        let client = try #require(daemon.mqtt)
        // The first connection's subscriptions are granted at once: the link is up.
        #expect(waitUntil { daemon.runtime.status.linksUp }, "\(lines.list.withLock { $0 })")

        // The broker closes it; the client reconnects, and the SUBACKs come 2 s after the CONNACK.
        #expect(waitUntil(seconds: 10) { client.counters.connects.load(ordering: .relaxed) >= 2 && client.isConnected })
        usleep(600_000)  // several guard ticks (100 ms) into the wait for the SUBACKs
        let stillAwaited = !client.isSubscribed
        #expect(stillAwaited, "the SUBACKs came early: the test saw no window")
        #expect(client.isConnected && !daemon.runtime.status.linksUp, "connected, SUBACKs awaited, yet the link counted as up")
        #expect(waitUntil(seconds: 10) { client.isSubscribed && daemon.runtime.status.linksUp })
    }
}
