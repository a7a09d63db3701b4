import CAllocCounter
import CBlockingCallCounter
import CTransport
import Codecs
import Foundation
import Glibc
import RTScheduler
import SafetyGuard
import Synchronization
import TestSupport
import Testing
@testable import Actuators

// The direct lane: the dispatch thread writes an approved command's frame itself when that costs
// no wait, and hands it to the writer thread otherwise (ActuatorSet's type comment).

/// Frames read back from a device, decoded with the repository's codec; fragments are counted.
private struct Received {
    var motors: [MotorCommandMessage] = []
    var others = 0
    var rejected = 0

    static func decode(_ bytes: [UInt8]) -> Received {
        var decoder = FrameDecoder()
        var out = Received()
        bytes.withUnsafeBytes { raw in
            decoder.feed(raw) { frame in
                if let motor = MotorCommandMessage(payload: frame.payload), frame.type == Frame.MessageType.motorCommand.rawValue {
                    out.motors.append(motor)
                } else {
                    out.others += 1
                }
            }
        }
        out.rejected = decoder.framesRejected
        return out
    }

    func values(motor: UInt8) -> [Float] { motors.filter { $0.channel == motor && !$0.deenergize }.map(\.value) }
}

/// Reads whatever a non-blocking descriptor has now.
private func drain(_ fd: Int32) -> [UInt8] {
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65_536)
    while true {
        let n = Glibc.read(fd, &chunk, chunk.count)
        if n <= 0 { break }
        out += chunk.prefix(n)
    }
    return out
}

/// A pseudo-terminal as a serial device: the back end writes the slave (raw, non-blocking, as
/// robotd's termios port opens it); the test reads the master — or does not, and the pty fills.
private final class Pty: Sendable {
    let master: Int32
    let slave: Int32
    init() throws {
        var name = [CChar](repeating: 0, count: 128)
        let m = tr_open_pty(&name, name.count)
        guard m >= 0 else { throw POSIXError(.ENOTTY) }
        let path = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let s = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)
        guard s >= 0, tr_configure_raw(s, 115_200, 8, CChar(UInt8(ascii: "N")), 1, 0) == 0 else {
            close(m)
            throw POSIXError(.ENOENT)
        }
        _ = fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK)
        master = m
        slave = s
    }
    deinit {
        close(slave)
        close(master)
    }
}

/// A writer in front of a real descriptor whose direct attempts the test can refuse ("the device
/// is full") or hold inside the attempt (the dispatch thread caught mid-write, holding the lane).
private final class ControlledWriter: ByteWriter {
    let inner: FileDescriptorWriter
    let full = Atomic<Bool>(false)
    let holdNext = Atomic<Bool>(false)
    let entered = DispatchSemaphore(value: 0)
    let gate = DispatchSemaphore(value: 0)
    init(fd: Int32) { inner = FileDescriptorWriter(fd: fd) }
    var isConnected: Bool { inner.isConnected }
    func write(_ bytes: UnsafeRawBufferPointer) throws { try inner.write(bytes) }
    func emergencyWrite(_ bytes: UnsafeRawBufferPointer) -> Bool { inner.emergencyWrite(bytes) }
    func dropFragment() { inner.dropFragment() }
    func writeOnce(_ bytes: UnsafeRawBufferPointer) -> SingleWrite {
        if holdNext.exchange(false, ordering: .relaxed) {
            entered.signal()
            gate.wait()
        }
        return full.load(ordering: .relaxed) ? .nothing : inner.writeOnce(bytes)
    }
}

private func directSet(_ rig: Rig, writer: any ByteWriter, clock: any SchedulerClock = VirtualClock(),
                       onFault: @escaping @Sendable (ActuatorSet.Fault) -> Void = { _ in }) throws -> ActuatorSet {
    try ActuatorSet(seal: rig.guardian.seal, backends: [SerialFrameBackend(name: "drive", mappings: twoMotors, writer: writer)],
                    clock: clock, mode: .threaded(.init(directWrites: ["drive"])), onFault: onFault)
}

