import Foundation
import Glibc
import RTScheduler
import SafetyGuard
import Synchronization
import TestSupport
import Testing
@testable import Actuators
@testable import Transports

private let mosquittoSub = "/usr/bin/mosquitto_sub"
private let stdbuf = "/usr/bin/stdbuf"

/// An MQTT actuator across a broker outage, against real Mosquitto brokers and an independent
/// subscriber (mosquitto_sub). The control connection keeps QoS 1 publishes while disconnected
/// (within its bound) and libmosquitto sends them after the reconnect, in order, after the ones
/// it re-sends: the safe value written during the outage is the last word on its channel.
@Suite("MQTT actuator: the safe value written during a broker outage arrives, and last", .serialized,
       .enabled(if: MosquittoBroker.isInstalled && FileManager.default.isExecutableFile(atPath: mosquittoSub)
                    && FileManager.default.isExecutableFile(atPath: stdbuf), "mosquitto, mosquitto_sub or stdbuf is not installed"))
struct MQTTOutageOrderingTests {
    static let topic = "rig/heater/set"

    final class FailedConnects: Sendable {
        let count = Atomic<Int>(0)
    }

    struct Heater {
        var guardian: SafetyGuard
        let backend: MQTTBackend
        let client: MQTTClient
        let failedConnects: FailedConnects

        /// The control connection's settings (bounded at 1000, QoS 1 routes), with a fixed 4 s
        /// between reconnect attempts: the test starts the new broker and its subscriber right
        /// after a failed attempt, well before the next one.
        init(port: Int) throws {
            guardian = try SafetyGuard(configuration: GuardConfiguration(channels: [
                ChannelConfiguration(name: "heater", limits: .discrete(DiscreteLimits()), isMotion: false),
            ]))
            let failedConnects = FailedConnects()
            self.failedConnects = failedConnects
            client = try MQTTClient(options: MQTTOptions(port: port, clientID: "outage-order-\(getpid())", keepaliveSeconds: 5,
                                                         reconnectMinSeconds: 4, reconnectMaxSeconds: 4, maxQueuedMessages: 1000),
                                    onEvent: { event in
                                        if case .connectFailed = event { failedConnects.count.add(1, ordering: .relaxed) }
                                    }, onMessage: { _ in })
            backend = MQTTBackend(name: "rig", routes: [
                .init(channel: ChannelID(index: 0), name: "heater", topic: MQTTOutageOrderingTests.topic, stateNames: ["OFF", "ON"],
                      safeValue: .discrete(0), qos: 1),
            ], client: client)
        }

        mutating func switchOn() throws {
            let t = Instant(nanoseconds: 1_000_000)
            let command = Command(channel: ChannelID(index: 0), value: .discrete(1), origin: .policy, issuedAt: t, validUntil: t + .seconds(1))
            try backend.write(try #require(guardian.check(command, now: t).approved), token: DeviceWriteToken())
        }
    }

    /// mosquitto_sub on the channel's topic (QoS 1), once its SUBACK is in.
    static func subscriber(port: Int) throws -> Subprocess {
        // Line-buffered: its debug line "Subscribed" would otherwise wait in a pipe buffer.
        let sub = try Subprocess(stdbuf, ["-oL", mosquittoSub, "-h", "127.0.0.1", "-p", "\(port)", "-i", "outage-watcher-\(getpid())",
                                          "-t", topic, "-q", "1", "-v", "-d"])
        try #require(sub.waitFor("Subscribed (mid"), "mosquitto_sub did not subscribe: \(sub.stdout) \(sub.stderr)")
        return sub
    }

    /// The payloads the subscriber received on the channel, in order.
    static func received(_ sub: Subprocess) -> [String] {
        sub.stdout.split(separator: "\n").compactMap { line in
            line.hasPrefix(topic + " ") ? String(line.dropFirst(topic.count + 1)) : nil
        }
    }

    /// The outage, from the moment the broker is gone: the back end writes OFF (kept, QoS 1);
    /// after a failed reconnect attempt a new broker comes up on the same port with the subscriber
    /// on it before the back end reconnects; then what the subscriber receives.
    static func outage(_ heater: Heater, restart: () throws -> Void, port: Int, keptBefore: Int) throws -> [String] {
        let client = heater.client
        #expect(waitUntil(seconds: 10) { !client.isConnected })
        try heater.backend.applySafeState(token: DeviceWriteToken())
        #expect(client.queuedMessages == keptBefore + 1)
        let failed = heater.failedConnects.count.load(ordering: .relaxed)
        #expect(waitUntil(seconds: 15) { heater.failedConnects.count.load(ordering: .relaxed) > failed })
        try restart()
        let sub = try subscriber(port: port)
        defer { sub.signal(SIGKILL); _ = sub.wait(seconds: 5) }
        try #require(client.counters.connects.load(ordering: .relaxed) == 1,
                     "the back end reconnected before the subscriber was in: the test saw no window")
        #expect(waitUntil(seconds: 20) { received(sub).contains("OFF") }, "\(sub.stdout)")
        // Anything re-sent after the safe value would come within this.
        usleep(1_500_000)
        #expect(waitUntil(seconds: 10) { client.queuedMessages == 0 })
        return received(sub)
    }

