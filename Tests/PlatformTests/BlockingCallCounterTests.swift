import CBlockingCallCounter
import CRealtime
import Glibc
import Platform
import Synchronization
import Testing

/// What one armed thread did: its own counters and its entries in the recent-calls ring.
struct Counted: Sendable {
    var total: UInt64
    var kinds: [UInt64]
    var calls: [String]
    func count(_ kind: blockcount_kind) -> UInt64 { kinds[Int(kind.rawValue)] }
}

/// Runs `body` on a new thread armed for counting. Per-thread figures, so other tests running in
/// parallel cannot disturb them.
func onArmedThread(_ body: @escaping @Sendable () -> Void) throws -> Counted {
    let result = Mutex<Counted?>(nil)
    let thread = try RealtimeThread(name: "armed") {
        blockcount_arm_current_thread()
        body()
        blockcount_disarm_current_thread()
        let counted = Counted(total: blockcount_thread_total(),
                              kinds: (0..<BLOCKCOUNT_KIND_COUNT.rawValue).map { blockcount_thread_kind_total(blockcount_kind($0)) },
                              calls: recentCalls(of: blockcount_current_thread_id()))
        result.withLock { $0 = counted }
    }
    thread.join()
    return try #require(result.withLock { $0 })
}

/// The ring's entries for thread `tid`, as "call(detail)".
func recentCalls(of tid: Int32) -> [String] {
    var events = [blockcount_event](repeating: blockcount_event(), count: 64)
    let n = blockcount_recent(&events, events.count)
    return events.prefix(n).filter { $0.tid == tid }.map { "\(String(cString: $0.call))(\($0.detail))" }
}

