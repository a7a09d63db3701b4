import Synchronization

/// The messages handed to libmosquitto and not yet confirmed (on_publish: a QoS 0 one written out,
/// a QoS 1 or 2 one acknowledged), by message id, with their bytes. What libmosquitto does with
/// them at a reconnect (its 2.0 source, `mosquitto__reconnect`: `packet__cleanup_all`, then
/// `message__reconnect_reset`): packets not yet written are dropped — a QoS 0 message among them
/// is gone, never confirmed —, while QoS 1 and 2 messages stay in its store and are sent again,
/// to be confirmed once. So the count is not reset at a connect: QoS 0 entries are discarded just
/// before each (re)connect, QoS 1 and 2 ones stay until confirmed.
///
/// Nothing here allocates while the bound holds (storage reserved at creation). Loops run over
/// indices, never `for … in` an array: in a debug build the generic iterator reads each element
/// through a coroutine whose frame is heap-allocated, one allocation per element
/// (`OutgoingLedgerAllocationTests`).
struct OutgoingLedger: Sendable {
    struct Entry {
        var qos: Int
        var bytes: Int
        /// The order in which it was settled (handed over): `discardQoS0(settledBefore:)`.
        var settled: UInt64
    }

    private(set) var count = 0
    private(set) var bytes = 0
    private(set) var nextSettle: UInt64 = 0
    /// Entries with QoS 0: a sweep with none (a connection publishing QoS 1 only) returns at once
    /// instead of walking every entry under the lock.
    private(set) var qos0Count = 0
    private var entries: [Int32: Entry]
    /// Confirmations that came before their publish settled (on_publish on the network thread
    /// before mosquitto_publish returned its id). Bounded (a few at a time in practice).
    private var early: Set<Int32>
    /// Ids to discard, gathered before removing them (no dictionary is built for it).
    private var scratch: [Int32]
    let capacity: Int

    /// The reservation of a connection without `maxQueuedMessages` (beyond it, inserting may allocate).
    static let unboundedCapacity = 4096
    static let earlyLimit = 64

    /// Storage for `capacity` messages (plus `headroom`: emergency publications, which the bound
    /// does not refuse) reserved now: entries, early confirmations and the discard list never
    /// grow under the lock while the bound holds.
    init(capacity: Int = OutgoingLedger.unboundedCapacity, headroom: Int = 0) {
        self.capacity = max(1, capacity)
        let room = self.capacity + max(0, headroom) + 1
        entries = Dictionary(minimumCapacity: room)
        early = Set(minimumCapacity: Self.earlyLimit)
        scratch = []
        scratch.reserveCapacity(room)
    }

    /// Counts a message about to be handed over, or the reason it may not be.
    mutating func reserve(bytes size: Int, maxMessages: Int?, maxBytes: Int?) -> Int32? {
        if let maxMessages, count >= maxMessages { return MQTTError.queueFullCode }
        if let maxBytes, bytes + size > maxBytes { return MQTTError.queueBytesFullCode }
        count += 1
        bytes += size
        return nil
    }

    /// After mosquitto_publish: the reservation becomes an entry (or is released: not handed
    /// over, or already confirmed).
    mutating func settle(mid: Int32, qos: Int, bytes size: Int, handedOver: Bool) {
        guard handedOver, early.remove(mid) == nil else {
            release(size)
            return
        }
        // An id still held by an entry libmosquitto reused (65535 messages later): the old one was
        // lost without a confirmation.
        if let old = entries[mid] { drop(old) }
        entries[mid] = Entry(qos: qos, bytes: size, settled: nextSettle)
        if qos == 0 { qos0Count += 1 }
        nextSettle &+= 1
    }

    /// A message already handed over without a reservation (an emergency publication): counted
    /// whatever the bound, then settled like any other.
    mutating func record(mid: Int32, qos: Int, bytes size: Int) {
        count += 1
        bytes += size
        settle(mid: mid, qos: qos, bytes: size, handedOver: true)
    }

    mutating func confirm(mid: Int32) {
        if let entry = entries.removeValue(forKey: mid) {
            drop(entry)
        } else if early.count < Self.earlyLimit {
            early.insert(mid)
        }
    }

