import Foundation
import Glibc
import TestSupport
import Testing
@testable import Transports

/// What the client counts as handed to libmosquitto and not yet confirmed, and its bounds
/// (`maxQueuedMessages`, `maxQueuedBytes`): libmosquitto keeps QoS 1 messages across a reconnect
/// and sends them again, so the count is not reset at a connect.
@Suite("MQTT client: the count of unconfirmed messages across reconnects, and its byte bound", .serialized)
struct MQTTLedgerTests {
    static func client(_ id: String, port: Int, maxMessages: Int? = nil, maxBytes: Int? = nil) throws -> MQTTClient {
        try MQTTClient(options: MQTTOptions(port: port, clientID: "\(id)-\(getpid())", keepaliveSeconds: 60, reconnectMinSeconds: 1,
                                            reconnectMaxSeconds: 1, maxQueuedMessages: maxMessages, maxQueuedBytes: maxBytes)) { _ in }
    }

    static func code(_ body: () throws -> Void) -> Int32? {
        do { try body() } catch let e as MQTTError { return e.code } catch { return nil }
        return nil
    }

    @Test func the_ledger_counts_reservations_settles_and_confirmations_in_any_order() {
        var l = OutgoingLedger()
        #expect(l.reserve(bytes: 100, maxMessages: 3, maxBytes: 250) == nil)
        #expect(l.reserve(bytes: 100, maxMessages: 3, maxBytes: 250) == nil)
        #expect(l.reserve(bytes: 100, maxMessages: 3, maxBytes: 250) == MQTTError.queueBytesFullCode)
        #expect(l.count == 2 && l.bytes == 200)
        l.settle(mid: 1, qos: 1, bytes: 100, handedOver: true)
        // Confirmed on the network thread before its publish returned the id.
        l.confirm(mid: 2)
        l.settle(mid: 2, qos: 0, bytes: 100, handedOver: true)
        #expect(l.count == 1 && l.bytes == 100)
        #expect(l.reserve(bytes: 10, maxMessages: 1, maxBytes: nil) == MQTTError.queueFullCode)
        // Not handed over: released.
        #expect(l.reserve(bytes: 10, maxMessages: nil, maxBytes: nil) == nil)
        l.settle(mid: 3, qos: 0, bytes: 10, handedOver: false)
        #expect(l.count == 1 && l.bytes == 100)
        // A reconnect discards the QoS 0 messages not yet written, keeps QoS 1.
        #expect(l.reserve(bytes: 50, maxMessages: nil, maxBytes: nil) == nil)
        l.settle(mid: 4, qos: 0, bytes: 50, handedOver: true)
        #expect(l.discardQoS0() == 1)
        #expect(l.count == 1 && l.bytes == 100)
        l.confirm(mid: 1)
        #expect(l.count == 0 && l.bytes == 0)
        // Only what was settled before a cut-off is swept.
        for mid in Int32(5)...6 {
            #expect(l.reserve(bytes: 1, maxMessages: nil, maxBytes: nil) == nil)
            l.settle(mid: mid, qos: 0, bytes: 1, handedOver: true)
            if mid == 5 { #expect(l.discardQoS0(settledBefore: l.nextSettle) == 1) }
        }
        #expect(l.count == 1)
    }

    /// Low 16: an emergency publication sent while the lock is busy and every slot is taken is
    /// never accounted, so its confirmation matches nothing. 64 of those once filled the list of
    /// early confirmations for good; from then on the confirmation of every publish that came
    /// before its settle was dropped, its entry stayed counted for ever, and the count crept to the
    /// bound. Now a confirmation nothing in progress can claim is dropped, and the ledger returns
    /// to empty after 100 such publishes.
    @Test func when_unaccounted_emergency_confirmations_come_expect_later_early_confirmations_still_honoured() throws {
        let lock = LedgerLock(capacity: 100)
        let holder = LockHolder()
        holder.hold(lock)
        try #require(holder.waitUntilHeld())
        var unaccounted: [Int32] = []
        for mid in Int32(1)...128 {
            lock.beginHandOver()
            if !lock.recordWithoutWaiting(mid: mid, qos: 1, bytes: 10) { unaccounted.append(mid) }
            lock.endHandOver()
        }
        holder.release()
        #expect(unaccounted.count == 64)
        #expect(lock.withLock { $0.count } == 64)  // the slots, folded in
        for mid in unaccounted { _ = lock.confirm(mid: mid) }
        for round in Int32(0)..<100 {
            let mid = 1000 + round
            let refusal = lock.withLock { $0.reserve(bytes: 10, maxMessages: 100, maxBytes: nil) }
            #expect(refusal == nil)
            _ = lock.confirm(mid: mid)  // on_publish before mosquitto_publish returned the id
            lock.settle(mid: mid, qos: 1, bytes: 10, handedOver: true)
        }
        for mid in Int32(1)...64 { _ = lock.confirm(mid: mid) }
        #expect(lock.withLock { $0.count } == 0)
        #expect(lock.withLock { $0.bytes } == 0)
    }

    /// Stray confirmations while a publish is in progress (each could be its own, as far as the
    /// ledger knows): more than the early list holds. The oldest give way, so the publish's own
    /// confirmation, which comes last, is still there when it settles.
    @Test func when_strays_outnumber_the_early_list_expect_the_newest_confirmation_kept() {
        var l = OutgoingLedger()
        #expect(l.reserve(bytes: 10, maxMessages: nil, maxBytes: nil) == nil)
        for mid in Int32(1)...100 { l.confirm(mid: mid) }
        l.confirm(mid: 500)
        l.settle(mid: 500, qos: 1, bytes: 10, handedOver: true)
        #expect(l.count == 0 && l.bytes == 0)
        // Nothing is in progress any more: what was left are strays.
        #expect(l.earlyCount == 0)
    }

    /// Session 8, L3: the order the test above spares — the real confirmation first, then 64
    /// strays before its publish settles. The strays push it out of the early list, so the entry,
    /// and its command topic's slot, are left for ever (QoS 1: nothing else confirms it). The slot's
    /// age limit gives it up, and not a moment before: the count back to zero, the slot free, and a
    /// confirmation that still comes is a stray.
    @Test func when_a_real_early_confirmation_is_followed_by_64_strays_expect_the_slot_given_up_at_its_age_limit() {
        var l = OutgoingLedger()
        let slot = l.addSlot()
        #expect(l.reserve(bytes: 10, maxMessages: nil, maxBytes: nil) == nil)
        l.confirm(mid: 500)  // on_publish before mosquitto_publish returned the id
        for mid in Int32(1)...64 { l.confirm(mid: mid) }
        let outstanding = l.settle(mid: 500, qos: 1, bytes: 10, handedOver: true, slot: slot, at: 1_000)
        // What L3 found: its confirmation is lost, and the slot holds it.
        #expect(outstanding)
        #expect(l.outstanding(slot: slot) == 500 && l.count == 1)
        let beforeTheLimit = l.expireOutstanding(slot: slot, handedOverBefore: 1_000)
        #expect(!beforeTheLimit && l.outstanding(slot: slot) == 500)
        let atTheLimit = l.expireOutstanding(slot: slot, handedOverBefore: 1_001)
        #expect(atTheLimit)
        #expect(l.outstanding(slot: slot) == 0 && l.count == 0 && l.bytes == 0)
        let freed = l.confirm(mid: 500)
        #expect(!freed && l.count == 0)
    }

    /// A stray confirmation is not kept past the publishes in progress when it came: a later
    /// message that gets the same id (ids repeat) stays counted until its own confirmation.
    @Test func when_a_stray_confirmation_outlives_the_publishes_in_progress_expect_it_forgotten() {
        var l = OutgoingLedger()
        #expect(l.reserve(bytes: 10, maxMessages: nil, maxBytes: nil) == nil)
        l.confirm(mid: 7)
        l.settle(mid: 1, qos: 1, bytes: 10, handedOver: true)
        #expect(l.reserve(bytes: 10, maxMessages: nil, maxBytes: nil) == nil)
        l.settle(mid: 7, qos: 1, bytes: 10, handedOver: true)
        #expect(l.count == 2)
        l.confirm(mid: 7)
        l.confirm(mid: 1)
        #expect(l.count == 0)
        // Nothing in progress: a confirmation that matches nothing is not kept at all.
        l.confirm(mid: 9)
        #expect(l.earlyCount == 0)
    }

    /// A command topic's slot holds its newest message not yet confirmed: an older one's
    /// confirmation leaves it, its own frees it (so a command waiting may go); confirmed before it
    /// settled, it never occupies it; a QoS 0 one discarded at a reconnect frees it too.
    @Test func the_command_topic_slot_follows_its_newest_unconfirmed_message() {
        var l = OutgoingLedger()
        let a = l.addSlot(), b = l.addSlot()
        for mid in Int32(1)...2 {
            #expect(l.reserve(bytes: 5, maxMessages: nil, maxBytes: nil) == nil)
            let outstanding = l.settle(mid: mid, qos: 1, bytes: 5, handedOver: true, slot: a)
            #expect(outstanding)
        }
        #expect(l.outstanding(slot: a) == 2 && l.outstanding(slot: b) == 0)
        let freedByOlder = l.confirm(mid: 1)
        #expect(!freedByOlder)
        #expect(l.outstanding(slot: a) == 2)
        let freedByNewest = l.confirm(mid: 2)
        #expect(freedByNewest)
        #expect(l.outstanding(slot: a) == 0)
        #expect(l.reserve(bytes: 5, maxMessages: nil, maxBytes: nil) == nil)
        l.confirm(mid: 3)
        let confirmedAlready = !l.settle(mid: 3, qos: 1, bytes: 5, handedOver: true, slot: b)
        #expect(confirmedAlready)
        #expect(l.outstanding(slot: b) == 0)
        #expect(l.reserve(bytes: 5, maxMessages: nil, maxBytes: nil) == nil)
        let qos0Outstanding = l.settle(mid: 4, qos: 0, bytes: 5, handedOver: true, slot: b)
        #expect(qos0Outstanding)
        var freed = false
        let discarded = l.discardQoS0(freedSlot: &freed)
        #expect(discarded == 1)
        #expect(freed && l.outstanding(slot: b) == 0)
        #expect(l.count == 0 && l.bytes == 0)
    }

    /// A broker that never acknowledges: five QoS 1 messages fill a bound of five. The broker
    /// closes the connection; after the reconnect libmosquitto sends them again, still
    /// unacknowledged, so the bound still refuses a sixth (a count reset at the connect would let
    /// as many again into libmosquitto's store).
    @Test func when_unacknowledged_qos1_messages_survive_a_reconnect_expect_them_still_counted_against_the_bound() throws {
        let broker = try MinimalBroker(["--refusals", "0", "--drop-first-after", "1.5"])
        defer { broker.stop() }
        let client = try Self.client("ledger-reconnect", port: broker.port, maxMessages: 5)
        try client.start()
        defer { client.stop() }
        #expect(waitUntil { client.isConnected })
        for i in 0..<5 { try client.publish(topic: "ledger/q1", payload: Array("m\(i)".utf8), qos: 1) }
        #expect(client.queuedMessages == 5)
        #expect(Self.code { try client.publish(topic: "ledger/q1", payload: Array("m5".utf8), qos: 1) } == MQTTError.queueFullCode)
        #expect(waitUntil(seconds: 10) { client.counters.connects.load(ordering: .relaxed) >= 2 && client.isConnected })
        #expect(client.queuedMessages == 5)
        #expect(Self.code { try client.publish(topic: "ledger/q1", payload: Array("m6".utf8), qos: 1) } == MQTTError.queueFullCode)
        #expect(client.counters.confirmed.load(ordering: .relaxed) == 0)
    }

    /// `maxQueuedBytes`: big messages stop at the byte bound whatever their number; one larger
    /// than the bound is never taken.
    @Test func when_big_messages_stay_unacknowledged_expect_the_byte_bound_to_refuse_the_rest() throws {
        let broker = try MinimalBroker(["--refusals", "0"])
        defer { broker.stop() }
        let client = try Self.client("ledger-bytes", port: broker.port, maxMessages: 1000, maxBytes: 32_768)
        try client.start()
        defer { client.stop() }
        #expect(waitUntil { client.isConnected })
        let payload = [UInt8](repeating: 0x62, count: 10_000)
        var refused: [Int32?] = []
        for _ in 0..<10 { refused.append(Self.code { try client.publish(topic: "ledger/big", payload: payload, qos: 1) }) }
        #expect(refused.filter { $0 == nil }.count == 3)
        #expect(refused.filter { $0 == MQTTError.queueBytesFullCode }.count == 7)
        #expect(client.queuedMessages == 3 && client.queuedBytes == 3 * (10_000 + "ledger/big".utf8.count))
        #expect(client.counters.droppedQueueFull.load(ordering: .relaxed) == 7)
        let huge = [UInt8](repeating: 0x62, count: 40_000)
        #expect(Self.code { try client.publish(topic: "ledger/huge", payload: huge, qos: 0) } == MQTTError.queueBytesFullCode)
        #expect(MQTTWords.error(MQTTError.queueBytesFullCode).contains("max_queued_bytes"))
    }

    /// Not connected: a QoS 0 message is refused at once; a QoS 1 message is kept by libmosquitto
    /// for the next connect (an actuator's safe value written during an outage must follow the
    /// command before it), counted against the bound.
    @Test func when_not_connected_expect_qos0_refused_and_qos1_kept_within_the_bound() throws {
        let client = try Self.client("ledger-offline", port: 1, maxMessages: 2)
        #expect(Self.code { try client.publish(topic: "ledger/offline", payload: [1], qos: 0) } == 4)  // MOSQ_ERR_NO_CONN
        #expect(Self.code { try client.publish(topic: "ledger/offline", payload: [1], qos: 1) } == nil)
        #expect(Self.code { try client.publish(topic: "ledger/offline", payload: [2], qos: 1) } == nil)
        #expect(Self.code { try client.publish(topic: "ledger/offline", payload: [3], qos: 1) } == MQTTError.queueFullCode)
        #expect(client.queuedMessages == 2)
    }
}

/// A link that listens on the broker is up only once its SUBSCRIBEs are answered: after a
/// reconnect the CONNACK comes first, and a message published before the SUBACK is not delivered.
@Suite("MQTT client: subscribed only once the SUBACKs arrive", .serialized)
struct MQTTSubscriptionLinkTests {
    @Test func when_the_suback_comes_late_after_a_reconnect_expect_connected_but_not_subscribed_until_it_arrives() throws {
        let broker = try MinimalBroker(["--refusals", "0", "--drop-first-after", "1", "--suback-delay", "2"])
        defer { broker.stop() }
        let client = try MQTTClient(options: MQTTOptions(port: broker.port, clientID: "suback-\(getpid())", keepaliveSeconds: 60,
                                                         reconnectMinSeconds: 1, reconnectMaxSeconds: 1)) { _ in }
        try client.subscribe(.init(filter: "robotd/r1/estop", qos: 1))
        try client.subscribe(.init(filter: "robotd/r1/estop/reset/+", qos: 1))
        try client.start()
        defer { client.stop() }
        #expect(waitUntil { client.isSubscribed })
        #expect(waitUntil(seconds: 10) { client.counters.connects.load(ordering: .relaxed) >= 2 && client.isConnected })
        let reconnected = Date()
        #expect(!client.isSubscribed)
        #expect(waitUntil(seconds: 10) { client.isSubscribed })
        // The SUBACKs came about 2 s after the CONNACK.
        #expect(Date().timeIntervalSince(reconnected) > 1.0)
        #expect(client.counters.subscribed.load(ordering: .relaxed) == 4 && !client.hasRefusedSubscription)
    }
}

/// Session 8, L3, on a live connection: a command topic's slot left stuck as the ledger leaves it
/// after a real early confirmation and 64 strays (driven here through the client's ledger, in the
/// order the network thread and a writer would). Before the fix every later command on the topic
/// waited for ever while `publishCommand` reported success. Now, past the confirmation limit (1 s
/// here), the slot is given up and counted, the command waiting dropped, and the next command
/// refused — once, so that the actuator's owner reports the channel stuck —; then commands flow.
@Suite("MQTT client: a command topic whose confirmation never comes", .serialized,
       .enabled(if: MosquittoBroker.isInstalled, "mosquitto is not installed"))
struct MQTTStuckCommandTopicTests {
    static func monotonicNow() -> Int64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Int64(t.tv_sec) * 1_000_000_000 + Int64(t.tv_nsec)
    }

