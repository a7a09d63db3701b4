/// Raised once when a critical task misses `limit` deadlines in a row. The runtime hands it to
/// the safety guard: a critical loop that keeps missing is a fault that leads to a safe stop.
public struct DeadlineFault: Sendable, Equatable {
    public var task: TaskID
    public var taskName: String
    public var consecutiveMisses: Int
    public var limit: Int
    public var at: Instant

    public init(task: TaskID, taskName: String, consecutiveMisses: Int, limit: Int, at: Instant) {
        self.task = task
        self.taskName = taskName
        self.consecutiveMisses = consecutiveMisses
        self.limit = limit
        self.at = at
    }
}
