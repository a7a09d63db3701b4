import Actuators
import CAllocCounter
import Codecs
import Glibc
import RTScheduler
import RobotConfig
import RobotSim
import SafetyGuard
import Testing
import Transports
@testable import AIOSRobot

/// Invariant 7 over the whole control path of the generic runtime on the example rover
/// (examples/rover-sim.yaml): range and encoder frame bytes and the gamepad's reports → decode →
/// scheduler → odometry and workspace check, teleop and wander with arbitration (each winning in
/// turn) and the obstacle_stop filter → guard (check and tick) → motor-command frame encoding →
/// write(2), in steady state.
@Suite("No allocation on the control path")
struct ControlPathAllocationTests {
    @Test func when_the_rover_control_path_runs_in_steady_state_expect_zero_allocations() throws {
        try controlPath(direct: false)
    }

    /// The same with the motor back end as a direct lane: the dispatch thread's part — the try-lock,
    /// the checks, the encoding and the one write(2) — runs on this thread and is counted.
    @Test func when_the_rover_control_path_writes_its_frames_directly_expect_zero_allocations() throws {
        try controlPath(direct: true)
    }

    func controlPath(direct: Bool) throws {
        try #require(alloc_counter_is_active() != 0, "the malloc interposer is not active in this binary")
        let null = open("/dev/null", O_WRONLY | O_CLOEXEC)
        try #require(null >= 0)
        defer { close(null) }
        let configuration = try Examples.configuration("rover-sim.yaml") {
            // A workspace far larger than the path below: its check runs on every encoder frame,
            // its reaction never.
            $0 = $0.replacingOccurrences(of: "polygon: [[-5, -4], [5, -4], [5, 4], [-5, 4]]", with: "radius: 100")
            // These encoder counts are not the commanded speeds: the monitor runs, with a tolerance
            // wide enough that it never trips (its path is measured, not its reaction).
            $0 = $0.replacingOccurrences(of: "motion_monitor: {tolerance: 3.0", with: "motion_monitor: {tolerance: 1000")
        }
        #expect(configuration.workspace?.radius == 100 && configuration.channels.allSatisfy { $0.motionMonitor?.tolerance == 1000 })
        var mappings: [SerialFrameBackend.Mapping] = []
        for actuator in configuration.actuators where actuator.kind == "serial_frames" {
            for entry in try SettingsReader(owner: actuator.name, actuator.settings).entries("channels") {
                guard let index = configuration.channels.firstIndex(where: { $0.name == entry.key }),
                      case .number(let motor)? = entry.value["motor"] else { continue }
                mappings.append(.init(channel: ChannelID(index: index), motor: UInt8(motor), mode: .velocity))
            }
        }
        #expect(mappings.count == 2)
        let clock = VirtualClock()
        let scheduler = Scheduler(clock: clock)
        let motors = SerialFrameBackend(name: "rover_motors", mappings: mappings, writer: FileDescriptorWriter(fd: null))
        // Inline: the device write (and the seal check) run on this thread, so they are measured too.
        // Direct: the same here when the device takes the frame at once (/dev/null always does).
        let mode: ActuatorSet.Mode = direct ? .threaded(.init(directWrites: [motors.name])) : .inline
        let runtime = try RobotRuntime(configuration: configuration, scheduler: scheduler) { seal in
            try ActuatorSet(seal: seal, backends: [motors], clock: clock, mode: mode)
        }
        defer { if direct { runtime.actuators.safeStop(reason: "test") } }
        let feed = try #require(runtime.endpoints.lazy.compactMap { if case .serial(let s) = $0.endpoint { s.feed } else { nil } }.first)
        let gamepad = try #require(runtime.endpoints.lazy.compactMap { if case .inputDevice(let d) = $0.endpoint { d.gamepad } else { nil } }.first)
        let actuators = runtime.actuators
        actuators.start()
        // Ranges that sweep through cruise, slow-down, turning and obstacle_stop's band, and encoder
        // counts, encoded before the measurement; the empty report a wireless pad sends as its
        // keep-alive; the deadman pressed, then the stick forward (teleop takes the wheels from wander
        // and obstacle_stop acts on it), then released (teleop holds the wheels stopped) and the
        // hand-back key (wander again).
        let frames: [[UInt8]] = (0...240).map { i in  // one per 50 ms for 12 s: counts only grow
            let range = RangeMessage(deviceTimeMicros: UInt32(i) * 50_000, range: Float(0.2 + Double(i % 20) * 0.1))
            let encoders = WheelEncodersMessage(deviceTimeMicros: UInt32(i) * 50_000, leftTicks: Int32(i * 300), rightTicks: Int32(i * 310))
            return Frame.encode(.range, sequence: UInt8(i)) { range.write(into: $0) }
                + Frame.encode(.wheelEncoders, sequence: UInt8(i)) { encoders.write(into: $0) }
        }
        var keepAlive: [UInt8] = []
        InputEvent(type: 0, code: 0, value: 0).write(into: &keepAlive)
        var pad = try SimulatedGamepad(script: [
            .init(at: 1, [.press("BTN_TL")]), .init(at: 2, [.axis("ABS_Y", -32767)]),
            .init(at: 3, [.release("BTN_TL"), .axis("ABS_Y", 0)]),
            .init(at: 4, [.press("BTN_NORTH")]), .init(at: 5, [.release("BTN_NORTH")]),
        ])
        let opening = pad.stateReport(at: 0)  // the sticks' positions, as read when the device opens
        let press = pad.advance(to: 1), forward = pad.advance(to: 2), release = pad.advance(to: 3)
        let handback = pad.advance(to: 4) + pad.advance(to: 5)
        #expect(!press.isEmpty && !forward.isEmpty && !release.isEmpty && !handback.isEmpty)
        // A while loop: iterating a ClosedRange<Int64> allocates in debug builds (not the code under test).
        func run(milliseconds: ClosedRange<Int64>) {
            var ms = milliseconds.lowerBound - 1
            while ms < milliseconds.upperBound {
                ms += 1
                let t = ms * 1_000_000
                if ms % 50 == 0 {
                    frames[Int(ms / 50) % frames.count].withUnsafeBytes { feed($0, t) }
                }
                if ms == 1 {
                    opening.withUnsafeBytes { gamepad.feed(bytes: $0, arrival: t) }
                } else if ms == 1_000 {
                    press.withUnsafeBytes { gamepad.feed(bytes: $0, arrival: t) }
                } else if ms == 1_100 {
                    forward.withUnsafeBytes { gamepad.feed(bytes: $0, arrival: t) }
                } else if ms == 1_500 {
                    release.withUnsafeBytes { gamepad.feed(bytes: $0, arrival: t) }
                } else if ms == 1_700 {
                    handback.withUnsafeBytes { gamepad.feed(bytes: $0, arrival: t) }
                } else if ms % 200 == 0 {
                    keepAlive.withUnsafeBytes { gamepad.feed(bytes: $0, arrival: t) }
                }
                scheduler.advance(to: Instant(nanoseconds: t))
            }
        }
        var allocations: UInt64 = 0
        func measured(milliseconds: ClosedRange<Int64>) {
            let before = alloc_counter_thread_total()
            run(milliseconds: milliseconds)
            allocations += alloc_counter_thread_total() - before
        }
        // Warm-up: every path once (the deadman pressed at 1 s, the stick at 1.1 s, released at 1.5 s,
        // handed back at 1.7 s).
        run(milliseconds: 1...2_000)
        _ = runtime.status  // its first read instantiates generic metadata (once per process)
        // The gamepad's reports are decoded on its reader thread in the daemon, not here: fed
        // between the measured stretches (their dispatch-side handlers run inside them).
        press.withUnsafeBytes { gamepad.feed(bytes: $0, arrival: 2_000_000_000) }
        measured(milliseconds: 2_001...2_100)
        forward.withUnsafeBytes { gamepad.feed(bytes: $0, arrival: 2_100_000_000) }
        measured(milliseconds: 2_101...7_000)
        let teleop = runtime.status
        release.withUnsafeBytes { gamepad.feed(bytes: $0, arrival: 7_000_000_000) }
        measured(milliseconds: 7_001...7_500)
        let holding = runtime.status
        handback.withUnsafeBytes { gamepad.feed(bytes: $0, arrival: 7_500_000_000) }
        measured(milliseconds: 7_501...12_000)
        let status = runtime.status
        #expect(allocations == 0, "\(allocations) allocations in 500 cycles of two policies")
        #expect(!status.latched, "latched: \(String(describing: status.latchCause)), causes \(status.causes)")
        #expect(teleop.commandedBy[0] == 0 && teleop.filtered > 0)  // teleop drove; obstacle_stop acted on it
        #expect(holding.commandedBy[0] == 0 && holding.wanted[0] == 0 && holding.wanted[1] == 0)  // released: teleop holds a stop
        #expect(status.commandedBy[0] == 1 && status.commandedBy[1] == 1)  // then wander again
        #expect(status.verdicts.passed + status.verdicts.clamped > 900 && actuators.written.load(ordering: .relaxed) > 900)
        if direct { #expect(actuators.directWritten.load(ordering: .relaxed) > 900) }
        // The encoder frames moved the odometry (from the example's initial pose, x = -3.5).
        #expect(hypot(status.pose.x + 3.5, status.pose.y) > 5)
    }
}

/// The example rover's control path in lockstep on virtual time, frames fed as the serial reader
/// would, with the `route` policy and the plan executor: plans are built here, off the measured
/// path, as the planner service builds them.
final class PlanControlPath {
    let runtime: RobotRuntime
    let planning: PlanningPort
    let scheduler: Scheduler
    private let slot: Int
    private let null: Int32
    private let feed: @Sendable (UnsafeRawBufferPointer, Int64) -> Void
    private let gamepad: GamepadInput
    private let frames: [[UInt8]]
    private let keepAlive: [UInt8]
    private let opening: [UInt8]

