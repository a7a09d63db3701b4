import Foundation
import Synchronization
import TestSupport
import Testing
@testable import Transports

final class Inbox: Sendable {
    let messages = Mutex<[MQTTMessage]>([])
    let events = Mutex<[MQTTClient.LinkEvent]>([])
    func texts(on topic: String? = nil) -> [String] {
        messages.withLock { $0 }.filter { topic == nil || $0.topic == topic }.map { String(decoding: $0.payload, as: UTF8.self) }
    }
    func count(_ event: MQTTClient.LinkEvent) -> Int { events.withLock { $0 }.filter { $0 == event }.count }
}


@Suite("MQTT client against a real Mosquitto broker", .serialized, .enabled(if: MosquittoBroker.isInstalled, "mosquitto is not installed"))
struct MQTTClientTests {
    static func client(_ id: String, port: Int, inbox: Inbox, will: MQTTOptions.Will? = nil) throws -> MQTTClient {
        try MQTTClient(options: MQTTOptions(port: port, clientID: id, keepaliveSeconds: 5, will: will,
                                            reconnectMinSeconds: 1, reconnectMaxSeconds: 1),
                       onEvent: { e in inbox.events.withLock { $0.append(e) } },
                       onMessage: { m in inbox.messages.withLock { $0.append(m) } })
    }