    @Test func when_a_slot_is_stuck_by_strays_expect_it_given_up_at_the_limit_and_the_next_command_refused() throws {
        let broker = try MosquittoBroker()
        try broker.start()
        defer { broker.stop() }
        let inbox = Inbox()
        let watcher = try MQTTClient(options: MQTTOptions(port: broker.port, clientID: "stuck-watcher-\(getpid())", keepaliveSeconds: 60)) { m in
            inbox.messages.withLock { $0.append(m) }
        }
        try watcher.subscribe(.init(filter: "stuck/heater", qos: 1))
        try watcher.start()
        defer { watcher.stop() }
        #expect(waitUntil { watcher.isSubscribed })
        let client = try MQTTClient(options: MQTTOptions(port: broker.port, clientID: "stuck-\(getpid())", keepaliveSeconds: 60,
                                                         maxQueuedMessages: 1000, commandConfirmationSeconds: 1)) { _ in }
        let topic = client.commandTopic("stuck/heater", qos: 1, retain: false, safePayload: Array("0".utf8))
        let slot = try #require(topic.slot)
        try client.start()
        defer { client.stop() }
        #expect(waitUntil { client.isConnected })
        try client.publishCommand(Array("1".utf8), on: topic, approval: nil)
        #expect(waitUntil { inbox.texts() == ["1"] && client.queuedMessages == 0 })

        // A publish on the topic whose confirmation comes before its settle, then 64 strays.
        let mid: Int32 = 40_000
        #expect(client.ledger.withLock { $0.reserve(bytes: 10, maxMessages: nil, maxBytes: nil) } == nil)
        _ = client.ledger.confirm(mid: mid)
        for stray in (mid + 1)...(mid + 64) { _ = client.ledger.confirm(mid: stray) }
        client.ledger.settle(mid: mid, qos: 1, bytes: 10, handedOver: true, slot: slot, at: Self.monotonicNow())
        #expect(client.ledger.withLock { $0.outstanding(slot: slot) } == mid)

        // Accepted and withheld: what the channel did for ever before.
        try client.publishCommand(Array("2".utf8), on: topic, approval: nil)
        usleep(300_000)
        #expect(inbox.texts() == ["1"])
        #expect(waitUntil(seconds: 5) { client.counters.unconfirmedCommands.load(ordering: .relaxed) == 1 })
        #expect(client.counters.superseded.load(ordering: .relaxed) == 1)
        #expect(client.queuedMessages == 0)
        var refusal: Int32?
        do { try client.publishCommand(Array("3".utf8), on: topic, approval: nil) } catch let e as MQTTError { refusal = e.code }
        #expect(refusal == MQTTError.commandUnconfirmedCode)
        try client.publishCommand(Array("4".utf8), on: topic, approval: nil)
        #expect(waitUntil { inbox.texts() == ["1", "4"] }, "\(inbox.texts())")
        #expect(client.counters.unconfirmedCommands.load(ordering: .relaxed) == 1)
    }
}
