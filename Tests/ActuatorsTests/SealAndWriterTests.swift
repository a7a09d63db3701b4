import CAllocCounter
import Codecs
import Foundation
import Glibc
import RTScheduler
import SafetyGuard
import Synchronization
import TestSupport
import Testing
@testable import Actuators

@Suite("Actuators: the guard's seal is checked where the bytes leave", .serialized)
struct SealTests {
    @Test func when_another_guards_approval_arrives_expect_it_refused_and_the_safe_value_written() throws {
        let ours = try Rig()
        var theirs = try Rig()  // a second, permissive guard
        let wheels = RecordingBackend(name: "wheels", channels: [ChannelID(index: 0), ChannelID(index: 1)])
        let set = try ActuatorSet(seal: ours.guardian.seal, backends: [wheels], clock: VirtualClock())
        set.start()
        let foreign = try theirs.approve(1, .continuous(0.9))
        #expect(set.write(foreign) == .sealRefused(.foreignGuard))
        #expect(wheels.entries == [.safeState, .safeValue(ChannelID(index: 1))])
        #expect(set.refusals(.foreignGuard) == 1 && set.written.load(ordering: .relaxed) == 0)
        let records = set.sealRefusals.drain()
        #expect(records == [ActuatorSet.SealRefusalRecord(channel: ChannelID(index: 1), refusal: .foreignGuard,
                                                          approvedAt: foreign.approvedAt, at: .zero)])
    }

    @Test func when_an_approval_is_replayed_after_a_latch_expect_it_refused() throws {
        var rig = try Rig()
        let wheels = RecordingBackend(name: "wheels", channels: [ChannelID(index: 0), ChannelID(index: 1)])
        let set = try ActuatorSet(seal: rig.guardian.seal, backends: [wheels], clock: VirtualClock())
        set.start()
        let stored = try rig.approve(0, .continuous(0.5))
        #expect(set.write(stored) == .written)
        // The latch's own stop commands carry the new epoch and go out; the stored one may not.
        rig.guardian.trigger(.emergencyStopInput, category: .zero, at: Instant(nanoseconds: 2_000_000)) { set.write($0) }
        #expect(rig.guardian.latch.isLatched)
        #expect(set.write(stored) == .sealRefused(.beforeLatch))
        #expect(wheels.entries.last == .safeValue(ChannelID(index: 0)))
        #expect(set.refusals(.beforeLatch) == 1 && set.refusals(.foreignGuard) == 0)
    }

    @Test func when_an_approval_has_expired_by_the_time_it_leaves_expect_it_refused() throws {
        var rig = try Rig()
        let clock = VirtualClock()
        let heater = RecordingBackend(name: "heater", channels: [ChannelID(index: 2)])
        let set = try ActuatorSet(seal: rig.guardian.seal, backends: [heater], clock: clock)
        set.start()
        let approval = try rig.approve(2, .discrete(1))  // valid for 1 s from 1 ms
        clock.advance(to: approval.validUntil)
        #expect(set.write(approval) == .written)
        clock.advance(by: .nanoseconds(1))
        #expect(set.write(approval) == .sealRefused(.expired))
        #expect(heater.entries.last == .safeValue(ChannelID(index: 2)))
        #expect(set.refusals(.expired) == 1)
        #expect(set.sealRefusals.drain().map(\.at) == [approval.validUntil + .nanoseconds(1)])
        // The guard is told the channel is at its safe value (once), so its limiter restarts there.
        #expect(set.takeSafeStateNotices() == 1 << 2)
        #expect(set.takeSafeStateNotices() == 0)
    }

    /// Threaded: `write` only queues; the writer refuses at dequeue and writes the safe value.
    @Test func when_the_writer_dequeues_a_foreign_approval_expect_it_refused_and_the_safe_value_written() throws {
        let ours = try Rig()
        var theirs = try Rig()
        let wheels = RecordingBackend(name: "wheels", channels: [ChannelID(index: 0)])
        let set = try ActuatorSet(seal: ours.guardian.seal, backends: [wheels], clock: VirtualClock(), mode: .threaded(.init()))
        set.start()
        defer { set.safeStop(reason: "test") }
        #expect(set.write(try theirs.approve(0, .continuous(0.9))) == .queued)
        #expect(waitUntil { set.refusals(.foreignGuard) == 1 })
        #expect(waitUntil { wheels.entries.last == .safeValue(ChannelID(index: 0)) })
        #expect(!wheels.entries.contains { if case .command = $0 { true } else { false } })
    }

    @Test func when_code_outside_actuators_constructs_a_device_write_token_expect_compile_error() throws {
        let result = try typecheckSnippet("forge-device-token")
        #expect(result.status != 0)
        #expect(result.output.contains("'DeviceWriteToken' initializer is inaccessible due to 'internal' protection level"), "\(result.output)")
    }

    @Test func when_code_outside_actuators_writes_through_the_set_expect_it_compiles() throws {
        let result = try typecheckSnippet("backend-through-set")
        #expect(result.status == 0, "\(result.output)")
    }
}

