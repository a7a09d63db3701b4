import CRealtime
import Glibc
import Synchronization

/// A stop request that a worker thread polls, with a sleep that ends early when it is set.
public final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    public init() {}
    public var isSet: Bool { flag.load(ordering: .relaxed) }
    public func set() { flag.store(true, ordering: .relaxed) }

    /// Sleeps up to `milliseconds`, waking every 20 ms to check the flag.
    public func sleep(milliseconds: Int) {
        var left = milliseconds
        while left > 0 && !isSet {
            let step = min(left, 20)
            usleep(UInt32(step * 1000))
            left -= step
        }
    }
}

/// A worker thread that runs until asked to stop: `stop()` sets its flag and joins it. Readers
/// (serial, streams) and the MQTT network loop are built on it.
public final class StoppableThread: Sendable {
    public let flag = StopFlag()
    private let thread = Mutex<RealtimeThread?>(nil)
    /// -1 until the thread has started; then 1 if SCHED_FIFO was applied, 0 if not (or not asked).
    private let applied = FIFOState()

    /// `fifoPriority`: the thread puts itself under SCHED_FIFO at this priority first (input
    /// readers sit below the dispatch thread; without the privilege it runs on as it is and
    /// `fifoApplied` says so, for the owner's one warning).
    public init(name: String, fifoPriority: Int? = nil, body: @escaping @Sendable (StopFlag) -> Void) throws {
        let flag = self.flag
        let applied = self.applied
        let handle = try RealtimeThread(name: name) {
            let ok = fifoPriority.map { rt_set_fifo(Int32($0)) == 0 } ?? false
            applied.value.store(ok ? 1 : 0, ordering: .releasing)
            body(flag)
        }
        thread.withLock { $0 = handle }
    }

    /// Waits (briefly) until the thread has started and says whether SCHED_FIFO was applied.
    public func waitForFIFO() -> Bool {
        for _ in 0..<1000 {
            let v = applied.value.load(ordering: .acquiring)
            if v >= 0 { return v == 1 }
            usleep(1000)
        }
        return false
    }

    /// Sets the flag and waits for the body to return. Idempotent.
    public func stop() {
        flag.set()
        let handle = thread.withLock { h -> RealtimeThread? in
            let current = h
            h = nil
            return current
        }
        handle?.join()
    }

    deinit { stop() }
}

/// Holds at most one worker thread that can be started later and stopped from any thread, once:
/// what a component with a `start()`/`stop()` pair keeps (the MQTT network loop, the simulator).
public final class WorkerSlot: Sendable {
    private let slot = Mutex<StoppableThread?>(nil)
    public init() {}

    /// `fifoPriority`: SCHED_FIFO when permitted (as `StoppableThread`); nil: SCHED_OTHER.
    public func start(name: String, fifoPriority: Int? = nil, body: @escaping @Sendable (StopFlag) -> Void) throws {
        let thread = try StoppableThread(name: name, fifoPriority: fifoPriority, body: body)
        slot.withLock { $0 = thread }
    }

    /// Stops and joins the worker, if there is one. Idempotent.
    public func stop() {
        let thread = slot.withLock { t -> StoppableThread? in
            let current = t
            t = nil
            return current
        }
        thread?.stop()
    }
}

private final class FIFOState: Sendable {
    let value = Atomic<Int>(-1)
}
