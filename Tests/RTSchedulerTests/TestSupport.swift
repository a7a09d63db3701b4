import Synchronization
@testable import RTScheduler

/// A thread-safe list that handlers append to.
final class Recorder<Element: Sendable>: Sendable {
    private let items = Mutex<[Element]>([])
    func append(_ item: Element) { items.withLock { $0.append(item) } }
    var all: [Element] { items.withLock { $0 } }
    var count: Int { items.withLock { $0.count } }
}

extension Duration {
    static func ns(_ value: Int64) -> Duration { .nanoseconds(value) }
}

func instant(ms: Int64) -> Instant { Instant(nanoseconds: ms * 1_000_000) }
func instant(us: Int64) -> Instant { Instant(nanoseconds: us * 1_000) }
