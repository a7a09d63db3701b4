import Synchronization

/// The state a runtime's handlers share (guard, policy, status): one lock, taken by the handlers on
/// the dispatch thread and briefly by whoever reads the status. A class so that `@Sendable`
/// handlers can capture it.
final class SharedState<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: sending Value) { mutex = Mutex(value) }
    func withLock<R>(_ body: (inout Value) -> R) -> R { mutex.withLock { body(&$0) } }
    func withLockIfAvailable<R>(_ body: (inout Value) -> R) -> R? { mutex.withLockIfAvailable { body(&$0) } }
}
