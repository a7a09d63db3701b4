/// One runnable job in dispatch order: strict priority class, then earliest absolute deadline,
/// then lowest sequence number.
struct ReadyEntry {
    var priority: UInt8
    var deadline: Int64
    var sequence: UInt64
    /// Which runnable: a source's staged event or a periodic task's pending release.
    var runnable: Runnable

    enum Runnable: Equatable {
        case source(Int)
        case periodic(Int)
    }

    @inline(__always) static func precedes(_ a: ReadyEntry, _ b: ReadyEntry) -> Bool {
        if a.priority != b.priority { return a.priority < b.priority }
        if a.deadline != b.deadline { return a.deadline < b.deadline }
        return a.sequence < b.sequence
    }
}

/// A binary min-heap with storage allocated once. Each source and each periodic task has at most
/// one entry, so the capacity is known when the scheduler is built and a push never allocates.
struct ReadyQueue: ~Copyable {
    private let storage: UnsafeMutablePointer<ReadyEntry>
    let capacity: Int
    private(set) var count = 0

    init(capacity: Int) {
        self.capacity = max(1, capacity)
        storage = .allocate(capacity: self.capacity)
    }

    deinit { storage.deallocate() }

    var isEmpty: Bool { count == 0 }

    mutating func push(_ entry: ReadyEntry) {
        precondition(count < capacity, "ready queue overflow: one entry per runnable is the invariant")
        var child = count
        count += 1
        while child > 0 {
            let parent = (child - 1) / 2
            if !ReadyEntry.precedes(entry, storage[parent]) { break }
            storage[child] = storage[parent]
            child = parent
        }
        storage[child] = entry
    }

    mutating func popMin() -> ReadyEntry? {
        guard count > 0 else { return nil }
        let top = storage[0]
        count -= 1
        if count > 0 {
            let last = storage[count]
            var parent = 0
            while true {
                let left = 2 * parent + 1
                if left >= count { break }
                let right = left + 1
                let smaller = right < count && ReadyEntry.precedes(storage[right], storage[left]) ? right : left
                if !ReadyEntry.precedes(storage[smaller], last) { break }
                storage[parent] = storage[smaller]
                parent = smaller
            }
            storage[parent] = last
        }
        return top
    }
}
