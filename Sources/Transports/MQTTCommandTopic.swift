import Synchronization

/// One actuator channel's command topic on a connection (`MQTTPublishing.commandTopic`), with the
/// channel's safe value as published. The libmosquitto client keeps at most one of its values
/// outstanding (handed over, not yet confirmed), so stale commands never pile up ahead of the safe
/// value when the broker stops answering (`MQTTClient.publishCommand`). A publisher without a
/// network (a recorder, the lockstep simulator) publishes every value at once.
public final class MQTTCommandTopic: Sendable {
    /// A command waiting for the topic's outstanding message, and the count of emergency safe
    /// values on the topic when it was given: one sent since means it is stale.
    struct Waiting {
        var payload: [UInt8]
        var emergenciesBefore: UInt64
    }

    struct State {
        var waiting: Waiting?
        /// The newest message handed over through the slot (0: none), whether it was the safe
        /// value, and the client's count of connects read before it was handed over (a reconnect
        /// since may have discarded it, at QoS 0).
        var lastMid: Int32 = 0
        var lastSafe = false
        var lastConnects: UInt64 = 0
    }

    public let topic: String
    public let qos: Int
    public let retain: Bool
    public let safePayload: [UInt8]
    /// The topic's index in its client's ledger (`OutgoingLedger.outstanding`); nil: no slot.
    let slot: Int?
    /// The client that owns `slot`: a topic handed to another publisher has no slot there.
    let owner: ObjectIdentifier?
    /// Emergency safe values published on the topic (lock-free: `publishEmergencySafeValue`).
    let emergencies = Atomic<UInt64>(0)
    let state = Mutex(State())

    /// A topic without a slot: every value is published at once (`MQTTPublishing`'s default).
    public convenience init(topic: String, qos: Int, retain: Bool, safePayload: [UInt8]) {
        self.init(topic: topic, qos: qos, retain: retain, safePayload: safePayload, slot: nil, owner: nil)
    }

    init(topic: String, qos: Int, retain: Bool, safePayload: [UInt8], slot: Int?, owner: ObjectIdentifier?) {
        self.topic = topic
        self.qos = qos
        self.retain = retain
        self.safePayload = safePayload
        self.slot = slot
        self.owner = owner
    }
}