    init() throws {
        null = open("/dev/null", O_WRONLY | O_CLOEXEC)
        try #require(null >= 0)
        let configuration = try Examples.configuration("rover-sim.yaml") {
            $0 = $0.replacingOccurrences(of: "polygon: [[-5, -4], [5, -4], [5, 4], [-5, 4]]", with: "radius: 100")
            $0 = $0.replacingOccurrences(of: "motion_monitor: {tolerance: 3.0", with: "motion_monitor: {tolerance: 1000")
        }
        let clock = VirtualClock()
        scheduler = Scheduler(clock: clock)
        let motors = SerialFrameBackend(name: "rover_motors", mappings: [
            .init(channel: ChannelID(index: 0), motor: 0, mode: .velocity), .init(channel: ChannelID(index: 1), motor: 1, mode: .velocity),
        ], writer: FileDescriptorWriter(fd: null))
        runtime = try RobotRuntime(configuration: configuration, scheduler: scheduler) { seal in
            try ActuatorSet(seal: seal, backends: [motors], clock: clock, mode: .inline)
        }
        planning = try #require(runtime.planning)
        slot = try #require(planning.policySlots["route"])
        feed = try #require(runtime.endpoints.lazy.compactMap { if case .serial(let s) = $0.endpoint { s.feed } else { nil } }.first)
        gamepad = try #require(runtime.endpoints.lazy.compactMap { if case .inputDevice(let d) = $0.endpoint { d.gamepad } else { nil } }.first)
        runtime.actuators.start()
        frames = (0...300).map { i in
            let range = RangeMessage(deviceTimeMicros: UInt32(i) * 50_000, range: 3.5)
            let encoders = WheelEncodersMessage(deviceTimeMicros: UInt32(i) * 50_000, leftTicks: Int32(i * 300), rightTicks: Int32(i * 310))
            return Frame.encode(.range, sequence: UInt8(truncatingIfNeeded: i)) { range.write(into: $0) }
                + Frame.encode(.wheelEncoders, sequence: UInt8(truncatingIfNeeded: i)) { encoders.write(into: $0) }
        }
        var bytes: [UInt8] = []
        InputEvent(type: 0, code: 0, value: 0).write(into: &bytes)
        keepAlive = bytes
        opening = try SimulatedGamepad(script: []).stateReport(at: 0)
    }