@Suite("Actuators: direct writes from the dispatch thread", .serialized)
struct DirectWriteTests {
    @Test func when_the_lane_is_free_expect_the_caller_to_write_the_frame_itself() throws {
        let pipe = try Wire()
        var rig = try Rig()
        let set = try directSet(rig, writer: FileDescriptorWriter(fd: pipe.write))
        set.start()
        defer { set.safeStop(reason: "test") }
        _ = drain(pipe.read)
        // The writer does nothing meanwhile: what is on the wire, the caller wrote.
        let approval = try rig.approve(0, .continuous(0.25))
        set.withWritersPaused {
            #expect(set.write(approval) == .written)
            #expect(Received.decode(drain(pipe.read)).values(motor: 0) == [0.25])
        }
        #expect(set.directWritten.load(ordering: .relaxed) == 1 && set.written.load(ordering: .relaxed) == 1)
        #expect(set.mailboxCounts(of: "drive")?.published == 0)
    }

    @Test func when_a_back_end_cannot_write_directly_expect_the_set_refused_at_construction() throws {
        let rig = try Rig()
        let recording = RecordingBackend(name: "wheels", channels: [ChannelID(index: 0)])
        #expect(throws: ActuatorError.self) {
            _ = try ActuatorSet(seal: rig.guardian.seal, backends: [recording], clock: VirtualClock(),
                                mode: .threaded(.init(directWrites: ["wheels"])))
        }
        #expect(throws: ActuatorError.self) {
            _ = try ActuatorSet(seal: rig.guardian.seal, backends: [recording], clock: VirtualClock(),
                                mode: .threaded(.init(directWrites: ["nobody"])))
        }
    }

    /// An older command of the channel waits in the mailbox (its direct attempt found the device
    /// full; the writer has not got round to it): a newer one must go behind it, through the
    /// mailbox, not onto the wire before it — else the writer would later send the stale one last.
    @Test func when_an_older_command_waits_for_the_writer_expect_a_newer_one_never_to_overtake_it() throws {
        let pipe = try Wire()
        var rig = try Rig()
        let writer = ControlledWriter(fd: pipe.write)
        let set = try directSet(rig, writer: writer)
        set.start()
        defer { set.safeStop(reason: "test") }
        _ = drain(pipe.read)
        let older = try rig.approve(0, .continuous(0.1), at: 2)
        let newer = try rig.approve(0, .continuous(0.2), at: 3)
        let other = try rig.approve(1, .continuous(0.3), at: 4)
        set.withWritersPaused {
            writer.full.store(true, ordering: .relaxed)
            #expect(set.write(older) == .queued)
            writer.full.store(false, ordering: .relaxed)
            #expect(set.write(newer) == .queued)
            // Another channel has nothing waiting: it goes out directly.
            #expect(set.write(other) == .written)
            let now = Received.decode(drain(pipe.read))
            #expect(now.values(motor: 0).isEmpty && now.values(motor: 1) == [0.3])
        }
        var received = Received()
        #expect(waitUntil {
            received.motors += Received.decode(drain(pipe.read)).motors
            return !received.values(motor: 0).isEmpty
        })
        usleep(20_000)
        received.motors += Received.decode(drain(pipe.read)).motors
        #expect(received.values(motor: 0) == [0.2], "motor 0 got \(received.values(motor: 0))")
        #expect(set.mailboxCounts(of: "drive")?.superseded == 1)
        #expect(set.directDeferred.load(ordering: .relaxed) == 2)
    }

    /// An approval from before a latch: the direct path does not write it; the writer refuses it
    /// by the seal, counts it and writes the channel's safe value instead.
    @Test func when_an_approval_is_revoked_by_a_latch_expect_it_never_written_on_the_direct_path() throws {
        let pipe = try Wire()
        var rig = try Rig()
        let set = try directSet(rig, writer: FileDescriptorWriter(fd: pipe.write))
        set.start()
        defer { set.safeStop(reason: "test") }
        _ = drain(pipe.read)
        let stored = try rig.approve(0, .continuous(0.7))
        rig.guardian.trigger(.emergencyStopInput, category: .zero, at: Instant(nanoseconds: 2_000_000)) { _ in }
        try #require(rig.guardian.latch.isLatched)
        set.withWritersPaused {
            #expect(set.write(stored) == .queued)
            #expect(drain(pipe.read).isEmpty)
        }
        #expect(waitUntil { set.refusals(.beforeLatch) == 1 })
        var received = Received()
        #expect(waitUntil {
            received.motors += Received.decode(drain(pipe.read)).motors
            return !received.motors.isEmpty
        })
        #expect(received.motors == [MotorCommandMessage(channel: 0, mode: .velocity, deenergize: true, value: 0)])
        #expect(set.directWritten.load(ordering: .relaxed) == 0 && set.written.load(ordering: .relaxed) == 0)
        #expect(set.takeSafeStateNotices() == 1 << 0)
    }

    @Test func when_an_approval_has_expired_expect_it_never_written_on_the_direct_path() throws {
        let pipe = try Wire()
        var rig = try Rig()
        let clock = VirtualClock()
        let set = try directSet(rig, writer: FileDescriptorWriter(fd: pipe.write), clock: clock)
        set.start()
        defer { set.safeStop(reason: "test") }
        _ = drain(pipe.read)
        let approval = try rig.approve(1, .continuous(0.4))
        clock.advance(to: approval.validUntil + .nanoseconds(1))
        #expect(set.write(approval) == .queued)
        #expect(waitUntil { set.refusals(.expired) == 1 })
        var received = Received()
        #expect(waitUntil {
            received.motors += Received.decode(drain(pipe.read)).motors
            return !received.motors.isEmpty
        })
        #expect(received.values(motor: 1).isEmpty && received.motors.allSatisfy(\.deenergize))
        #expect(set.directWritten.load(ordering: .relaxed) == 0)
    }

    /// A real pty whose reader is paused fills up: a direct write goes out partly (the writer
    /// finishes that frame) or not at all (the writer takes the command), and the caller never
    /// waits. When the reader resumes, every frame decodes (no fragment), each channel's values
    /// arrive in the order they were commanded (no stale one after a newer), and the last
    /// commanded value of each channel is the last on the wire.
    @Test func when_the_pty_fills_up_expect_partial_frames_finished_by_the_writer_and_order_kept() throws {
        let pty = try Pty()
        var rig = try Rig()
        let faults = FaultLog()
        let writer = FileDescriptorWriter(fd: pty.slave, stallTimeout: .seconds(10))
        let set = try directSet(rig, writer: writer) { faults.append($0) }
        set.start()
        defer { set.safeStop(reason: "test") }
        var wire = drain(pty.master)
        wire.removeAll()
        var durations: [Int64] = []
        var sent: [[Float]] = [[], []]
        var i = 0
        // Write until the pty has refused at least one frame partway; reading a little now and
        // then (kept, in order) shifts where the pty's room ends relative to the frames.
        var rounds = 0
        while writer.link.oncePartial.load(ordering: .relaxed) == 0 && rounds < 200 {
            rounds += 1
            var outcome = ActuatorSet.WriteOutcome.written
            while outcome == .written && i < 100_000 {
                let channel = i % 2
                let value = Float(i % 9_000) / 10_000
                let approval = try rig.approve(channel, .continuous(Double(value)), at: 1)
                let t0 = monotonicNanoseconds()
                outcome = set.write(approval)
                durations.append(monotonicNanoseconds() - t0)
                sent[channel].append(value)
                i += 1
            }
            if writer.link.oncePartial.load(ordering: .relaxed) == 0 {
                var chunk = [UInt8](repeating: 0, count: 701)
                let n = Glibc.read(pty.master, &chunk, chunk.count)
                if n > 0 { wire += chunk.prefix(n) }
                usleep(1_000)  // the writer sends what it took meanwhile
            }
        }
        try #require(writer.link.oncePartial.load(ordering: .relaxed) >= 1, "no partial write in \(rounds) rounds")
        // More commands while the writer holds the frame's rest: all handed over, none waits.
        for _ in 0..<50 {
            let channel = i % 2
            let value = Float(i % 9_000) / 10_000
            let approval = try rig.approve(channel, .continuous(Double(value)), at: 1)
            let t0 = monotonicNanoseconds()
            #expect(set.write(approval) == .queued)
            durations.append(monotonicNanoseconds() - t0)
            sent[channel].append(value)
            i += 1
        }
        // The reader resumes: everything flows until quiet.
        var quietSince = monotonicNanoseconds()
        while monotonicNanoseconds() - quietSince < 300_000_000 {
            let more = drain(pty.master)
            if !more.isEmpty { wire += more; quietSince = monotonicNanoseconds() } else { usleep(2_000) }
        }
        let received = Received.decode(wire)
        #expect(received.rejected == 0, "\(received.rejected) fragments on the wire")
        for motor in 0..<2 {
            let values = received.values(motor: UInt8(motor))
            // Values only move forward through what was sent (the newest may skip older ones).
            var position = 0
            var inOrder = true
            for value in values {
                guard let found = sent[motor][position...].firstIndex(of: value) else { inOrder = false; break }
                position = found + 1
            }
            #expect(inOrder, "motor \(motor): a value arrived out of order")
            #expect(values.last == sent[motor].last, "motor \(motor): last \(String(describing: values.last)), sent \(String(describing: sent[motor].last))")
        }
        #expect(faults.all.isEmpty && set.state(of: "drive") == .active)
        #expect(set.directPartial.load(ordering: .relaxed) >= 1 && set.directDeferred.load(ordering: .relaxed) >= 50)
        #expect(set.directWritten.load(ordering: .relaxed) > 100)
        let p99 = percentile(durations, 0.99)
        #expect(p99 < 1_000_000, "write() p99 \(p99) ns over \(durations.count) calls")
    }

    /// The supervisor's emergency safe state while the dispatch thread is inside its direct write
    /// (holding the lane's device lock and the back end's buffer): it does not wait, its safe frames
    /// reach the device at once, and the direct write that lands after them is followed by the
    /// channel's safe value (an energised frame is never the last word).
    @Test func when_the_emergency_stop_comes_during_a_direct_write_expect_it_not_to_wait_and_the_safe_value_last() throws {
        let pipe = try Wire()
        var rig = try Rig()
        let writer = ControlledWriter(fd: pipe.write)
        let set = try directSet(rig, writer: writer)
        set.start()
        defer { set.safeStop(reason: "test") }
        _ = drain(pipe.read)
        let approval = try rig.approve(0, .continuous(0.8))
        let outcome = Mutex<ActuatorSet.WriteOutcome?>(nil)
        writer.holdNext.store(true, ordering: .relaxed)
        let dispatch = Thread { outcome.withLock { $0 = set.write(approval) } }
        dispatch.start()
        try #require(writer.entered.wait(timeout: .now() + 5) == .success)
        let t0 = monotonicNanoseconds()
        let applied = set.emergencySafeState()
        let took = Double(monotonicNanoseconds() - t0) / 1e6
        let during = Received.decode(drain(pipe.read))
        writer.gate.signal()
        #expect(waitUntil { outcome.withLock { $0 } != nil })
        #expect(applied && took < 20, "emergency safe state: applied \(applied), took \(took) ms")
        #expect(during.motors == [
            MotorCommandMessage(channel: 0, mode: .velocity, deenergize: true, value: 0),
            MotorCommandMessage(channel: 1, mode: .velocity, deenergize: true, value: 0),
        ])
        // The direct write was already past its checks: it went out, and the safe value after it.
        #expect(outcome.withLock { $0 } == .written)
        let after = Received.decode(drain(pipe.read))
        #expect(after.motors.first == MotorCommandMessage(channel: 0, mode: .velocity, deenergize: false, value: 0.8))
        #expect(after.motors.last(where: { $0.channel == 0 })?.deenergize == true)
        #expect(set.overtaken.load(ordering: .relaxed) == 1 && set.state(of: "drive") == .inactive)
        #expect(set.write(try rig.approve(0, .continuous(0.5), at: 2)) == .refused)
    }

    /// The dispatch thread's side, counted by CBlockingCallCounter: with the lane's device lock
    /// held by another thread, and then with the pty full (its reader paused), every direct write
    /// returns at once without a blocking call, and the command still reaches the device through
    /// the writer once the lock is free or the reader resumes.
    @Test func when_the_lock_is_held_or_the_pty_is_full_expect_no_blocking_call_and_the_command_delivered_later() throws {
        let pty = try Pty()
        var rig = try Rig()
        let writer = FileDescriptorWriter(fd: pty.slave, stallTimeout: .seconds(10))
        let set = try directSet(rig, writer: writer)
        set.start()
        defer { set.safeStop(reason: "test") }
        _ = drain(pty.master)
        let approvals = try (0..<400).map { i in try rig.approve(i % 2, .continuous(Double(i) / 1_000), at: 1) }

        /// Writes on a thread armed with the counter: (outcome, duration) per write and the
        /// blocking calls it made.
        func armedWrites(_ batch: ArraySlice<ApprovedCommand>) -> (outcomes: [ActuatorSet.WriteOutcome], durations: [Int64], blocking: UInt64, calls: [String]) {
            let result = Mutex<([ActuatorSet.WriteOutcome], [Int64], UInt64, [String])>(([], [], 0, []))
            let done = DispatchSemaphore(value: 0)
            let thread = Thread {
                var outcomes: [ActuatorSet.WriteOutcome] = [], durations: [Int64] = []
                outcomes.reserveCapacity(batch.count)
                durations.reserveCapacity(batch.count)
                blockcount_arm_current_thread()
                let tid = blockcount_current_thread_id()
                for approval in batch {
                    let t0 = monotonicNanoseconds()
                    outcomes.append(set.write(approval))
                    durations.append(monotonicNanoseconds() - t0)
                }
                let blocking = blockcount_thread_total()
                blockcount_disarm_current_thread()
                var recent = [blockcount_event](repeating: blockcount_event(), count: 64)
                let n = blockcount_recent(&recent, 64)
                let calls = recent.prefix(n).filter { $0.tid == tid }.map { "\(String(cString: $0.call)) (\($0.detail))" }
                result.withLock { $0 = (outcomes, durations, blocking, calls) }
                done.signal()
            }
            thread.start()
            done.wait()
            return result.withLock { $0 }
        }

        // (a) Another thread holds the lane's device lock (a writer stuck in a slow write).
        let held = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let holder = Thread {
            set.withDeviceLocksHeld {
                held.signal()
                // Bounded: a direct path that waited for the lock would be counted, not hang.
                _ = release.wait(timeout: .now() + 2)
            }
        }
        holder.start()
        try #require(held.wait(timeout: .now() + 5) == .success)
        let locked = armedWrites(approvals[0..<100])
        release.signal()
        #expect(locked.blocking == 0, "blocking calls with the lock held: \(locked.calls)")
        #expect(locked.outcomes.allSatisfy { $0 == .queued })
        #expect(percentile(locked.durations, 0.99) < 1_000_000, "write() p99 \(percentile(locked.durations, 0.99)) ns")
        var wire: [UInt8] = []
        #expect(waitUntil {
            wire += drain(pty.master)
            let r = Received.decode(wire)
            return r.values(motor: 0).last == 0.098 && r.values(motor: 1).last == 0.099
        }, "the last commands of the batch did not arrive through the writer")

        // (b) The pty is full and its reader paused: fill it, then write.
        var filler = 100
        while writer.link.onceWouldBlock.load(ordering: .relaxed) == 0 && writer.link.oncePartial.load(ordering: .relaxed) == 0 {
            _ = set.write(try rig.approve(filler % 2, .continuous(0.5), at: 1))
            filler += 1
            try #require(filler < 100_000, "the pty never filled")
        }
        let full = armedWrites(approvals[200..<400])
        #expect(full.blocking == 0, "blocking calls with the pty full: \(full.calls)")
        #expect(full.outcomes.allSatisfy { $0 == .queued })
        #expect(percentile(full.durations, 0.99) < 1_000_000, "write() p99 \(percentile(full.durations, 0.99)) ns")
        wire.removeAll()
        #expect(waitUntil {
            wire += drain(pty.master)
            let r = Received.decode(wire)
            return r.values(motor: 0).last == 0.398 && r.values(motor: 1).last == 0.399
        }, "the last commands did not arrive once the reader resumed")
        #expect(set.state(of: "drive") == .active)
    }

    /// A device that stops taking bytes (a pipe shrunk to a page, filled, nobody reading): the
    /// direct attempts find it full and hand over; the writer's bounded wait turns it into a stall
    /// fault within 100 ms, reported on the writer; `write` never waits.
    @Test func when_the_device_stalls_expect_the_writer_to_report_it_and_write_never_waiting() throws {
        signal(SIGPIPE, SIG_IGN)
        let pipe = try Wire()
        var rig = try Rig()
        let faults = FaultLog()
        let faultAt = Atomic<Int64>(0)
        let set = try directSet(rig, writer: FileDescriptorWriter(fd: pipe.write, stallTimeout: .milliseconds(50))) { fault in
            _ = faultAt.compareExchange(expected: 0, desired: monotonicNanoseconds(), ordering: .relaxed)
            faults.append(fault)
        }
        set.start()
        defer { set.safeStop(reason: "test") }
        _ = drain(pipe.read)
        #expect(set.write(try rig.approve(0, .continuous(0.1))) == .written)
        #expect(Received.decode(drain(pipe.read)).values(motor: 0) == [0.1])
        // F_SETPIPE_SZ (1031) is not imported into Swift.
        try #require(fcntl(pipe.write, 1031, 4096) >= 4096)
        let page = [UInt8](repeating: 0x55, count: 4096)
        while Glibc.write(pipe.write, page, page.count) > 0 {}
        let approvals = try (0..<200).map { i in try rig.approve(i % 2, .continuous(0.001 * Double(i % 100)), at: Int64(2 + i)) }
        var durations: [Int64] = []
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
        #expect(faults.all.first?.error.code == .stalled && faults.all.count == 1)
        let latency = Double(faultAt.load(ordering: .relaxed) - begin) / 1e6
        #expect(latency < 100, "link fault after \(latency) ms")
        #expect(set.state(of: "drive") == .inactive)
        #expect(percentile(durations, 0.99) < 1_000_000, "write() p99 \(percentile(durations, 0.99)) ns")
        #expect(set.directDeferred.load(ordering: .relaxed) >= 1)
    }

    /// Heartbeats stay the writer's on a direct lane, between direct frames, whole.
    @Test func when_a_heartbeat_is_asked_for_on_a_direct_lane_expect_the_writer_to_send_it() throws {
        let pipe = try Wire()
        var rig = try Rig()
        let set = try directSet(rig, writer: FileDescriptorWriter(fd: pipe.write))
        set.start()
        defer { set.safeStop(reason: "test") }
        _ = drain(pipe.read)
        #expect(set.write(try rig.approve(0, .continuous(0.3))) == .written)
        set.heartbeat()
        #expect(waitUntil { set.heartbeats.load(ordering: .relaxed) == 1 })
        #expect(set.write(try rig.approve(1, .continuous(0.4), at: 2)) == .written)
        let received = Received.decode(drain(pipe.read))
        #expect(received.values(motor: 0) == [0.3] && received.values(motor: 1) == [0.4])
        #expect(received.others == 1 && received.rejected == 0)
    }

    @Test func when_direct_writes_run_in_steady_state_expect_zero_allocations() throws {
        try #require(alloc_counter_is_active() != 0, "the malloc interposer is not active in this binary")
        let null = open("/dev/null", O_WRONLY | O_CLOEXEC)
        try #require(null >= 0)
        defer { close(null) }
        var rig = try Rig()
        let set = try directSet(rig, writer: FileDescriptorWriter(fd: null))
        set.start()
        defer { set.safeStop(reason: "test") }
        let approvals = try (0..<64).map { i in try rig.approve(i % 2, .continuous(0.01 * Double(i % 10)), at: Int64(1 + i)) }
        // Indexed loops: the unspecialised array iterator of a debug build would count the test.
        // Paced (a spin of 20 µs, no system call): a loop far faster than a control loop keeps the
        // writer busy once one command went to it, and the direct path yields to it meanwhile.
        func run(_ n: Int) {
            var i = 0
            while i < n {
                set.write(approvals[i % approvals.count])
                if i % 2_000 == 0 { set.heartbeat() }
                let until = monotonicNanoseconds() + 20_000
                while monotonicNanoseconds() < until {}
                i += 1
            }
        }
        run(1_000)
        let before = alloc_counter_thread_total()
        let directBefore = set.directWritten.load(ordering: .relaxed)
        run(10_000)
        let allocations = alloc_counter_thread_total() - before
        #expect(allocations == 0, "\(allocations) allocations in 10 000 writes")
        // Most went out directly (some find the writer busy with a heartbeat).
        #expect(set.directWritten.load(ordering: .relaxed) - directBefore > 5_000)
    }
}