    /// Drops the QoS 0 entries (settled before `settledBefore`, or all): they were discarded.
    @discardableResult
    mutating func discardQoS0(settledBefore cutoff: UInt64 = .max) -> Int {
        guard !entries.isEmpty else { return 0 }
        // Early confirmations belong to publishes in flight now; none can span a reconnect's
        // clean-up unseen for long, and ids repeat.
        if cutoff == .max { early.removeAll(keepingCapacity: true) }
        guard qos0Count > 0 else { return 0 }
        scratch.removeAll(keepingCapacity: true)
        for (mid, entry) in entries where entry.qos == 0 && entry.settled < cutoff {
            if scratch.count < scratch.capacity { scratch.append(mid) }
        }
        var i = 0
        while i < scratch.count {
            if let entry = entries.removeValue(forKey: scratch[i]) { drop(entry) }
            i += 1
        }
        return scratch.count
    }

    private mutating func drop(_ entry: Entry) {
        if entry.qos == 0 { qos0Count = max(0, qos0Count - 1) }
        release(entry.bytes)
    }

    private mutating func release(_ size: Int) {
        count = max(0, count - 1)
        bytes = max(0, bytes - size)
    }
}

/// The ledger behind its lock, with a side door that never waits. The network thread holds the
/// lock while it sweeps (`discardQoS0`, a walk over the entries); the supervisor's emergency
/// publication (`MQTTClient.publishEmergency`) must not wait for that. It hands its message to
/// libmosquitto first and accounts it afterwards: under the lock if it is free at that instant,
/// else in one of a few lock-free slots, which whoever takes the lock next folds into the ledger
/// before anything else — so every reader (the bound, `queuedMessages`, a confirmation) sees it.
/// A confirmation that comes before its slot is folded in waits among the early ones.
final class LedgerLock: Sendable {
    private final class Slot: Sendable {
        static let free = 0, filling = 1, ready = 2
        let state = Atomic<Int>(Slot.free)
        let mid = Atomic<Int32>(0)
        let qos = Atomic<Int>(0)
        let bytes = Atomic<Int>(0)
    }

    private let mutex: Mutex<OutgoingLedger>
    private let slots: [Slot]
    /// Slots filled and not yet folded in: with none (the common case) a lock costs one load more.
    private let waiting = Atomic<Int>(0)
    /// Emergency publications accounted through a slot (the lock was busy), since start.
    let deferred = Atomic<UInt64>(0)

    /// Slots for emergency publications that find the lock busy: one per channel of every MQTT
    /// back end on the connection is what one emergency needs.
    static let slotCount = 64

    init(capacity: Int) {
        mutex = Mutex(OutgoingLedger(capacity: capacity, headroom: Self.slotCount))
        var slots: [Slot] = []
        for _ in 0..<Self.slotCount { slots.append(Slot()) }
        self.slots = slots
    }

    /// `body` under the lock, after the emergency publications waiting in slots are folded in.
    func withLock<Result: Sendable>(_ body: (inout OutgoingLedger) -> Result) -> Result {
        mutex.withLock { ledger in
            foldSlots(into: &ledger)
            return body(&ledger)
        }
    }

    /// Accounts a message already handed to libmosquitto, without ever waiting: under the lock if
    /// it is free now, else in a free slot. False: the lock was busy and every slot taken (sent,
    /// not counted).
    func recordWithoutWaiting(mid: Int32, qos: Int, bytes: Int) -> Bool {
        let recorded = mutex.withLockIfAvailable { ledger -> Bool in
            foldSlots(into: &ledger)
            ledger.record(mid: mid, qos: qos, bytes: bytes)
            return true
        }
        if recorded != nil { return true }
        var i = 0
        while i < slots.count {
            let slot = slots[i]
            i += 1
            guard slot.state.compareExchange(expected: Slot.free, desired: Slot.filling, ordering: .acquiring).exchanged else { continue }
            slot.mid.store(mid, ordering: .relaxed)
            slot.qos.store(qos, ordering: .relaxed)
            slot.bytes.store(bytes, ordering: .relaxed)
            // Counted before it is ready, so that the count is never below the ready slots.
            waiting.add(1, ordering: .relaxed)
            slot.state.store(Slot.ready, ordering: .releasing)
            deferred.add(1, ordering: .relaxed)
            return true
        }
        return false
    }

    /// Under the lock. A slot still being filled is left for the next holder.
    private func foldSlots(into ledger: inout OutgoingLedger) {
        guard waiting.load(ordering: .acquiring) > 0 else { return }
        var i = 0
        while i < slots.count {
            let slot = slots[i]
            i += 1
            guard slot.state.load(ordering: .acquiring) == Slot.ready else { continue }
            ledger.record(mid: slot.mid.load(ordering: .relaxed), qos: slot.qos.load(ordering: .relaxed),
                          bytes: slot.bytes.load(ordering: .relaxed))
            slot.state.store(Slot.free, ordering: .releasing)
            waiting.subtract(1, ordering: .relaxed)
        }
    }
}
