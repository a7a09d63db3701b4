import Synchronization

/// What the planner service tells the executor beside its messages, lock-free: the executor's
/// check reads both every period, so a goal counts even when the `planner` source's full queue
/// refused its message (docs/planner.md, "Execution").
final class PlanSignals: Sendable {
    /// The newest goal taken (0: none yet): a plan for an older goal is cancelled at the next check.
    let latestGoal = Atomic<UInt64>(0)
    /// The newest goal that asks every motion policy to hold still: a `stop` goal, or a goal whose
    /// message could not be posted (the old plan must not drive on meanwhile).
    let holdGoal = Atomic<UInt64>(0)

    func taken(_ id: UInt64) { Self.raise(latestGoal, to: id) }
    func hold(_ id: UInt64) { Self.raise(holdGoal, to: id) }

    /// Goal numbers only grow: a late store of an older one never lowers it.
    private static func raise(_ cell: borrowing Atomic<UInt64>, to id: UInt64) {
        var current = cell.load(ordering: .relaxed)
        while current < id {
            let (exchanged, original) = cell.compareExchange(expected: current, desired: id, ordering: .acquiringAndReleasing)
            if exchanged { return }
            current = original
        }
    }
}
