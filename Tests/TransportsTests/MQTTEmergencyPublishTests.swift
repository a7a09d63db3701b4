import Foundation
import Glibc
import TestSupport
import Testing
@testable import Transports

/// The supervisor's emergency publish never waits for the ledger's lock, which the network thread
/// holds while it sweeps: a thread holding that lock (as a long sweep would) does not delay it,
/// and once the lock is free the ledger counts the message as if it had waited.
@Suite("MQTT client: an emergency publish never waits for the ledger's lock", .serialized)
struct MQTTEmergencyPublishTests {
    static func client(_ id: String, port: Int, maxMessages: Int?) throws -> MQTTClient {
        try MQTTClient(options: MQTTOptions(port: port, clientID: "\(id)-\(getpid())", keepaliveSeconds: 60, reconnectMinSeconds: 1,
                                            reconnectMaxSeconds: 1, maxQueuedMessages: maxMessages)) { _ in }
    }

    /// The lock is held for 2 s (then let go by itself, so a publish that waited would finish
    /// late rather than never). Three emergency publishes each return well inside that: under
    /// 400 ms in total on this shared machine, where waiting would take about 2 s.
    static func publishWhileHeld(_ client: MQTTClient, topic: String, count: Int) throws -> (seconds: Double, holder: LockHolder) {
        let holder = LockHolder()
        holder.hold(client.ledger, seconds: 2)
        try #require(holder.waitUntilHeld())
        let start = Date()
        for i in 0..<count { try client.publishEmergency(topic: topic, payload: Array("OFF\(i)".utf8), qos: 1, retain: false) }
        let seconds = Date().timeIntervalSince(start)
        #expect(!holder.isDone, "the lock was let go before the publishes returned: they waited")
        holder.release()
        return (seconds, holder)
    }

    @Test(.enabled(if: MosquittoBroker.isInstalled, "mosquitto is not installed"))
    func when_the_ledger_lock_is_held_expect_the_emergency_publish_to_go_out_at_once_and_be_counted_afterwards() throws {
        let broker = try MosquittoBroker()
        try broker.start()
        defer { broker.stop() }
        let inbox = Inbox()
        let watcher = try MQTTClient(options: MQTTOptions(port: broker.port, clientID: "emergency-watcher-\(getpid())")) { m in
            inbox.messages.withLock { $0.append(m) }
        }
        try watcher.subscribe(.init(filter: "rig/+/set", qos: 1))
        try watcher.start()
        defer { watcher.stop() }
        let client = try Self.client("emergency-publisher", port: broker.port, maxMessages: 50)
        try client.start()
        defer { client.stop() }
        #expect(waitUntil { client.isConnected && watcher.isSubscribed })

        let (seconds, holder) = try Self.publishWhileHeld(client, topic: "rig/heater/set", count: 3)
        #expect(seconds < 0.4, "three emergency publishes took \(seconds) s while the lock was held")
        // Went out while the lock was held: the broker delivered them.
        #expect(waitUntil { inbox.texts(on: "rig/heater/set") == ["OFF0", "OFF1", "OFF2"] })
        #expect(waitUntil { holder.isDone })
        // Accounted through the slots, then confirmed (PUBACK): nothing left over, nothing lost.
        #expect(client.ledger.deferred.load(ordering: .relaxed) == 3)
        #expect(waitUntil { client.queuedMessages == 0 && client.queuedBytes == 0 })
        #expect(client.counters.confirmed.load(ordering: .relaxed) == 3)
        #expect(client.counters.published.load(ordering: .relaxed) == 3)
        #expect(client.counters.emergencyUnaccounted.load(ordering: .relaxed) == 0)
    }

    /// A broker that never acknowledges: what the emergency publishes left in the slots is in the
    /// count once the lock is free — exactly, bytes too — and counts against the bound, which
    /// refuses an ordinary publish afterwards. The bound itself never refuses an emergency one.
    @Test func when_the_broker_never_acknowledges_expect_the_emergency_publishes_counted_exactly_and_held_against_the_bound() throws {
        let broker = try MinimalBroker(["--refusals", "0"])
        defer { broker.stop() }
        let client = try Self.client("emergency-unacked", port: broker.port, maxMessages: 2)
        try client.start()
        defer { client.stop() }
        #expect(waitUntil { client.isConnected })
        try client.publish(topic: "rig/heater/set", payload: Array("ON".utf8), qos: 1)
        try client.publish(topic: "rig/fan/set", payload: Array("ON".utf8), qos: 1)
        #expect(client.queueIsFull)

        let (seconds, holder) = try Self.publishWhileHeld(client, topic: "rig/heater/set", count: 2)
        #expect(seconds < 0.4, "two emergency publishes took \(seconds) s while the lock was held")
        #expect(waitUntil { holder.isDone })
        #expect(client.queuedMessages == 4)
        let heater = "rig/heater/set".utf8.count, fan = "rig/fan/set".utf8.count
        #expect(client.queuedBytes == (heater + 2) + (fan + 2) + 2 * (heater + 4))
        #expect(client.ledger.deferred.load(ordering: .relaxed) == 2)
        var refusal: Int32?
        do { try client.publish(topic: "rig/fan/set", payload: Array("ON".utf8), qos: 1) } catch let e as MQTTError { refusal = e.code }
        #expect(refusal == MQTTError.queueFullCode)
        // With the lock free the same call is counted at once, and the bound still lets it through.
        try client.publishEmergency(topic: "rig/fan/set", payload: Array("OFF".utf8), qos: 1, retain: false)
        #expect(client.queuedMessages == 5 && client.ledger.deferred.load(ordering: .relaxed) == 2)
        #expect(client.counters.confirmed.load(ordering: .relaxed) == 0)
    }
}
