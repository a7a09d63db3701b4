import Synchronization

/// Where the approvals behind an actuator's commands are judged (the actuator set's guard seal and
/// clock): read again when a command that waited for its topic's outstanding message is handed
/// over, on the network thread. Both reads must be real-time safe (an atomic, the clock).
public protocol MQTTApprovalSource: AnyObject, Sendable {
    /// Now, on the clock of the approvals' `validUntil` (ns).
    func approvalNow() -> Int64
    /// The approving guard's latch epoch now (its latches and resets so far).
    func approvalEpoch() -> UInt64
}

/// The approval behind one command on a command topic: valid until `validUntil` (ns, on the
/// source's clock) and only while the guard's epoch is still `epoch`. A command that has to wait
/// for the topic's outstanding message is checked again when its turn comes, and dropped if
/// either has moved (`MQTTClient.publishCommand`, counted in `Counters.expired`).
public struct MQTTCommandApproval: Sendable {
    public var validUntil: Int64
    public var epoch: UInt64
    public let source: any MQTTApprovalSource

    public init(validUntil: Int64, epoch: UInt64, source: any MQTTApprovalSource) {
        self.validUntil = validUntil
        self.epoch = epoch
        self.source = source
    }

    /// True when the command may no longer go out: past its validity, or a latch or reset came
    /// since it was approved.
    var hasLapsed: Bool { source.approvalEpoch() != epoch || source.approvalNow() > validUntil }
}

/// One actuator channel's command topic on a connection (`MQTTPublishing.commandTopic`), with the
/// channel's safe value as published. The libmosquitto client keeps at most one of its values
/// outstanding (handed over, not yet confirmed), so stale commands never pile up ahead of the safe
/// value when the broker stops answering (`MQTTClient.publishCommand`). A publisher without a
/// network (a recorder, the lockstep simulator) publishes every value at once.
public final class MQTTCommandTopic: Sendable {
    /// A command waiting for the topic's outstanding message, the count of emergency safe values
    /// on the topic when it was given (one sent since means it is stale), and its approval,
    /// checked again at the hand-over (nil: a publisher that gave none, a test).
    struct Waiting {
        var payload: [UInt8]
        var emergenciesBefore: UInt64
        var approval: MQTTCommandApproval?
    }

    struct State {
        var waiting: Waiting?
        /// The newest message handed over through the slot (0: none), whether it was the safe
        /// value, and the client's count of connects read before it was handed over (a reconnect
        /// since may have discarded it, at QoS 0).
        var lastMid: Int32 = 0
        var lastSafe = false
        var lastConnects: UInt64 = 0
        /// The topic's outstanding message went unconfirmed past the client's confirmation limit
        /// (`MQTTOptions.commandConfirmationSeconds`): its slot was freed, and the next command is
        /// refused, once, so that the actuator's owner learns the channel was stuck.
        var unconfirmed = false
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
