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
        /// The command topic it was handed over on (`MQTTCommandTopic`), or -1.
        var slot: Int
    }

    /// A confirmation that came before its message was settled, in arrival order (`seq`; 0: free).
    private struct Early {
        var mid: Int32 = 0
        var seq: UInt64 = 0
    }

    private(set) var count = 0
    private(set) var bytes = 0
    private(set) var nextSettle: UInt64 = 0
    /// Entries with QoS 0: a sweep with none (a connection publishing QoS 1 only) returns at once
    /// instead of walking every entry under the lock.
    private(set) var qos0Count = 0
    /// Reservations not settled yet: publishes between `reserve` and `settle`, whose confirmation
    /// may come first.
    private(set) var unsettled = 0
    private var entries: [Int32: Entry]
    /// Confirmations that came before their publish settled (on_publish on the network thread
    /// before mosquitto_publish returned its id). Only a publish in progress can claim one: a
    /// confirmation that comes when none is (an emergency message sent but not accounted) is
    /// dropped, and the list is emptied whenever the last one settles. Full, the oldest gives way:
    /// the newest belongs to a publish that is about to settle. A real confirmation followed by 64
    /// strays before its settle is lost all the same, and its entry stays: on a command topic that
    /// is what `expireOutstanding` ends (the channel's confirmation limit, `MQTTClient`).
    private var early: [Early]
    private(set) var earlyCount = 0
    private var earlySeq: UInt64 = 0
    /// Per command topic (`MQTTCommandTopic`): the id of its newest message handed over and not
    /// confirmed yet; 0 (never a message id): none.
    private var outstanding: [Int32]
    /// Per command topic: when that message was handed over (the instant `settle` was given, ns).
    private var outstandingSince: [Int64]
    /// Ids to discard, gathered before removing them (no dictionary is built for it).
    private var scratch: [Int32]
    let capacity: Int

    /// The reservation of a connection without `maxQueuedMessages` (beyond it, inserting may allocate).
    static let unboundedCapacity = 4096
    static let earlyLimit = 64

    /// Storage for `capacity` messages (plus `headroom`: emergency publications and safe values,
    /// which the bound does not refuse) reserved now: entries, early confirmations and the discard
    /// list never grow under the lock while the bound holds.
    init(capacity: Int = OutgoingLedger.unboundedCapacity, headroom: Int = 0) {
        self.capacity = max(1, capacity)
        let room = self.capacity + max(0, headroom) + 1
        entries = Dictionary(minimumCapacity: room)
        early = Array(repeating: Early(), count: Self.earlyLimit)
        outstanding = []
        outstandingSince = []
        scratch = []
        scratch.reserveCapacity(room)
    }

    /// Counts a message about to be handed over, or the reason it may not be.
    mutating func reserve(bytes size: Int, maxMessages: Int?, maxBytes: Int?) -> Int32? {
        if let maxMessages, count >= maxMessages { return MQTTError.queueFullCode }
        if let maxBytes, bytes + size > maxBytes { return MQTTError.queueBytesFullCode }
        count += 1
        bytes += size
        unsettled += 1
        return nil
    }

    /// After mosquitto_publish: the reservation becomes an entry (or is released: not handed
    /// over, or already confirmed). `othersInProgress`: emergency publications handed over and
    /// not recorded yet (`LedgerLock`), which may still claim an early confirmation. True: the
    /// message is outstanding now (on `slot`, if one is given, since `now`).
    @discardableResult
    mutating func settle(mid: Int32, qos: Int, bytes size: Int, handedOver: Bool, slot: Int = -1, othersInProgress: Int = 0,
                         at now: Int64 = 0) -> Bool {
        unsettled = max(0, unsettled - 1)
        let outstanding = handedOver ? insert(mid: mid, qos: qos, bytes: size, slot: slot, at: now) : false
        if !handedOver { release(size) }
        // Nothing in progress can claim what is left: strays (an emergency message never accounted).
        if unsettled == 0 && othersInProgress == 0 && earlyCount > 0 { clearEarly() }
        return outstanding
    }

    /// A message already handed over without a reservation (an emergency publication): counted
    /// whatever the bound, then settled like any other.
    mutating func record(mid: Int32, qos: Int, bytes size: Int) {
        count += 1
        bytes += size
        _ = insert(mid: mid, qos: qos, bytes: size, slot: -1, at: 0)
    }

    /// on_publish. True: a command topic's outstanding message was confirmed (its slot is free:
    /// a value waiting for it may go). `othersInProgress` as in `settle`.
    @discardableResult
    mutating func confirm(mid: Int32, othersInProgress: Int = 0) -> Bool {
        if let entry = entries.removeValue(forKey: mid) { return drop(entry, mid: mid) }
        if unsettled + othersInProgress > 0 {
            insertEarly(mid)
        } else if earlyCount > 0 {
            clearEarly()
        }
        return false
    }

    /// A new command topic: its index.
    mutating func addSlot() -> Int {
        outstanding.append(0)
        outstandingSince.append(0)
        return outstanding.count - 1
    }

    /// The id of the command topic's newest message not confirmed yet (0: none).
    func outstanding(slot: Int) -> Int32 {
        slot >= 0 && slot < outstanding.count ? outstanding[slot] : 0
    }

    /// True when the command topic's outstanding message was handed over before `cutoff`.
    func outstanding(slot: Int, handedOverBefore cutoff: Int64) -> Bool {
        outstanding(slot: slot) != 0 && outstandingSince[slot] < cutoff
    }

    /// Gives up the command topic's outstanding message if it was handed over before `cutoff`: its
    /// entry leaves the count and the slot is free (a confirmation that still comes is then a
    /// stray). True: it was given up. For a confirmation that will never come — lost among
    /// strays (the early list) or never sent by the broker — which would hold the slot, and every
    /// command after it, for ever.
    mutating func expireOutstanding(slot: Int, handedOverBefore cutoff: Int64) -> Bool {
        guard outstanding(slot: slot, handedOverBefore: cutoff) else { return false }
        let mid = outstanding[slot]
        if let entry = entries.removeValue(forKey: mid) { _ = drop(entry, mid: mid) }
        outstanding[slot] = 0
        return true
    }

    /// Drops the QoS 0 entries (settled before `settledBefore`, or all): they were discarded.
    /// `freedSlot` is set when one of them was a command topic's outstanding message.
    @discardableResult
    mutating func discardQoS0(settledBefore cutoff: UInt64 = .max, freedSlot: inout Bool) -> Int {
        // Early confirmations belong to publishes in flight now; none can span a reconnect's
        // clean-up unseen for long, and ids repeat.
        if cutoff == .max && earlyCount > 0 { clearEarly() }
        guard !entries.isEmpty, qos0Count > 0 else { return 0 }
        scratch.removeAll(keepingCapacity: true)
        for (mid, entry) in entries where entry.qos == 0 && entry.settled < cutoff {
            if scratch.count < scratch.capacity { scratch.append(mid) }
        }
        var i = 0
        while i < scratch.count {
            if let entry = entries.removeValue(forKey: scratch[i]), drop(entry, mid: scratch[i]) { freedSlot = true }
            i += 1
        }
        return scratch.count
    }

    @discardableResult
    mutating func discardQoS0(settledBefore cutoff: UInt64 = .max) -> Int {
        var freed = false
        return discardQoS0(settledBefore: cutoff, freedSlot: &freed)
    }

    /// Claims an early confirmation of `mid` (released at once), else enters it.
    private mutating func insert(mid: Int32, qos: Int, bytes size: Int, slot: Int, at now: Int64) -> Bool {
        if claimEarly(mid) {
            release(size)
            return false
        }
        // An id still held by an entry libmosquitto reused (65535 messages later): the old one was
        // lost without a confirmation.
        if let old = entries[mid] { _ = drop(old, mid: mid) }
        entries[mid] = Entry(qos: qos, bytes: size, settled: nextSettle, slot: slot)
        if qos == 0 { qos0Count += 1 }
        nextSettle &+= 1
        if slot >= 0 && slot < outstanding.count {
            outstanding[slot] = mid
            outstandingSince[slot] = now
        }
        return true
    }

    /// True: a command topic's slot was freed.
    private mutating func drop(_ entry: Entry, mid: Int32) -> Bool {
        if entry.qos == 0 { qos0Count = max(0, qos0Count - 1) }
        release(entry.bytes)
        guard entry.slot >= 0, entry.slot < outstanding.count, outstanding[entry.slot] == mid else { return false }
        outstanding[entry.slot] = 0
        return true
    }

    private mutating func release(_ size: Int) {
        count = max(0, count - 1)
        bytes = max(0, bytes - size)
    }

    private mutating func claimEarly(_ mid: Int32) -> Bool {
        guard earlyCount > 0 else { return false }
        var i = 0
        while i < early.count {
            if early[i].seq != 0 && early[i].mid == mid {
                early[i] = Early()
                earlyCount -= 1
                return true
            }
            i += 1
        }
        return false
    }

    private mutating func insertEarly(_ mid: Int32) {
        earlySeq &+= 1
        var target = -1
        var oldest = UInt64.max
        var i = 0
        while i < early.count {
            if early[i].seq == 0 {
                target = i
                break
            }
            if early[i].seq < oldest {
                oldest = early[i].seq
                target = i
            }
            i += 1
        }
        if early[target].seq == 0 { earlyCount += 1 }
        early[target] = Early(mid: mid, seq: earlySeq)
    }

    private mutating func clearEarly() {
        var i = 0
        while i < early.count {
            early[i] = Early()
            i += 1
        }
        earlyCount = 0
    }
}