@Suite("Actuators: device I/O off the dispatch thread", .serialized)
struct WriterThreadTests {
    /// A pipe shrunk to one page and filled, that nobody reads: the writer's write sees EAGAIN, the
    /// link fault arrives within 100 ms, and `write` from a 1 kHz loop keeps returning at once.
    @Test func when_the_device_is_full_expect_a_stall_fault_within_100_ms_and_write_never_waiting() throws {
        signal(SIGPIPE, SIG_IGN)
        let wire = try Wire()
        var rig = try Rig()
        let faults = FaultLog()
        let faultAt = Atomic<Int64>(0)
        let writer = FileDescriptorWriter(fd: wire.write, stallTimeout: .milliseconds(50))
        let set = try ActuatorSet(seal: rig.guardian.seal, backends: [SerialFrameBackend(name: "drive", mappings: twoMotors, writer: writer)],
                                  clock: VirtualClock(), mode: .threaded(.init())) { fault in
            _ = faultAt.compareExchange(expected: 0, desired: monotonicNanoseconds(), ordering: .relaxed)
            faults.append(fault)
        }
        set.start()
        defer { set.safeStop(reason: "test") }
        _ = wire.available()  // the start-up safe state
        // F_SETPIPE_SZ (1031) is not imported into Swift.
        try #require(fcntl(wire.write, 1031, 4096) >= 4096)
        let page = [UInt8](repeating: 0x55, count: 4096)
        while Glibc.write(wire.write, page, page.count) > 0 {}
        try #require(errno == EAGAIN)
        let approvals = try (0..<300).map { i in try rig.approve(i % 2, .continuous(0.001 * Double(i % 100)), at: Int64(1 + i)) }
        var durations: [Int64] = []
        durations.reserveCapacity(approvals.count)
        let begin = monotonicNanoseconds()
        var next = begin
        for approval in approvals {
            let t0 = monotonicNanoseconds()
            _ = set.write(approval)
            durations.append(monotonicNanoseconds() - t0)
            next += 1_000_000
            let left = next - monotonicNanoseconds()
            if left > 0 { usleep(UInt32(left / 1000)) }
        }
        #expect(waitUntil(seconds: 2) { !faults.all.isEmpty })
        let fault = try #require(faults.all.first)
        #expect(fault.error.code == .stalled)
        let latency = Double(faultAt.load(ordering: .relaxed) - begin) / 1e6
        #expect(latency < 100, "link fault after \(latency) ms")
        #expect(set.state(of: "drive") == .inactive)
        #expect(faults.all.count == 1)
        let p50 = percentile(durations, 0.5), p99 = percentile(durations, 0.99)
        #expect(p99 < 1_000_000, "write() p50 \(p50) ns, p99 \(p99) ns")
        #expect(writer.link.stalls.load(ordering: .relaxed) >= 1)
    }

