import Synchronization

/// What kind of deadline miss happened.
public enum MissKind: String, Sendable, Codable {
    /// The job started after its deadline.
    case startLate = "start-late"
    /// The job finished after its deadline.
    case finishLate = "finish-late"
    /// The job was past its deadline at its turn and its policy dropped it.
    case droppedLate = "dropped-late"
    /// A periodic release was skipped because the task was still busy or the instant had passed.
    case skippedRelease = "skipped"
    /// A critical task reached its consecutive-miss limit.
    case deadlineFault = "deadline-fault"
}

/// One miss, as published to telemetry.
public struct MissRecord: Sendable, Equatable {
    public var task: TaskID
    public var kind: MissKind
    public var release: Instant
    public var deadline: Instant
    /// When it was detected.
    public var at: Instant
    /// How far past the deadline (ns); for skipped releases, how many were skipped.
    public var amount: Int64
}

/// A bounded ring of miss records: the dispatch thread appends (never allocates), telemetry
/// drains from another thread. When full, the oldest record is dropped and counted.
public final class MissLog: Sendable {
    private struct Ring: ~Copyable {
        let slots: UnsafeMutablePointer<MissRecord>
        let capacity: Int
        var head = 0
        var count = 0
        init(capacity: Int) {
            self.capacity = capacity
            slots = .allocate(capacity: capacity)
            slots.initialize(repeating: MissRecord(task: TaskID(index: -1), kind: .startLate, release: .zero,
                                                   deadline: .zero, at: .zero, amount: 0), count: capacity)
        }
        deinit {
            slots.deinitialize(count: capacity)
            slots.deallocate()
        }
    }

    private let ring: Mutex<Ring>
    public let overwritten = Atomic<UInt64>(0)

    public init(capacity: Int) {
        precondition(capacity >= 1)
        ring = Mutex(Ring(capacity: capacity))
    }

    /// Real-time safe.
    func append(_ record: MissRecord) {
        ring.withLock { ring in
            if ring.count == ring.capacity {
                ring.head = (ring.head + 1) % ring.capacity
                ring.count -= 1
                overwritten.add(1, ordering: .relaxed)
            }
            ring.slots[(ring.head + ring.count) % ring.capacity] = record
            ring.count += 1
        }
    }

    /// Takes every record logged since the last drain, oldest first. Allocates; not for the
    /// dispatch thread.
    public func drain() -> [MissRecord] {
        var out: [MissRecord] = []
        out.reserveCapacity(64)
        ring.withLock { ring in
            while ring.count > 0 {
                out.append(ring.slots[ring.head])
                ring.head = (ring.head + 1) % ring.capacity
                ring.count -= 1
            }
        }
        return out
    }
}
