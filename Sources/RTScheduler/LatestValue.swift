import Synchronization

/// The latest value of something one thread produces (a runtime's status) for any number of
/// readers, without a lock: `store` never waits and never allocates (for the dispatch thread);
/// `load` never waits for the writer — it retries only when a store completed meanwhile.
///
/// **Contract: one writer at a time** (stores must not overlap; debug builds trap if they do).
/// Readers: any threads, any number.
///
/// How: a seqlock in its "latch" form (Linux `raw_write_seqcount_latch`): two copies of the value,
/// each kept as relaxed atomic words (`AtomicWords`), and an atomic sequence. Even sequence: readers
/// use copy 0; odd: copy 1. A store
///   1. increments the sequence to odd (release store, then a release fence): readers move to
///      copy 1, which holds the previous value, complete;
///   2. writes copy 0;
///   3. increments the sequence to even (release store: copy 0 is published), then a release fence;
///   4. writes copy 1 (readers are on copy 0 now).
/// A reader loads the sequence (acquire), copies the copy it names, issues an acquire fence and
/// loads the sequence again; it keeps the copy only if the two loads agree.
///
/// Why a kept copy is never torn: the words of the copy a reader uses were written before the
/// release store of the sequence value it loaded (acquire), so it sees them — or newer words. A newer
/// word of that copy is written only after the writer has moved the sequence on *and* issued a
/// release fence; a relaxed load that reads such a word, followed by the reader's acquire fence,
/// synchronises with that fence, so the second sequence load sees the moved-on value and the copy is
/// dropped. Why readers never wait for a writer that is preempted mid-store: at any moment the copy
/// the sequence names is not being written (the writer writes copy 0 only while the sequence is odd,
/// copy 1 only while it is even), so a reader fails only if the writer *completed* a step during its
/// copy — lock-free, unlike the plain seqlock, whose readers spin while the sequence is odd.
///
/// `Value: BitwiseCopyable`: a copy taken mid-store is raw bytes that are thrown away, and a store
/// never retains or releases anything.
public final class LatestValue<Value: BitwiseCopyable & Sendable>: @unchecked Sendable {
    // @unchecked: the payload words are `Atomic`s; the pointer is freed in deinit only.
    @usableFromInline let sequence = Atomic<UInt64>(0)
    @usableFromInline let wordCount: Int
    /// Copy 0 at `words`, copy 1 at `words + wordCount`.
    @usableFromInline let words: UnsafeMutablePointer<Atomic<UInt64>>
    @usableFromInline let storing = Atomic<Bool>(false)

    public init(_ initial: Value) {
        wordCount = AtomicWords.count(for: Value.self)
        words = AtomicWords.allocate(2 * wordCount)
        AtomicWords.store(initial, to: words)
        AtomicWords.store(initial, to: words + wordCount)
    }

    deinit {
        AtomicWords.deallocate(words, count: 2 * wordCount)
    }

    /// Real-time safe: no allocation, no lock, no wait, no loop. One writer at a time.
    @inlinable public func store(_ value: Value) {
        assert(!storing.exchange(true, ordering: .acquiring),
               "LatestValue.store overlapped another store: the cell takes one writer at a time")
        let s = sequence.load(ordering: .relaxed)
        sequence.store(s &+ 1, ordering: .releasing)
        atomicMemoryFence(ordering: .releasing)
        AtomicWords.store(value, to: words)
        sequence.store(s &+ 2, ordering: .releasing)
        atomicMemoryFence(ordering: .releasing)
        AtomicWords.store(value, to: words + wordCount)
        assert({ storing.store(false, ordering: .releasing); return true }())
    }

    /// The latest stored value (or the initial one). Lock-free: retries only while stores complete
    /// during its copy. Any thread; does not allocate for values up to a few kilobytes (the scratch
    /// copy is on the stack).
    public func load() -> Value {
        // The value leaves the closure through `loaded`, never as the closure's result: Swift 6.3's
        // withUnsafeTemporaryAllocation wraps a generic result in `Result<Value, Never>`, and in
        // this unspecialised code the runtime read that enum's case as `failure` (a release build
        // of `robotd sim` crashed on its first status read; changed in Swift 6.4, swiftlang/swift#89429).
        var loaded: Value?
        withUnsafeTemporaryAllocation(byteCount: 8 * wordCount, alignment: 8) { scratch in
            let scratch = scratch.baseAddress!
            while loaded == nil {
                let before = sequence.load(ordering: .acquiring)
                AtomicWords.copy(words + Int(before & 1) * wordCount, count: wordCount, to: scratch)
                atomicMemoryFence(ordering: .acquiring)
                if sequence.load(ordering: .relaxed) == before {
                    loaded = UnsafeRawPointer(scratch).loadUnaligned(as: Value.self)
                }
            }
        }
        guard let loaded else { preconditionFailure("LatestValue.load left its loop without a value") }
        return loaded
    }

    /// Stores so far.
    public var stores: UInt64 { sequence.load(ordering: .relaxed) / 2 }
}