/// A pipe with `bytes` already written to it (by the unarmed test thread).
func pipeWith(_ bytes: [UInt8], nonBlocking: Bool) throws -> (read: Int32, write: Int32) {
    var fds: [Int32] = [0, 0]
    try #require(pipe(&fds) == 0)
    if nonBlocking { try #require(fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK) == 0) }
    if !bytes.isEmpty { try #require(write(fds[1], bytes, bytes.count) == bytes.count) }
    return (fds[0], fds[1])
}

@Suite("Blocking-call counter (CBlockingCallCounter)", .serialized)
struct BlockingCallCounterTests {
    @Test func when_an_armed_thread_reads_a_blocking_pipe_with_data_ready_expect_one_read_counted() throws {
        let (r, w) = try pipeWith([1, 2, 3], nonBlocking: false)
        defer { close(r); close(w) }
        let got = Mutex<[UInt8]>([])
        let counted = try onArmedThread {
            var buffer = [UInt8](repeating: 0, count: 8)
            let n = read(r, &buffer, buffer.count)
            got.withLock { $0 = Array(buffer.prefix(max(n, 0))) }
        }
        #expect(got.withLock { $0 } == [1, 2, 3])
        #expect(counted.total == 1 && counted.count(BLOCKCOUNT_READ) == 1)
        #expect(counted.calls == ["read(\(r))"])
    }

    @Test func when_the_pipe_is_non_blocking_expect_nothing_counted_and_errno_kept() throws {
        let (r, w) = try pipeWith([7], nonBlocking: true)
        defer { close(r); close(w) }
        let outcome = Mutex<(first: Int, second: Int, errno: Int32)>((0, 0, 0))
        let counted = try onArmedThread {
            var buffer = [UInt8](repeating: 0, count: 8)
            let first = read(r, &buffer, buffer.count)
            errno = 0
            let second = read(r, &buffer, buffer.count)  // empty now: EAGAIN, which the check must not clobber
            outcome.withLock { $0 = (first, second, errno) }
        }
        #expect(outcome.withLock { $0.first } == 1)
        #expect(outcome.withLock { $0.second } == -1 && outcome.withLock { $0.errno } == EAGAIN)
        #expect(counted.total == 0, "\(counted.calls)")
    }

    @Test func when_an_armed_thread_writes_a_blocking_pipe_expect_one_write_counted() throws {
        let (r, w) = try pipeWith([], nonBlocking: false)
        defer { close(r); close(w) }
        let counted = try onArmedThread { _ = write(w, [9], 1) }
        #expect(counted.total == 1 && counted.count(BLOCKCOUNT_WRITE) == 1)
        #expect(counted.calls == ["write(\(w))"])
    }

    @Test func when_an_armed_thread_sleeps_expect_each_sleep_counted_once() throws {
        let counted = try onArmedThread {
            usleep(1_000)
            rt_sleep_until(rt_monotonic_ns() + 1_000_000)  // clock_nanosleep
            var duration = timespec(tv_sec: 0, tv_nsec: 1_000_000)
            nanosleep(&duration, nil)
        }
        #expect(counted.total == 3 && counted.count(BLOCKCOUNT_SLEEP) == 3)
        #expect(counted.calls.map { $0.prefix { $0 != "(" } } == ["usleep", "clock_nanosleep", "nanosleep"])
        #expect(counted.calls.first == "usleep(1000000)")
    }

    @Test func when_polling_expect_only_a_non_zero_timeout_counted() throws {
        let (r, w) = try pipeWith([1], nonBlocking: false)
        defer { close(r); close(w) }
        let counted = try onArmedThread {
            var fd = pollfd(fd: r, events: Int16(POLLIN), revents: 0)
            _ = poll(&fd, 1, 0)
            _ = poll(&fd, 1, 10)
        }
        #expect(counted.total == 1 && counted.count(BLOCKCOUNT_POLL) == 1)
        #expect(counted.calls == ["poll(10)"])
    }

    @Test func when_a_swift_mutex_is_contended_expect_a_futex_wait_counted_and_uncontended_not() throws {
        let uncontended = try onArmedThread { Mutex<Int>(0).withLock { $0 += 1 } }
        #expect(uncontended.total == 0, "\(uncontended.calls)")

        let mutex = Mutex<Int>(0)
        let held = Atomic<Bool>(false)
        let holder = try RealtimeThread(name: "holder") {
            mutex.withLock { value in
                held.store(true, ordering: .releasing)
                usleep(100_000)
                value += 1
            }
        }
        let contended = try onArmedThread {
            while !held.load(ordering: .acquiring) {}  // spin, not block, until the holder has it
            mutex.withLock { $0 += 1 }
        }
        holder.join()
        #expect(mutex.withLock { $0 } == 2)
        // The slow path is syscall(SYS_futex, FUTEX_LOCK_PI_PRIVATE): once, unless interrupted.
        #expect(contended.count(BLOCKCOUNT_FUTEX_WAIT) >= 1 && contended.total == contended.count(BLOCKCOUNT_FUTEX_WAIT))
        #expect(contended.calls.first?.hasPrefix("futex(LOCK_PI)") == true, "\(contended.calls)")
    }

    @Test func when_a_pthread_mutex_is_contended_expect_it_counted_and_uncontended_not() throws {
        let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        defer { pthread_mutex_destroy(mutex); mutex.deallocate() }
        let address = Int(bitPattern: mutex)
        let uncontended = try onArmedThread {
            let m = UnsafeMutablePointer<pthread_mutex_t>(bitPattern: address)!
            pthread_mutex_lock(m)
            pthread_mutex_unlock(m)
        }
        #expect(uncontended.total == 0, "\(uncontended.calls)")
        let held = Atomic<Bool>(false)
        let holder = try RealtimeThread(name: "holder") {
            let m = UnsafeMutablePointer<pthread_mutex_t>(bitPattern: address)!
            pthread_mutex_lock(m)
            held.store(true, ordering: .releasing)
            usleep(50_000)
            pthread_mutex_unlock(m)
        }
        let contended = try onArmedThread {
            while !held.load(ordering: .acquiring) {}  // spin, not block, until the holder has it
            let m = UnsafeMutablePointer<pthread_mutex_t>(bitPattern: address)!
            pthread_mutex_lock(m)
            pthread_mutex_unlock(m)
        }
        holder.join()
        #expect(contended.total == 1 && contended.count(BLOCKCOUNT_MUTEX) == 1)
        #expect(contended.calls == ["pthread_mutex_lock(\(address))"])
    }

    @Test func when_the_doorbell_waits_expect_a_futex_wait_counted_unless_its_word_is_exempt() throws {
        let bell = try #require(rt_doorbell_create(2))
        defer { rt_doorbell_destroy(bell) }
        let word = Int(bitPattern: rt_doorbell_futex_word(bell))
        let bellAddress = Int(bitPattern: bell)
        func waitOnce() throws -> Counted {
            try onArmedThread {
                let bell = OpaquePointer(bitPattern: bellAddress)!
                _ = rt_doorbell_wait(bell, rt_monotonic_ns() + 2_000_000)  // times out: nobody rings
            }
        }
        // Not exempt: the doorbell's own syscall(SYS_futex) reaches the interposer.
        let plain = try waitOnce()
        #expect(plain.total == 1 && plain.count(BLOCKCOUNT_FUTEX_WAIT) == 1)
        #expect(plain.calls == ["futex(WAIT_BITSET)(\(word))"])

        try #require(blockcount_exempt_range(rt_doorbell_futex_word(bell), 4) == 0)
        defer { blockcount_clear_exemptions() }
        let exempted = try waitOnce()
        #expect(exempted.total == 0, "\(exempted.calls)")
    }

    @Test func when_a_thread_is_not_armed_or_disarmed_expect_nothing_counted() throws {
        let (r, w) = try pipeWith([1, 2], nonBlocking: false)
        defer { close(r); close(w) }
        let observed = Mutex<(tid: Int32, threadTotal: UInt64, armed: Int32)>((0, 0, 0))
        let thread = try RealtimeThread(name: "unarmed") {
            var buffer = [UInt8](repeating: 0, count: 1)
            _ = read(r, &buffer, 1)  // never armed
            usleep(1_000)
            blockcount_arm_current_thread()
            blockcount_disarm_current_thread()
            _ = read(r, &buffer, 1)  // armed, then disarmed
            usleep(1_000)
            observed.withLock { $0 = (blockcount_current_thread_id(), blockcount_thread_total(), blockcount_current_thread_is_armed()) }
        }
        thread.join()
        let (tid, threadTotal, armed) = observed.withLock { $0 }
        #expect(threadTotal == 0 && armed == 0)
        // Had any of those calls been counted, the ring would hold entries with this thread's id.
        #expect(recentCalls(of: tid).isEmpty)
    }
}
