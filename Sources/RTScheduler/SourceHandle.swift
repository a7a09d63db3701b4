import Synchronization

/// State shared by every producer of one scheduler: the doorbell, the global sequence counter,
/// the clock and the "stopped" flag.
final class IngressHub: Sendable {
    let doorbell: Doorbell
    let clock: any SchedulerClock
    let sequence = Atomic<UInt64>(0)
    let closed = Atomic<Bool>(false)

    init(doorbell: Doorbell, clock: any SchedulerClock) {
        self.doorbell = doorbell
        self.clock = clock
    }

    @inline(__always) func nextSequence() -> UInt64 { sequence.add(1, ordering: .relaxed).newValue }
}

/// What a producer holds to post into one source. Copy it freely; post from any thread.
public struct SourceHandle: Sendable {
    public let id: SourceID
    public let name: String
    public let priority: PriorityClass
    public let relativeDeadline: Duration
    let deadlineNanoseconds: Int64
    let queue: IngressQueue
    let hub: IngressHub
    /// Told of every post (an input's arrival statistics); nil: not observed.
    public let arrivals: ArrivalStatistics?

    init(id: SourceID, name: String, priority: PriorityClass, relativeDeadline: Duration, deadlineNanoseconds: Int64,
         queue: IngressQueue, hub: IngressHub, arrivals: ArrivalStatistics? = nil) {
        self.id = id
        self.name = name
        self.priority = priority
        self.relativeDeadline = relativeDeadline
        self.deadlineNanoseconds = deadlineNanoseconds
        self.queue = queue
        self.hub = hub
        self.arrivals = arrivals
    }

    /// The same source, with every post through the copy noted in `statistics` (an input's rate
    /// and gaps, for telemetry).
    public func observed(by statistics: ArrivalStatistics) -> SourceHandle {
        SourceHandle(id: id, name: name, priority: priority, relativeDeadline: relativeDeadline,
                     deadlineNanoseconds: deadlineNanoseconds, queue: queue, hub: hub, arrivals: statistics)
    }

    /// Stamps the event with `release` (default: now on the scheduler's clock), its deadline
    /// (release + the subscription's relative deadline) and a sequence number, then queues it.
    ///
    /// Real-time safe: no allocation; a short lock on this source's queue; one futex wake only
    /// when the dispatch thread is asleep.
    @discardableResult
    public func post(_ payload: Payload, key: UInt32 = 0, release: Instant? = nil) -> PostResult {
        if hub.closed.load(ordering: .relaxed) { return .stopped }
        let released = release ?? hub.clock.now()
        arrivals?.note(released)
        let event = Event(source: id, key: key, priority: priority, release: released,
                          deadline: released.advanced(byNanoseconds: deadlineNanoseconds),
                          sequence: hub.nextSequence(), payload: payload)
        var wasEmpty = false
        let result = queue.push(event, wasEmpty: &wasEmpty)
        if result.wasAccepted && wasEmpty { hub.doorbell.ring(id.index) }
        return result
    }

    /// The clock the scheduler runs on, for producers that stamp arrival themselves.
    public var clock: any SchedulerClock { hub.clock }
}
