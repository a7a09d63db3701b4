import CRealtime
import RTScheduler

/// Wakes a back end's writer thread. Ringing is one atomic OR, one atomic add and a FUTEX_WAKE
/// only when the writer sleeps — never a wait, so the dispatch thread may ring it. The writer
/// sleeps on it with an absolute CLOCK_MONOTONIC time-out (the same C doorbell as the scheduler's).
final class WriterBell: @unchecked Sendable {
    // @unchecked: the C object is synchronised with atomics; the pointer never changes.
    private let bell: OpaquePointer

    init() {
        guard let bell = rt_doorbell_create(1) else { fatalError("out of memory creating a writer's doorbell") }
        self.bell = bell
    }

    deinit { rt_doorbell_destroy(bell) }

    @inline(__always) func ring() { rt_doorbell_ring(bell, 0) }

    /// Sleeps until rung or `deadline` (CLOCK_MONOTONIC ns); clears the ring.
    func wait(until deadline: Int64) {
        rt_doorbell_wait(bell, deadline)
        _ = rt_doorbell_take(bell, 0)
    }
}
