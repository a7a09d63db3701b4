import CBlockingCallCounter
import Foundation
import Glibc
import RTScheduler
import RobotConfig
import RobotSim
import SafetyGuard
import Synchronization
import Testing
import TestSupport
import Transports
@testable import AIOSRobot

/// Invariant 7, the part an allocation count cannot see: over a closed-loop run on real threads
/// (the generic daemon on examples/rover-sim.yaml driving the real-time simulator, an e-stop, a
/// reset, status read as `robotd run` reads it), the dispatch thread makes no call that can block
/// on anything but its own doorbell: no read or write on a blocking descriptor, no poll with a
/// timeout, no futex wait elsewhere, no sleep (CBlockingCallCounter interposes them;
/// docs/scheduler.md explains the method). Run with the motor frames written both ways
/// (`write: direct` — the dispatch thread writes them itself when that costs no wait — and
/// `write: writer`).
@Suite("The dispatch thread never blocks", .serialized)
struct DispatchThreadBlockingTests {
    @Test(arguments: ["direct", "writer"])
    func when_the_rover_runs_closed_loop_with_an_estop_and_a_reset_expect_zero_blocking_calls_on_the_dispatch_thread(write: String) throws {
        let directory = try temporaryDirectory("robotd-blocking")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var simOptions = SimulatorRunner.Options()
        simOptions.roverLinkPath = directory + "/rover"
        simOptions.gamepadFIFO = directory + "/gamepad"
        simOptions.gamepadScript = [
            .init(at: 2_000_000_000, [.press("BTN_EAST")]), .init(at: 2_100_000_000, [.release("BTN_EAST")]),
            .init(at: 3_000_000_000, [.press("BTN_START")]), .init(at: 3_100_000_000, [.release("BTN_START")]),
        ]
        let sim = try SimulatorRunner(options: simOptions)
        try sim.start()
        defer { sim.stop() }

        var options = RobotDaemon.Options()
        options.realtime = geteuid() == 0 ? .realtime(priority: 80, cpu: nil) : RealtimeOptions()
        let configuration = try Examples.temporaryCopy("rover-sim.yaml", in: directory) {
            $0 = $0.replacingOccurrences(of: "/tmp/robotd-sim/", with: directory + "/")
                .replacingOccurrences(of: "    kind: serial_frames\n", with: "    kind: serial_frames\n    write: \(write)\n")
        }
        #expect(configuration.actuators.first { $0.kind == "serial_frames" }?.settings["write"] == .string(write))
        let daemon = try RobotDaemon(configuration: configuration, options: options) { _ in }
        let word = UInt(bitPattern: daemon.scheduler.doorbellFutexWord)
        let armed = Atomic<Bool>(false)
        let tid = Atomic<Int32>(0)
        let counts = Mutex<[UInt64]>([])
        daemon.scheduler.onDispatchThreadStart = {
            _ = blockcount_exempt_range(UnsafeRawPointer(bitPattern: word), 4)
            blockcount_arm_current_thread()
            tid.store(blockcount_current_thread_id(), ordering: .relaxed)
            armed.store(true, ordering: .releasing)
        }
        daemon.scheduler.onDispatchThreadStop = {
            let perKind = (0..<Int(BLOCKCOUNT_KIND_COUNT.rawValue)).map { blockcount_thread_kind_total(blockcount_kind(rawValue: UInt32($0))) }
            blockcount_disarm_current_thread()
            counts.withLock { $0 = perKind }
        }
        try daemon.start()
        let wasArmed = armed.load(ordering: .acquiring)
        #expect(wasArmed)
        // A hostile reader hammers every reader-side API (status, the scheduler's accounting and
        // histograms, the audit and miss rings) in a tight loop, so that any lock shared with the
        // dispatch thread would be contended all the time and show up as a futex wait there.
        let hammering = Atomic<Bool>(true)
        let reads = Atomic<Int>(0)
        let runtime = daemon.runtime, scheduler = daemon.scheduler
        let hammer = Thread {
            while hammering.load(ordering: .relaxed) {
                _ = runtime.status
                _ = runtime.statusPublications
                _ = scheduler.snapshot()
                _ = scheduler.missLog.drain()
                reads.add(1, ordering: .relaxed)
            }
        }
        hammer.start()
        // CPU hogs at normal priority: a reader that holds a shared lock gets preempted now and
        // then, which is what would make the dispatch thread sleep on that lock (it never should).
        let hogs = (0..<2).map { _ in Thread { var x = 0; while hammering.load(ordering: .relaxed) { x &+= 1 }; _ = x } }
        hogs.forEach { $0.start() }
        let begin = Date()
        var sawLatch = false, sawReset = false
        var records: [AuditRecord] = []
        // 5 s, or up to 10 s until the reset was seen (a loaded machine delays the scripted keys).
        while Date().timeIntervalSince(begin) < 5 || (!sawReset && Date().timeIntervalSince(begin) < 10) {
            usleep(20_000)
            let status = daemon.runtime.status
            records += daemon.runtime.audit.drain()
            if status.latched { sawLatch = true }
            if status.resets > 0 { sawReset = true }
        }
        hammering.store(false, ordering: .relaxed)
        daemon.stop(reason: "test")
        // Tens of reads at least (each takes a snapshot of everything; a loaded machine gives this
        // normal-priority thread little time beside the hogs).
        #expect(reads.load(ordering: .relaxed) > 20, "the hammer should have read many times")
        let perKind = counts.withLock { $0 }
        try #require(perKind.count == Int(BLOCKCOUNT_KIND_COUNT.rawValue), "the dispatch thread's stop hook did not run")
        var recent = [blockcount_event](repeating: blockcount_event(), count: 64)
        let n = blockcount_recent(&recent, 64)
        let mine = recent.prefix(n).filter { $0.tid == tid.load(ordering: .relaxed) }
            .map { "\(String(cString: $0.call)) (\($0.detail))" }
        #expect(perKind.reduce(0, +) == 0, "blocking calls on the dispatch thread by kind \(perKind): \(mine)")
        #expect(sawLatch && sawReset, "the run should have latched and reset (latched \(sawLatch), reset \(sawReset))")
        records += daemon.runtime.audit.drain()
        #expect(records.contains { $0.kind == .latched && $0.fault == .emergencyStopInput }, "the latch should have been the e-stop's")
        #expect(sim.rover.snapshot().odometer > 0.3)
        // The dispatch thread did write motor frames itself (direct), or never (writer).
        let direct = daemon.actuators.directWritten.load(ordering: .relaxed)
        #expect(write == "direct" ? direct > 100 : direct == 0, "\(direct) frames written directly")
    }
}
