import Dispatch
import Synchronization

/// Runs `operation` and returns its result, or throws `PlanBackendError.timeout` once `limit`
/// passes — without waiting for an operation that ignores cancellation (it is cancelled and left
/// to end on its own). The caller's cancellation cancels the operation and throws `.cancelled`.
///
/// The router wraps every back end in it, so that one that does not honour its own deadline still
/// cannot hold a request past it.
func withDeadline<T: Sendable>(_ limit: Duration, reported: Duration? = nil,
                               _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    let race = DeadlineRace<T>()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            guard race.arm(continuation) else { return }
            let work = Task {
                do {
                    race.finish(.success(try await operation()))
                } catch {
                    race.finish(.failure(error))
                }
            }
            race.attach(work: work)
            // Weak: a race that ended early is not kept until its deadline; a late timer is a no-op.
            deadlineQueue.asyncAfter(deadline: .now() + .nanoseconds(Int(clamping: limit.inNanoseconds))) { [weak race] in
                race?.finish(.failure(PlanBackendError.timeout(after: reported ?? limit)))
            }
        }
    } onCancel: {
        race.finish(.failure(PlanBackendError.cancelled))
    }
}

/// The first of the operation, the timer and the caller's cancellation wins; the others find it
/// finished and do nothing.
private final class DeadlineRace<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var finished = false
        var work: Task<Void, Never>?
    }

    private let state = Mutex(State())

    /// False when the caller was cancelled before the race began (then it is already resumed).
    func arm(_ continuation: CheckedContinuation<T, any Error>) -> Bool {
        let cancelledEarly = state.withLock { state -> Bool in
            if state.finished { return true }
            state.continuation = continuation
            return false
        }
        if cancelledEarly { continuation.resume(throwing: PlanBackendError.cancelled) }
        return !cancelledEarly
    }

    func attach(work: Task<Void, Never>) {
        let late = state.withLock { state -> Bool in
            guard !state.finished else { return true }
            state.work = work
            return false
        }
        if late { work.cancel() }
    }

    func finish(_ result: Result<T, any Error>) {
        let ended = state.withLock { state -> (CheckedContinuation<T, any Error>?, Task<Void, Never>?)? in
            guard !state.finished else { return nil }
            state.finished = true
            defer {
                state.continuation = nil
                state.work = nil
            }
            return (state.continuation, state.work)
        }
        guard let (continuation, work) = ended else { return }
        work?.cancel()
        continuation?.resume(with: result)
    }
}