    /// ON acknowledged by the first broker; the broker is killed; OFF written during the outage
    /// reaches the subscriber on the new broker, and nothing follows it.
    @Test func when_the_safe_value_is_written_during_an_outage_expect_the_new_brokers_subscriber_to_receive_it() throws {
        let broker = try MosquittoBroker()
        try broker.start()
        defer { broker.stop() }
        var heater = try Heater(port: broker.port)
        try heater.client.start()
        defer { heater.client.stop() }
        #expect(waitUntil { heater.client.isConnected })
        try heater.switchOn()
        #expect(waitUntil { heater.client.queuedMessages == 0 && heater.client.counters.confirmed.load(ordering: .relaxed) == 1 })

        kill(try #require(broker.pid), SIGKILL)
        broker.stop()  // reaps it
        let got = try Self.outage(heater, restart: { try broker.start() }, port: broker.port, keptBefore: 0)
        #expect(got == ["OFF"])
    }

    /// A first broker that never acknowledges (scripts/peers/refusing_broker.py): ON is still
    /// unconfirmed when it is killed, so libmosquitto re-sends it after the reconnect — before
    /// OFF, written during the outage. The subscriber sees ON then OFF: the command re-sent never
    /// overtakes the safe value.
    @Test func when_the_command_before_the_outage_was_never_acknowledged_expect_it_resent_before_the_safe_value() throws {
        let peer = try MinimalBroker(["--refusals", "0"])
        var peerKilled = false
        defer { if !peerKilled { peer.stop() } }  // never a second SIGKILL to a pid reaped already
        var heater = try Heater(port: peer.port)
        try heater.client.start()
        defer { heater.client.stop() }
        #expect(waitUntil { heater.client.isConnected })
        try heater.switchOn()
        usleep(300_000)
        #expect(heater.client.queuedMessages == 1 && heater.client.counters.confirmed.load(ordering: .relaxed) == 0)

        peer.stop()  // SIGKILL
        peerKilled = true
        let broker = try MosquittoBroker(port: peer.port)
        defer { broker.stop() }
        let got = try Self.outage(heater, restart: { try broker.start() }, port: peer.port, keptBefore: 1)
        #expect(got.last == "OFF")
        if let firstOff = got.firstIndex(of: "OFF") { #expect(!got[firstOff...].contains("ON"), "\(got)") }
        #expect(got == ["ON", "OFF"])
        #expect(heater.client.counters.confirmed.load(ordering: .relaxed) == 2)
    }

    /// The supervisor's emergency safe state through this back end is not held up by the
    /// client's ledger lock (held here by a thread, as the network thread holds it while it
    /// sweeps): it returns within 400 ms while the lock stays held for 2 s, and once the lock is
    /// free the ledger counts both messages (the broker never acknowledges, so they stay counted).
    @Test func when_the_ledger_lock_is_held_expect_the_emergency_safe_state_not_delayed_and_counted_afterwards() throws {
        let peer = try MinimalBroker(["--refusals", "0"])
        defer { peer.stop() }
        let client = try MQTTClient(options: MQTTOptions(port: peer.port, clientID: "emergency-backend-\(getpid())", keepaliveSeconds: 60,
                                                         maxQueuedMessages: 1000)) { _ in }
        let backend = MQTTBackend(name: "rig", routes: [
            .init(channel: ChannelID(index: 0), name: "heater", topic: "rig/heater/set", stateNames: ["OFF", "ON"], safeValue: .discrete(0)),
            .init(channel: ChannelID(index: 1), name: "fan", topic: "rig/fan/duty", safeValue: .continuous(0)),
        ], client: client)
        try client.start()
        defer { client.stop() }
        #expect(waitUntil { client.isConnected })

        let ledger = client.ledger
        let flag = HoldFlag()  // 1: held, 2: let go
        Thread {
            ledger.withLock { _ in
                flag.state.store(1, ordering: .releasing)
                usleep(2_000_000)
            }
            flag.state.store(2, ordering: .releasing)
        }.start()
        #expect(waitUntil { flag.state.load(ordering: .acquiring) == 1 })
        let start = Date()
        try backend.emergencySafeState(token: DeviceWriteToken())
        let seconds = Date().timeIntervalSince(start)
        #expect(flag.state.load(ordering: .acquiring) == 1, "the lock was let go before the emergency safe state returned")
        #expect(seconds < 0.4, "the emergency safe state took \(seconds) s while the ledger's lock was held")
        #expect(waitUntil { flag.state.load(ordering: .acquiring) == 2 })
        #expect(client.queuedMessages == 2)
        #expect(client.ledger.deferred.load(ordering: .relaxed) == 2)
        #expect(client.counters.emergencyUnaccounted.load(ordering: .relaxed) == 0)
    }
}

private final class HoldFlag: Sendable {
    let state = Atomic<Int>(0)
}