    /// A slow device: many writes while the writer is busy; only the newest per channel goes out,
    /// in order, the last one of each channel always, and the counts add up.
    @Test func when_the_writer_is_slow_expect_only_the_latest_per_channel_and_consistent_counts() throws {
        var rig = try Rig()
        let wheels = RecordingBackend(name: "wheels", channels: [ChannelID(index: 0), ChannelID(index: 1)])
        wheels.setDelay(microseconds: 2_000)
        let set = try ActuatorSet(seal: rig.guardian.seal, backends: [wheels], clock: VirtualClock(), mode: .threaded(.init()))
        set.start()
        defer { set.safeStop(reason: "test") }
        var sent: [[UInt32]] = [[], []]
        var approvals: [ApprovedCommand] = []
        for i in 0..<1_000 {
            let t = Instant(nanoseconds: Int64(1 + i) * 1_000)
            let command = Command(channel: ChannelID(index: i % 2), value: .continuous(0.1), origin: .policy, sourceTag: UInt32(i),
                                  issuedAt: t, validUntil: t + .seconds(10))
            approvals.append(try #require(rig.guardian.check(command, now: t).approved))
            sent[i % 2].append(UInt32(i))
        }
        for (i, approval) in approvals.enumerated() {
            #expect(set.write(approval) == .queued)
            if i % 50 == 0 { usleep(1_000) }
        }
        let counts = { set.mailboxCounts(of: "wheels") ?? .init() }
        #expect(waitUntil { counts().taken + counts().superseded == counts().published })
        #expect(waitUntil { set.written.load(ordering: .relaxed) == counts().taken })
        let c = counts()
        #expect(c.published == 1_000 && c.superseded > 0 && c.taken < 1_000)
        let commands = wheels.entries.compactMap { entry -> ApprovedCommand? in
            if case .command(let command) = entry { command } else { nil }
        }
        #expect(UInt64(commands.count) == c.taken)
        for channel in 0..<2 {
            let tags = commands.filter { $0.channel.index == channel }.map(\.sourceTag)
            #expect(tags == tags.sorted() && Set(tags).count == tags.count)  // newer only, never twice
            #expect(tags.last == sent[channel].last)  // the newest of each channel always goes out
        }
        #expect(set.refused.load(ordering: .relaxed) == 0 && set.failures.load(ordering: .relaxed) == 0)
    }

    @Test func when_write_runs_in_steady_state_expect_zero_allocations() throws {
        try #require(alloc_counter_is_active() != 0, "the malloc interposer is not active in this binary")
        let null = open("/dev/null", O_WRONLY | O_CLOEXEC)
        try #require(null >= 0)
        defer { close(null) }
        var rig = try Rig()
        let set = try ActuatorSet(seal: rig.guardian.seal,
                                  backends: [SerialFrameBackend(name: "drive", mappings: twoMotors, writer: FileDescriptorWriter(fd: null))],
                                  clock: VirtualClock(), mode: .threaded(.init()))
        set.start()
        defer { set.safeStop(reason: "test") }
        let approvals = try (0..<64).map { i in try rig.approve(i % 2, .continuous(0.01 * Double(i % 10)), at: Int64(1 + i)) }
        // Indexed loops: the unspecialised array iterator of a debug build would count the test.
        func run(_ n: Int) {
            var i = 0
            while i < n {
                set.write(approvals[i % approvals.count])
                if i % 16 == 0 { set.heartbeat() }
                i += 1
            }
        }
        run(1_000)
        let before = alloc_counter_thread_total()
        run(10_000)
        let allocations = alloc_counter_thread_total() - before
        #expect(allocations == 0, "\(allocations) allocations in 10 000 writes")
        #expect(waitUntil { set.written.load(ordering: .relaxed) > 0 && set.heartbeats.load(ordering: .relaxed) > 0 })
    }

    @Test func when_a_heartbeat_is_asked_for_expect_the_protocols_heartbeat_frame_on_the_wire() throws {
        let wire = try Wire()
        let rig = try Rig()
        let set = try ActuatorSet(seal: rig.guardian.seal,
                                  backends: [SerialFrameBackend(name: "drive", mappings: twoMotors, writer: FileDescriptorWriter(fd: wire.write))],
                                  clock: VirtualClock(), mode: .threaded(.init()))
        set.start()
        defer { set.safeStop(reason: "test") }
        _ = wire.available()
        set.heartbeat()
        var frames: [(type: UInt8, motor: MotorCommandMessage?)] = []
        #expect(waitUntil {
            frames += wire.frames()
            return !frames.isEmpty
        })
        #expect(frames.map(\.type) == [Frame.MessageType.heartbeat.rawValue])
        #expect(set.heartbeats.load(ordering: .relaxed) == 1)
    }

    /// The supervisor path: another thread holds every device lock of the set (the writer is
    /// blocked behind it, a command queued); the emergency safe state still reaches the pipe at
    /// once, and what was queued before it never goes out.
    @Test func when_the_writer_is_blocked_expect_the_emergency_safe_state_to_reach_the_device() throws {
        let wire = try Wire()
        var rig = try Rig()
        let set = try ActuatorSet(seal: rig.guardian.seal,
                                  backends: [SerialFrameBackend(name: "drive", mappings: twoMotors, writer: FileDescriptorWriter(fd: wire.write))],
                                  clock: VirtualClock(), mode: .threaded(.init()))
        set.start()
        defer { set.safeStop(reason: "test") }
        _ = wire.available()
        let held = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let holder = Thread {
            set.withDeviceLocksHeld {
                held.signal()
                release.wait()
            }
        }
        holder.start()
        #expect(held.wait(timeout: .now() + 5) == .success)
        #expect(set.write(try rig.approve(0, .continuous(0.8))) == .queued)
        let t0 = monotonicNanoseconds()
        let applied = set.emergencySafeState()
        let took = Double(monotonicNanoseconds() - t0) / 1e6
        let frames = wire.frames()
        release.signal()
        #expect(applied)
        #expect(took < 20, "emergency safe state took \(took) ms")
        #expect(frames.compactMap(\.motor) == [
            MotorCommandMessage(channel: 0, mode: .velocity, deenergize: true, value: 0),
            MotorCommandMessage(channel: 1, mode: .velocity, deenergize: true, value: 0),
        ])
        #expect(set.state(of: "drive") == .inactive)
        #expect(set.write(try rig.approve(0, .continuous(0.8), at: 2)) == .refused)
        // Once the writer is free it flushes the command queued before the stop.
        #expect(waitUntil { set.mailboxCounts(of: "drive")?.taken == 1 })
        usleep(20_000)
        #expect(wire.frames().isEmpty)
        #expect(set.written.load(ordering: .relaxed) == 0)
        // Back only through reactivation, in the safe state first.
        #expect(set.reactivate("drive"))
        var after: [MotorCommandMessage] = []
        #expect(waitUntil {
            after += wire.frames().compactMap(\.motor)
            return after.count == 2
        })
        #expect(after.allSatisfy { $0.deenergize })
    }
}

