/// What kind of deadline miss happened.
public enum MissKind: String, BitwiseCopyable, Sendable, Codable {
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
    /// A handler ran past its budget and the supervisor reported it; recorded when it returned
    /// (`amount`: how long it ran, ns).
    case stall
}

/// One miss, as published to telemetry.
public struct MissRecord: BitwiseCopyable, Sendable, Equatable {
    public var task: TaskID
    public var kind: MissKind
    public var release: Instant
    public var deadline: Instant
    /// When it was detected.
    public var at: Instant
    /// How far past the deadline (ns); for skipped releases, how many were skipped; for a stall,
    /// how long the handler ran (ns).
    public var amount: Int64
}

/// The scheduler's miss log: the dispatch thread appends (its only producer), telemetry drains;
/// overwrites counted (`lost`).
public typealias MissLog = OverwritingRing<MissRecord>
