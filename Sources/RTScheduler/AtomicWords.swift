import Synchronization

/// Copies a `BitwiseCopyable` value to and from a run of `Atomic<UInt64>` words, each word with
/// relaxed ordering. The lock-free containers (`OverwritingRing`, `LatestValue`) keep their payload
/// this way so that a reader copying a slot while the writer rewrites it is not a data race in the
/// memory model: every access is atomic, and the sequence numbers around the copy (with the fences
/// the callers place) decide whether the copy is kept or thrown away. On x86-64 and arm64 a relaxed
/// 64-bit load or store is a plain `mov` / `ldr` / `str`: no cost over a `memcpy` word by word.
///
/// A copy that may be torn is assembled in raw scratch memory and only turned into a `T` once the
/// caller has validated it, so no invalid bit pattern (an enum tag) is ever read as a `T`.
@usableFromInline enum AtomicWords {
    /// Words needed for one `T` (at least one).
    @inlinable static func count<T: BitwiseCopyable>(for _: T.Type) -> Int {
        max(1, (MemoryLayout<T>.size + 7) / 8)
    }

    /// Allocates `count` words, zeroed.
    @usableFromInline static func allocate(_ count: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
        let words = UnsafeMutablePointer<Atomic<UInt64>>.allocate(capacity: count)
        for i in 0..<count { (words + i).initialize(to: Atomic(0)) }
        return words
    }

    @usableFromInline static func deallocate(_ words: UnsafeMutablePointer<Atomic<UInt64>>, count: Int) {
        words.deinitialize(count: count)
        words.deallocate()
    }

    /// Stores `value` into `words` (relaxed). No allocation, no lock.
    @inlinable static func store<T: BitwiseCopyable>(_ value: T, to words: UnsafeMutablePointer<Atomic<UInt64>>) {
        withUnsafeBytes(of: value) { bytes in
            let size = bytes.count
            var offset = 0
            var i = 0
            while offset + 8 <= size {
                words[i].store(bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self), ordering: .relaxed)
                offset += 8
                i += 1
            }
            if offset < size {
                var last: UInt64 = 0
                withUnsafeMutableBytes(of: &last) { w in
                    w.baseAddress!.copyMemory(from: bytes.baseAddress! + offset, byteCount: size - offset)
                }
                words[i].store(last, ordering: .relaxed)
            }
        }
    }

    /// Loads `count` words (relaxed) into `scratch` (at least `8 * count` bytes). The bytes are not
    /// a `T` until the caller has checked its sequence: then `scratch.loadUnaligned(as: T.self)`.
    @inlinable static func copy(_ words: UnsafeMutablePointer<Atomic<UInt64>>, count: Int, to scratch: UnsafeMutableRawPointer) {
        for i in 0..<count {
            scratch.storeBytes(of: words[i].load(ordering: .relaxed), toByteOffset: 8 * i, as: UInt64.self)
        }
    }
}