/// The figures in docs/scheduler.md ("Device I/O off the dispatch thread"). Opt-in (timing, not a
/// check): `ROBOTD_MEASURE_WRITER=1 swift test --skip-build --filter WriterMeasurement`.
@Suite("Actuators: writer-thread cost (measurement)", .serialized,
       .enabled(if: ProcessInfo.processInfo.environment["ROBOTD_MEASURE_WRITER"] != nil))
struct WriterMeasurement {
    /// Stamps the instant each frame's write(2) returned.
    final class StampingWriter: ByteWriter {
        let inner: FileDescriptorWriter
        let stamps = Mutex<[Int64]>([])
        init(fd: Int32) { inner = FileDescriptorWriter(fd: fd) }
        var isConnected: Bool { inner.isConnected }
        func write(_ bytes: UnsafeRawBufferPointer) throws {
            try inner.write(bytes)
            let now = monotonicNanoseconds()
            stamps.withLock { $0.append(now) }
        }
    }

    @Test func when_measured_expect_write_call_and_enqueue_to_write2_latencies_printed() throws {
        let wire = try Wire()
        let done = Atomic<Bool>(false)
        let drained = DispatchSemaphore(value: 0)
        let drain = Thread {
            while !done.load(ordering: .relaxed) { if wire.available().isEmpty { usleep(200) } }
            drained.signal()
        }
        drain.start()
        defer {
            done.store(true, ordering: .relaxed)
            drained.wait()
        }
        var rig = try Rig()
        let stamping = StampingWriter(fd: wire.write)
        let set = try ActuatorSet(seal: rig.guardian.seal,
                                  backends: [SerialFrameBackend(name: "drive", mappings: [twoMotors[0]], writer: stamping)],
                                  clock: VirtualClock(), mode: .threaded(.init(fifoPriority: 79)))
        set.start()
        defer { set.safeStop(reason: "measurement") }
        _ = waitUntil(seconds: 0.2) { false }
        stamping.stamps.withLock { $0.removeAll() }
        let approvals = try (0..<5_000).map { i in try rig.approve(0, .continuous(0.0001 * Double(i % 100)), at: Int64(1 + i)) }
        let results = Mutex<(calls: [Int64], endToEnd: [Int64], missing: Int)>(([], [], 0))
        let finished = DispatchSemaphore(value: 0)
        // The caller plays the dispatch thread: SCHED_FIFO 80, above its writer (79), as in the daemon.
        let loop = Thread {
            var param = sched_param(sched_priority: 80)
            _ = pthread_setschedparam(pthread_self(), SCHED_FIFO, &param)
            var calls: [Int64] = [], endToEnd: [Int64] = [], missing = 0
            var next = monotonicNanoseconds()
            for approval in approvals {
                let before = stamping.stamps.withLock { $0.count }
                let t0 = monotonicNanoseconds()
                set.write(approval)
                calls.append(monotonicNanoseconds() - t0)
                // Wait (spinning, ≤ 900 µs) for this command's write(2) to return.
                var stamp: Int64?
                while stamp == nil && monotonicNanoseconds() - t0 < 900_000 {
                    stamp = stamping.stamps.withLock { $0.count > before ? $0.last : nil }
                }
                if let stamp { endToEnd.append(stamp - t0) } else { missing += 1 }
                next += 1_000_000
                let left = next - monotonicNanoseconds()
                if left > 0 { usleep(UInt32(left / 1000)) }
            }
            results.withLock { $0 = (calls, endToEnd, missing) }
            finished.signal()
        }
        loop.start()
        finished.wait()
        let (calls, endToEnd, missing) = results.withLock { $0 }
        print("writers at SCHED_FIFO: \(set.writersAtFIFO.load(ordering: .relaxed)); \(calls.count) writes at 1 kHz, \(missing) not out within 900 µs")
        print("write() call ns: p50 \(percentile(calls, 0.5)) p99 \(percentile(calls, 0.99)) max \(calls.max() ?? 0)")
        print("enqueue→write(2) ns: p50 \(percentile(endToEnd, 0.5)) p99 \(percentile(endToEnd, 0.99)) max \(endToEnd.max() ?? 0)")
        #expect(endToEnd.count > calls.count / 2)  // a figure, not a check: most must arrive to mean anything
    }
}
