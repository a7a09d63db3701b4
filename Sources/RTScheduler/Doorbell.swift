import CRealtime

/// Wraps the C futex doorbell: producers ring a source's bit, the dispatch thread takes the bits
/// and sleeps until the next ring or an absolute deadline. See `docs/scheduler.md` for why a futex.
final class Doorbell: @unchecked Sendable {
    // The C object is internally synchronised with atomics; the pointer itself never changes.
    private let bell: OpaquePointer

    init(bits: Int) {
        let words = UInt32(max(1, (bits + 63) / 64))
        guard let bell = rt_doorbell_create(words) else { fatalError("out of memory creating the doorbell") }
        self.bell = bell
    }

    deinit { rt_doorbell_destroy(bell) }

    var words: Int { Int(rt_doorbell_words(bell)) }

    /// Real-time safe; callable from any thread.
    @inline(__always) func ring(_ bit: Int) { rt_doorbell_ring(bell, UInt32(bit)) }
    func nudge() { rt_doorbell_nudge(bell) }
    @inline(__always) func take(word: Int) -> UInt64 { rt_doorbell_take(bell, UInt32(word)) }

    /// Returns true when woken by a ring or nudge, false when the deadline passed.
    @discardableResult
    func wait(until deadline: Instant) -> Bool { rt_doorbell_wait(bell, deadline.nanoseconds) != 0 }

    var futexWord: UnsafeRawPointer { UnsafeRawPointer(rt_doorbell_futex_word(bell)) }

    var wakeSyscalls: UInt64 { rt_doorbell_wake_syscalls(bell) }
}
