/// Identifies a source (an ingress queue) or a periodic task inside one scheduler.
public struct SourceID: Hashable, Sendable, CustomStringConvertible {
    public let index: Int
    public var description: String { "source#\(index)" }
}

public struct TaskID: BitwiseCopyable, Hashable, Sendable, CustomStringConvertible {
    public let index: Int
    public init(index: Int) { self.index = index }
    public var description: String { "task#\(index)" }
}

/// One deadline-tagged event. Every event knows where it came from, how urgent it is, when it
/// was released (its arrival instant) and by when it must have been handled.
public struct Event: Sendable {
    public var source: SourceID
    /// Coalescing key for `.keepLatestPerKey` queues (an axis code, a channel, …); 0 otherwise.
    public var key: UInt32
    public var priority: PriorityClass
    /// Arrival instant on the scheduler's clock.
    public var release: Instant
    /// Absolute deadline: release + the subscription's relative deadline.
    public var deadline: Instant
    /// Global posting order; breaks ties between equal priority and deadline.
    public var sequence: UInt64
    public var payload: Payload

    public init(source: SourceID, key: UInt32 = 0, priority: PriorityClass, release: Instant,
                deadline: Instant, sequence: UInt64, payload: Payload) {
        self.source = source
        self.key = key
        self.priority = priority
        self.release = release
        self.deadline = deadline
        self.sequence = sequence
        self.payload = payload
    }

    static let empty = Event(source: SourceID(index: -1), priority: .low, release: .zero,
                             deadline: .zero, sequence: 0, payload: .none)
}