    @Test func when_publishing_and_subscribing_with_wildcards_expect_messages_both_ways() throws {
        let broker = try MosquittoBroker()
        try broker.start()
        defer { broker.stop() }
        let robotInbox = Inbox(), rigInbox = Inbox()
        let robot = try Self.client("robotd-test-a", port: broker.port, inbox: robotInbox)
        let rig = try Self.client("rig-test-b", port: broker.port, inbox: rigInbox)
        try robot.subscribe(.init(filter: "rig/+/temperature", qos: 1))
        try rig.subscribe(.init(filter: "robotd/#", qos: 0))
        try robot.start()
        try rig.start()
        #expect(waitUntil { robot.counters.subscribed.load(ordering: .relaxed) >= 1 && rig.counters.subscribed.load(ordering: .relaxed) >= 1 })
        try rig.publish(topic: "rig/bench/temperature", payload: Array("21.5".utf8), qos: 1, retain: false)
        try rig.publish(topic: "rig/bench/humidity", payload: Array("40".utf8))
        try robot.publish(topic: "robotd/r1/status", payload: Array(#"{"state":"running"}"#.utf8), qos: 1, retain: true)
        #expect(waitUntil { robotInbox.texts() == ["21.5"] && rigInbox.texts() == [#"{"state":"running"}"#] })
        #expect(robotInbox.messages.withLock { $0.first?.topic } == "rig/bench/temperature")
        robot.stop()
        rig.stop()
    }

    /// A subscription the broker refuses (SUBACK 0x80: an ACL plugin's deny — Mosquitto's own
    /// acl_file grants every SUBSCRIBE and filters deliveries instead, so an independent minimal
    /// broker plays the part) marks that connection; when the next connection's are granted, the
    /// client is healthy again (robotd's broker link, a stop cause, follows `hasRefusedSubscription`).
    @Test func when_a_refused_subscription_is_granted_after_a_reconnect_expect_the_refusal_to_clear() throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/peers/refusing_broker.py").path
        let peer = try Subprocess("/usr/bin/python3", [script, "--refusals", "1"])
        defer { peer.signal(SIGKILL); _ = peer.wait(seconds: 5) }
        #expect(peer.waitFor("listening"))
        let port = try #require(peer.stdout.split(separator: " ").last.flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) })
        let inbox = Inbox()
        let client = try Self.client("robotd-acl-refusal", port: port, inbox: inbox)
        try client.subscribe(.init(filter: "robotd/r1/estop", qos: 1))
        try client.start()
        defer { client.stop() }
        #expect(waitUntil { client.hasRefusedSubscription })
        #expect(client.counters.subscriptionsRefused.load(ordering: .relaxed) == 1)
        // The peer drops that connection after a second; the client comes back and is granted.
        #expect(waitUntil(seconds: 10) { client.counters.connects.load(ordering: .relaxed) >= 2 && client.counters.subscribed.load(ordering: .relaxed) >= 1 })
        #expect(client.isConnected && !client.hasRefusedSubscription)
        // The count since start keeps the history.
        #expect(client.counters.subscriptionsRefused.load(ordering: .relaxed) == 1)
    }

    /// The broker is stopped and started again mid-test: the client reconnects by itself,
    /// re-subscribes, and receives again.
    @Test func when_the_broker_restarts_expect_reconnect_resubscribe_and_messages_again() throws {
        let broker = try MosquittoBroker()
        try broker.start()
        let inbox = Inbox(), senderInbox = Inbox()
        let client = try Self.client("robotd-restart", port: broker.port, inbox: inbox)
        try client.subscribe(.init(filter: "rig/#", qos: 1))
        try client.start()
        #expect(waitUntil { client.counters.subscribed.load(ordering: .relaxed) >= 1 })
        let sender = try Self.client("sender-1", port: broker.port, inbox: senderInbox)
        try sender.start()
        #expect(waitUntil { sender.isConnected })
        try sender.publish(topic: "rig/a", payload: Array("before".utf8), qos: 1)
        #expect(waitUntil { inbox.texts() == ["before"] })
        sender.stop()

        broker.stop()
        #expect(waitUntil { !client.isConnected })
        #expect(inbox.events.withLock { $0 }.contains { if case .disconnected = $0 { true } else { false } })
        try broker.start()  // same port
        defer { broker.stop() }
        #expect(waitUntil(seconds: 15) { client.counters.subscribed.load(ordering: .relaxed) >= 2 })  // re-subscribed
        #expect(inbox.count(.connected) == 2)
        let sender2 = try Self.client("sender-2", port: broker.port, inbox: senderInbox)
        try sender2.start()
        #expect(waitUntil { sender2.isConnected })
        try sender2.publish(topic: "rig/b", payload: Array("after".utf8), qos: 1)
        #expect(waitUntil { inbox.texts() == ["before", "after"] })
        sender2.stop()
        client.stop()
    }

    @Test func when_a_client_dies_expect_its_last_will_published() throws {
        let broker = try MosquittoBroker()
        try broker.start()
        defer { broker.stop() }
        let watcherInbox = Inbox(), dyingInbox = Inbox()
        let watcher = try Self.client("watcher", port: broker.port, inbox: watcherInbox)
        try watcher.subscribe(.init(filter: "robotd/+/status", qos: 1))
        try watcher.start()
        let dying = try Self.client("dying", port: broker.port, inbox: dyingInbox,
                                    will: .init(topic: "robotd/r1/status", payload: Array("offline".utf8), qos: 1, retain: true))
        try dying.start()
        #expect(waitUntil { watcher.counters.subscribed.load(ordering: .relaxed) >= 1 && dying.isConnected })
        dying.abort()  // no DISCONNECT: the broker publishes the will
        #expect(waitUntil(seconds: 15) { watcherInbox.texts(on: "robotd/r1/status") == ["offline"] })
        watcher.stop()
    }

    @Test func when_the_broker_is_down_at_start_expect_connection_once_it_comes_up() throws {
        let broker = try MosquittoBroker()
        let inbox = Inbox()
        let client = try Self.client("early", port: broker.port, inbox: inbox)
        try client.start()
        usleep(300_000)
        #expect(!client.isConnected)
        try broker.start()
        defer { broker.stop() }
        #expect(waitUntil(seconds: 15) { client.isConnected })
        client.stop()
    }

    @Test func when_filters_use_wildcards_expect_mqtt_matching_rules() {
        #expect(MQTTClient.matches(filter: "rig/+/temperature", topic: "rig/bench/temperature"))
        #expect(!MQTTClient.matches(filter: "rig/+/temperature", topic: "rig/bench/x/temperature"))
        #expect(MQTTClient.matches(filter: "rig/#", topic: "rig/bench/x/temperature"))
        #expect(MQTTOptions.parseBroker("127.0.0.1:1884")! == ("127.0.0.1", 1884))
        #expect(MQTTOptions.parseBroker("localhost")! == ("localhost", 1883))
        #expect(MQTTOptions.parseBroker("host:99999") == nil)
    }
}

@Suite("MQTT payloads")
struct MQTTPayloadTests {
    @Test func when_payload_is_a_bare_number_or_json_expect_the_value() {
        #expect(MQTTPayload.number(Array(" 21.5\n".utf8), fieldPath: nil) == .success(21.5))
        #expect(MQTTPayload.number(Array("ON".utf8), fieldPath: nil) == .success(1))
        let json = Array(#"{"sensor":{"temperature":22.25,"values":[1,2,3.5]},"ok":true}"#.utf8)
        #expect(MQTTPayload.number(json, fieldPath: "sensor.temperature") == .success(22.25))
        #expect(MQTTPayload.number(json, fieldPath: "sensor.values[2]") == .success(3.5))
        #expect(MQTTPayload.number(json, fieldPath: "ok") == .success(1))
        #expect(MQTTPayload.number(json, fieldPath: "sensor.missing") == .failure(.missingField("sensor.missing")))
        #expect(MQTTPayload.number(json, fieldPath: "sensor.values[9]") == .failure(.missingField("sensor.values[9]")))
        #expect(MQTTPayload.number(Array("{broken".utf8), fieldPath: "a") == .failure(.notJSON))
        #expect(MQTTPayload.number(Array("hot".utf8), fieldPath: nil) == .failure(.notANumber))
    }
}
