import Foundation
import Glibc
import RTScheduler
import SafetyGuard
import TestSupport
import Testing
@testable import Actuators
@testable import Transports

private let mosquittoSub = "/usr/bin/mosquitto_sub"
private let stdbuf = "/usr/bin/stdbuf"

/// An MQTT actuator's safe value when the broker stops answering (SIGSTOP: the connection stays
/// up and nothing is read or acknowledged, as over a half-open link), against a real Mosquitto and
/// an independent subscriber (mosquitto_sub, QoS 1). The safe value is never refused for a full
/// queue, and never waits behind a backlog of stale commands: the client keeps at most one command
/// per channel topic outstanding, and a safe value replaces the one waiting.
@Suite("MQTT actuator: the safe value is never refused for a full queue, nor queued behind stale commands", .serialized,
       .enabled(if: MosquittoBroker.isInstalled && FileManager.default.isExecutableFile(atPath: mosquittoSub)
                    && FileManager.default.isExecutableFile(atPath: stdbuf), "mosquitto, mosquitto_sub or stdbuf is not installed"))
struct MQTTSafeValueTests {
    static let topic = "rig/fan/duty"

    /// A fan (continuous, safe value 0, QoS 1) on the control connection's settings: bounded at
    /// 1000 messages, as `RobotDaemon` makes it.
    struct Fan {
        var guardian: SafetyGuard
        let client: MQTTClient
        let backend: MQTTBackend
        var ms: Int64 = 0

        init(port: Int, keepaliveSeconds: Int = 60) throws {
            guardian = try SafetyGuard(configuration: GuardConfiguration(channels: [
                ChannelConfiguration(name: "fan", limits: .continuous(.position(minPosition: 0, maxPosition: 100_000)), isMotion: false),
            ]))
            client = try MQTTClient(options: MQTTOptions(port: port, clientID: "safe-value-\(getpid())", keepaliveSeconds: keepaliveSeconds,
                                                         reconnectMinSeconds: 1, reconnectMaxSeconds: 1, maxQueuedMessages: 1000)) { _ in }
            backend = MQTTBackend(name: "rig", routes: [
                .init(channel: ChannelID(index: 0), name: "fan", topic: MQTTSafeValueTests.topic, safeValue: .continuous(0), qos: 1),
            ], client: client)
        }

        /// A policy's command, approved by the guard and written as the actuator's writer does.
        mutating func command(_ value: Double) throws {
            ms += 1
            let t = Instant(nanoseconds: ms * 1_000_000)
            let c = Command(channel: ChannelID(index: 0), value: .continuous(value), origin: .policy, issuedAt: t, validUntil: t + .seconds(10))
            try backend.write(try #require(guardian.check(c, now: t).approved), token: DeviceWriteToken())
        }
    }

    /// A broker whose queue for the subscriber holds every message of the test (Mosquitto's
    /// default of 1000 would drop some of a 1001-message burst for a slow reader).
    static func broker() throws -> MosquittoBroker {
        let broker = try MosquittoBroker(settings: ["allow_anonymous true", "max_queued_messages 10000"])
        try broker.start()
        return broker
    }

    static func subscriber(port: Int) throws -> Subprocess {
        // Line-buffered: its debug line "Subscribed" would otherwise wait in a pipe buffer.
        let sub = try Subprocess(stdbuf, ["-oL", mosquittoSub, "-h", "127.0.0.1", "-p", "\(port)", "-i", "safe-watcher-\(getpid())",
                                          "-t", topic, "-q", "1", "-v", "-d"])
        try #require(sub.waitFor("Subscribed (mid"), "mosquitto_sub did not subscribe: \(sub.stdout) \(sub.stderr)")
        return sub
    }

    /// The payloads the subscriber received on the topic, in order.
    static func received(_ sub: Subprocess) -> [String] {
        sub.stdout.split(separator: "\n").compactMap { line in
            line.hasPrefix(topic + " ") ? String(line.dropFirst(topic.count + 1)) : nil
        }
    }

    /// Waits until the subscriber has the safe value, then a while for anything that would follow it.
    static func deliveries(_ sub: Subprocess) -> [String] {
        #expect(waitUntil(seconds: 20) { received(sub).contains("0") }, "the safe value never arrived: \(received(sub).suffix(5))")
        usleep(1_500_000)
        return received(sub)
    }

    static func safeState(_ fan: Fan) {
        do { try fan.backend.applySafeState(token: DeviceWriteToken()) } catch {
            Issue.record("the safe state was refused: \(error)")
        }
    }

    /// Medium 3: the queue's bound (1000) full of unacknowledged QoS 1 commands on the channel's
    /// topic — handed over as the back end did before, one message each — while the broker is
    /// stopped. The bound refuses a further command; the safe state is still accepted (counted
    /// over the bound), and once the broker reads again the subscriber gets all 1000, then the
    /// safe value, last.
    @Test func when_the_queue_is_full_of_unacknowledged_commands_expect_the_safe_value_accepted_and_delivered_last() throws {
        let broker = try Self.broker()
        defer { broker.stop() }
        let pid = try #require(broker.pid)
        let sub = try Self.subscriber(port: broker.port)
        defer { sub.signal(SIGKILL); _ = sub.wait(seconds: 5) }
        let fan = try Fan(port: broker.port)
        try fan.client.start()
        defer { fan.client.stop() }
        #expect(waitUntil { fan.client.isConnected })

        kill(pid, SIGSTOP)
        var stopped = true
        defer { if stopped { kill(pid, SIGCONT) } }
        for i in 1...1000 { try fan.client.publish(topic: Self.topic, payload: Array("\(i)".utf8), qos: 1) }
        #expect(fan.client.queueIsFull && fan.client.queuedMessages == 1000)
        var refusal: Int32?
        do { try fan.client.publish(topic: Self.topic, payload: Array("1001".utf8), qos: 1) } catch let e as MQTTError { refusal = e.code }
        #expect(refusal == MQTTError.queueFullCode)

        Self.safeState(fan)
        #expect(fan.client.queuedMessages == 1001)
        #expect(fan.client.counters.safeValuesOverBound.load(ordering: .relaxed) == 1)

        kill(pid, SIGCONT)
        stopped = false
        let got = Self.deliveries(sub)
        #expect(got == (1...1000).map { String($0) } + ["0"], "\(got.count) messages, the last ones \(got.suffix(3))")
        #expect(waitUntil { fan.client.queuedMessages == 0 })
    }