/// The ledger behind its lock, with a side door that never waits. The network thread holds the
/// lock while it sweeps (`discardQoS0`, a walk over the entries); the supervisor's emergency
/// publication (`MQTTClient.publishEmergency`) must not wait for that. It hands its message to
/// libmosquitto first and accounts it afterwards: under the lock if it is free at that instant,
/// else in one of a few lock-free slots, which whoever takes the lock next folds into the ledger
/// before anything else — so every reader (the bound, `queuedMessages`, a confirmation) sees it.
/// A confirmation that comes before its slot is folded in waits among the early ones: the
/// hand-over counts as in progress from before mosquitto_publish until it is recorded.
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
    /// Emergency publications between `beginHandOver` and `endHandOver`: their confirmation may
    /// come before they are recorded, so an early one must wait for them.
    private let handOvers = Atomic<Int>(0)

    /// Slots for emergency publications that find the lock busy: one per channel of every MQTT
    /// back end on the connection is what one emergency needs.
    static let slotCount = 64

    init(capacity: Int) {
        // Headroom beyond the bound: emergency publications, and the safe values the bound never
        // refuses (one per command topic at most, `MQTTClient.publishCommand`).
        mutex = Mutex(OutgoingLedger(capacity: capacity, headroom: 2 * Self.slotCount))
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

    /// `OutgoingLedger.settle`, knowing which emergency publications are still in progress.
    @discardableResult
    func settle(mid: Int32, qos: Int, bytes: Int, handedOver: Bool, slot: Int = -1, at now: Int64 = 0) -> Bool {
        withLock { $0.settle(mid: mid, qos: qos, bytes: bytes, handedOver: handedOver, slot: slot,
                             othersInProgress: handOvers.load(ordering: .sequentiallyConsistent), at: now) }
    }

    /// `OutgoingLedger.confirm`, likewise. True: a command topic's slot was freed.
    func confirm(mid: Int32) -> Bool {
        withLock { $0.confirm(mid: mid, othersInProgress: handOvers.load(ordering: .sequentiallyConsistent)) }
    }

    /// Before an emergency publication's mosquitto_publish (lock-free).
    func beginHandOver() { handOvers.add(1, ordering: .sequentiallyConsistent) }
    /// After it is recorded (`recordWithoutWaiting`), or was not sent.
    func endHandOver() { handOvers.subtract(1, ordering: .sequentiallyConsistent) }

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
