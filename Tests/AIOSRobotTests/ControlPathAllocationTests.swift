import Actuators
import CAllocCounter
import Codecs
import Glibc
import RTScheduler
import SafetyGuard
import Testing
@testable import AIOSRobot

/// Invariant 7 over the whole control path: range and encoder frame bytes → decode → scheduler →
/// odometry and workspace check, policy → guard (check and tick) → motor-command frame encoding →
/// write(2), in steady state.
@Suite("No allocation on the control path")
struct ControlPathAllocationTests {
    @Test func when_the_rover_control_path_runs_in_steady_state_expect_zero_allocations() throws {
        try #require(alloc_counter_is_active() != 0, "the malloc interposer is not active in this binary")
        let null = open("/dev/null", O_WRONLY | O_CLOEXEC)
        try #require(null >= 0)
        defer { close(null) }
        let clock = VirtualClock()
        let scheduler = Scheduler(clock: clock)
        let motors = SerialFrameBackend(name: "motors", mappings: [
            .init(channel: ChannelID(index: 0), motor: 0, mode: .velocity),
            .init(channel: ChannelID(index: 1), motor: 1, mode: .velocity),
        ], writer: FileDescriptorWriter(fd: null))
        var configuration = RoverRuntime.Configuration()
        configuration.workspace = Workspace(radius: 100)
        // These encoder counts are not the commanded speeds: the monitor runs, with a tolerance
        // wide enough that it never trips (its path is measured, not its reaction).
        configuration.wheelMonitor = MotionMonitor(tolerance: 1000, time: .milliseconds(250))
        // Inline: the device write (and the seal check) run on this thread, so they are measured too.
        let runtime = try RoverRuntime(configuration: configuration, scheduler: scheduler) { seal in
            try ActuatorSet(seal: seal, backends: [motors], clock: clock)
        }
        let actuators = runtime.actuators
        actuators.start()
        // Ranges that sweep through cruise, slow-down and turning, and encoder counts, encoded before
        // the measurement.
        let frames: [[UInt8]] = (0...240).map { i in  // one per 50 ms for 12 s: counts only grow
            let range = RangeMessage(deviceTimeMicros: UInt32(i) * 50_000, range: Float(0.3 + Double(i % 20) * 0.1))
            let encoders = WheelEncodersMessage(deviceTimeMicros: UInt32(i) * 50_000, leftTicks: Int32(i * 300), rightTicks: Int32(i * 310))
            return Frame.encode(.range, sequence: UInt8(i)) { range.write(into: $0) }
                + Frame.encode(.wheelEncoders, sequence: UInt8(i)) { encoders.write(into: $0) }
        }
        // A while loop: iterating a ClosedRange<Int64> allocates in debug builds (not the code under test).
        func run(milliseconds: ClosedRange<Int64>) {
            var ms = milliseconds.lowerBound - 1
            while ms < milliseconds.upperBound {
                ms += 1
                let t = ms * 1_000_000
                if ms % 50 == 0 {
                    frames[Int(ms / 50) % frames.count].withUnsafeBytes { runtime.sensors.feed($0, arrival: t) }
                }
                scheduler.advance(to: Instant(nanoseconds: t))
            }
        }
        run(milliseconds: 1...2_000)
        let before = alloc_counter_thread_total()
        run(milliseconds: 2_001...12_000)
        let allocations = alloc_counter_thread_total() - before
        let status = runtime.status
        #expect(allocations == 0, "\(allocations) allocations in 500 drive cycles")
        #expect(status.verdicts.passed + status.verdicts.clamped > 900 && actuators.written.load(ordering: .relaxed) > 900)
        #expect(status.turning || status.verdicts.passed > 0)
        #expect(status.pose.x > 5)  // the encoder frames moved the odometry
    }
}