    /// A policy keeps commanding while the broker is stopped (1500 commands, as a 100 Hz loop
    /// gives in 15 s): the first goes out and stays unacknowledged, each later one replaces the one
    /// waiting, so nothing reaches the bound; the safe state replaces the last. Once the broker
    /// reads again the subscriber gets the one command already handed over, then the safe value —
    /// never a backlog of stale commands ahead of it.
    @Test func when_a_policy_keeps_commanding_a_stopped_broker_expect_one_stale_command_at_most_ahead_of_the_safe_value() throws {
        let broker = try Self.broker()
        defer { broker.stop() }
        let pid = try #require(broker.pid)
        let sub = try Self.subscriber(port: broker.port)
        defer { sub.signal(SIGKILL); _ = sub.wait(seconds: 5) }
        var fan = try Fan(port: broker.port)
        try fan.client.start()
        defer { fan.client.stop() }
        #expect(waitUntil { fan.client.isConnected })

        kill(pid, SIGSTOP)
        var stopped = true
        defer { if stopped { kill(pid, SIGCONT) } }
        var refused = 0
        for i in 1...1500 {
            do { try fan.command(Double(i)) } catch { refused += 1 }
        }
        #expect(refused == 0)
        #expect(fan.client.queuedMessages == 1)
        #expect(fan.client.counters.superseded.load(ordering: .relaxed) == 1498)
        Self.safeState(fan)
        #expect(fan.client.counters.superseded.load(ordering: .relaxed) == 1499)
        #expect(fan.client.queuedMessages == 2)

        kill(pid, SIGCONT)
        stopped = false
        let got = Self.deliveries(sub)
        #expect(got == ["1", "0"], "\(got.count) messages: \(got.prefix(3)) … \(got.suffix(3))")
        #expect(waitUntil { fan.client.queuedMessages == 0 })
    }

    /// The supervisor's emergency safe state, which never waits for the topic's lock, while a
    /// command waits for the outstanding one: the command is dropped when that is acknowledged,
    /// never sent after the safe value.
    @Test func when_an_emergency_safe_state_comes_while_a_command_waits_expect_the_command_never_sent() throws {
        let broker = try Self.broker()
        defer { broker.stop() }
        let pid = try #require(broker.pid)
        let sub = try Self.subscriber(port: broker.port)
        defer { sub.signal(SIGKILL); _ = sub.wait(seconds: 5) }
        var fan = try Fan(port: broker.port)
        try fan.client.start()
        defer { fan.client.stop() }
        #expect(waitUntil { fan.client.isConnected })

        kill(pid, SIGSTOP)
        var stopped = true
        defer { if stopped { kill(pid, SIGCONT) } }
        try fan.command(1)
        try fan.command(2)  // waits for 1
        try fan.backend.emergencySafeState(token: DeviceWriteToken())
        #expect(fan.client.queuedMessages == 2)

        kill(pid, SIGCONT)
        stopped = false
        let got = Self.deliveries(sub)
        #expect(got == ["1", "0"])
        #expect(fan.client.counters.superseded.load(ordering: .relaxed) == 1)
    }

    /// The review's reconnect case: commands given while the broker is stopped, until the client
    /// gives the link up (keepalive 5 s, the least libmosquitto takes). What waited is dropped with
    /// the connection; after the reconnect libmosquitto re-sends the one command outstanding, and
    /// the reactivation's safe value (given once the subscriber saw that command) is accepted and
    /// arrives last.
    @Test func when_the_link_is_given_up_while_commands_wait_expect_them_dropped_and_the_reactivation_safe_value_last() throws {
        let broker = try Self.broker()
        defer { broker.stop() }
        let pid = try #require(broker.pid)
        let sub = try Self.subscriber(port: broker.port)
        defer { sub.signal(SIGKILL); _ = sub.wait(seconds: 5) }
        var fan = try Fan(port: broker.port, keepaliveSeconds: 5)
        try fan.client.start()
        defer { fan.client.stop() }
        #expect(waitUntil { fan.client.isConnected })

        kill(pid, SIGSTOP)
        var stopped = true
        defer { if stopped { kill(pid, SIGCONT) } }
        for i in 1...50 { try fan.command(Double(i)) }
        #expect(waitUntil(seconds: 15) { !fan.client.isConnected })
        #expect(fan.client.counters.superseded.load(ordering: .relaxed) == 49)
        // Not connected: a command is refused; the safe value would be kept.
        #expect(throws: ActuatorError.self) { try fan.command(51) }

        kill(pid, SIGCONT)
        stopped = false
        #expect(waitUntil(seconds: 20) { fan.client.isConnected })
        // The command outstanding, re-sent; a command that had waited would follow it now.
        #expect(waitUntil(seconds: 10) { Self.received(sub).contains("1") })
        usleep(500_000)
        Self.safeState(fan)
        let got = Self.deliveries(sub)
        #expect(got.last == "0")
        #expect(Set(got.filter { $0 != "0" }) == ["1"], "stale commands delivered: \(got)")
        #expect(waitUntil { fan.client.queuedMessages == 0 })
    }
}