    deinit { close(null) }

    func route(_ goal: UInt64, _ points: [(x: Double, y: Double)]) -> ExecutablePlan {
        ExecutablePlan(goalID: goal, steps: [
            ExecutableStep(action: .route(points: points, speed: 0.3), slot: slot, ability: 1, timeout: .seconds(600), minProgress: 0.001,
                           window: .seconds(60), serial: goal * 1024 + 1),
            ExecutableStep(action: .stop, slot: nil, ability: 2, timeout: nil, minProgress: nil, window: nil, serial: goal * 1024 + 2),
        ], latchEpoch: runtime.latchEpoch)
    }

    func run(milliseconds: ClosedRange<Int64>) {
        var ms = milliseconds.lowerBound - 1
        while ms < milliseconds.upperBound {
            ms += 1
            let t = ms * 1_000_000
            if ms % 50 == 0 { frames[Int(ms / 50) % frames.count].withUnsafeBytes { feed($0, t) } }
            if ms == 1 {
                opening.withUnsafeBytes { gamepad.feed(bytes: $0, arrival: t) }
            } else if ms % 200 == 0 {
                keepAlive.withUnsafeBytes { gamepad.feed(bytes: $0, arrival: t) }
            }
            scheduler.advance(to: Instant(nanoseconds: t))
        }
    }

    /// Heap allocations and frees by this thread (the dispatch side in lockstep) while it runs.
    func measured(milliseconds: ClosedRange<Int64>) -> (allocations: UInt64, frees: UInt64) {
        let allocations = alloc_counter_thread_total(), frees = alloc_counter_thread_frees()
        run(milliseconds: milliseconds)
        return (alloc_counter_thread_total() - allocations, alloc_counter_thread_frees() - frees)
    }
}

/// Invariant 7 with a plan executing: the `route` policy following a plan's route, the executor's
/// periodic check, and a new goal and its plan taken by the dispatch thread (the plans built here,
/// off the measured path, as the planner service builds them).
@Suite("No allocation on the control path while a plan executes")
struct PlanExecutionAllocationTests {
    @Test func when_a_plan_is_executed_and_replaced_expect_zero_allocations_on_the_dispatch_side() throws {
        try #require(alloc_counter_is_active() != 0, "the malloc interposer is not active in this binary")
        let path = try PlanControlPath()
        let planning = path.planning
        let messages = [PlannerMessage(.goal(1)), PlannerMessage(.ready(path.route(1, [(50, 40), (60, -40)]))),
                        PlannerMessage(.goal(2)), PlannerMessage(.ready(path.route(2, [(-50, 40), (-60, -40), (0, 0)])))]
        var allocations: UInt64 = 0
        path.run(milliseconds: 1...1_000)
        // Warm-up: the first plan taken and followed (every path once).
        #expect(planning.post(messages[0]) && planning.post(messages[1]))
        path.run(milliseconds: 1_001...3_000)
        _ = path.runtime.status
        #expect(planning.status.state == .running && planning.status.planGoalID == 1)
        allocations += path.measured(milliseconds: 3_001...6_000).allocations
        // A new goal and its plan: the first plan cancelled, the second taken (posted between the
        // measured stretches: posting is the planner's side; taking them is measured).
        #expect(planning.post(messages[2]) && planning.post(messages[3]))
        allocations += path.measured(milliseconds: 6_001...10_000).allocations
        let status = path.runtime.status
        #expect(allocations == 0, "\(allocations) allocations while a plan executed and was replaced")
        #expect(planning.status.state == .running && planning.status.planGoalID == 2 && planning.status.cancelled == 1)
        #expect(!status.latched && status.commandedBy[0] == 2)
        #expect(status.verdicts.passed + status.verdicts.clamped > 700)
        withExtendedLifetime(messages) {}
    }

    /// The planner service keeps its last messages only for a while: once it has let go of a
    /// plan's, the plan and its route's array live on in the executor and the `route` policy.
    /// When the next plan replaces it, nothing of it is freed on the dispatch side: the executor
    /// hands it back (`RetiredPlans`) and the lane releases it.
    @Test func when_a_plan_is_replaced_after_the_planner_let_go_of_it_expect_nothing_freed_on_the_dispatch_side() throws {
        try #require(alloc_counter_is_active() != 0, "the malloc interposer is not active in this binary")
        let path = try PlanControlPath()
        let planning = path.planning
        path.run(milliseconds: 1...1_000)
        do {
            // The first plan: its messages are gone (as the service's kept list moves on) once taken.
            let first = [PlannerMessage(.goal(1)), PlannerMessage(.ready(path.route(1, [(50, 40), (60, -40)])))]
            #expect(planning.post(first[0]) && planning.post(first[1]))
        }
        path.run(milliseconds: 1_001...3_000)
        #expect(planning.status.state == .running && planning.status.planGoalID == 1)
        planning.retired.drain()  // the lane, before the measured stretch
        let second = [PlannerMessage(.goal(2)), PlannerMessage(.ready(path.route(2, [(-50, 40), (-60, -40), (0, 0)])))]
        #expect(planning.post(second[0]) && planning.post(second[1]))
        let measured = path.measured(milliseconds: 3_001...6_000)
        #expect(measured.frees == 0, "\(measured.frees) blocks freed on the dispatch side while a plan was replaced")
        #expect(measured.allocations == 0)
        #expect(planning.status.planGoalID == 2 && planning.status.cancelled == 1)
        // On the lane: the first plan (ended, and no longer followed by the route policy).
        #expect(planning.retired.drain() >= 1 && planning.retired.overflowed.load(ordering: .relaxed) == 0)
        withExtendedLifetime(second) {}
    }
}
