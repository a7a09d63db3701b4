import Codecs
import Foundation
import Testing
import Transports
@testable import RobotSim

/// Collects what the simulated rover sends, decoded by the shared frame decoder.
struct Received {
    var imu: [IMUSampleMessage] = []
    var encoders: [WheelEncodersMessage] = []
    var ranges: [RangeMessage] = []
    var heartbeats = 0
    var bytes: [UInt8] = []
    var times: [Int64] = []
}

func drive(_ rover: RoverSimulation, to time: Int64, into received: inout Received) {
    var decoder = FrameDecoder()
    var collected = received
    rover.advance(to: time) { bytes, at in
        collected.bytes += bytes
        collected.times.append(at)
        decoder.feed(bytes) { view in
            switch Frame.MessageType(rawValue: view.type) {
            case .imuSample: if let m = IMUSampleMessage(payload: view.payload) { collected.imu.append(m) }
            case .wheelEncoders: if let m = WheelEncodersMessage(payload: view.payload) { collected.encoders.append(m) }
            case .range: if let m = RangeMessage(payload: view.payload) { collected.ranges.append(m) }
            case .heartbeat: collected.heartbeats += 1
            default: break
            }
        }
    }
    received = collected
}

func wheelCommand(_ motor: UInt8, _ value: Float, deenergize: Bool = false, sequence: UInt8 = 0) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: Frame.maxWireCount)
    let n = out.withUnsafeMutableBytes {
        MotorCommandMessage(channel: motor, mode: .velocity, deenergize: deenergize, value: value).encode(sequence: sequence, into: $0)
    }
    return Array(out.prefix(n ?? 0))
}

let second: Int64 = 1_000_000_000

@Suite("Simulated rover: physics, sensors and firmware in lockstep")
struct RoverSimulationTests {
    @Test func when_rays_are_cast_expect_distances_to_walls_and_obstacles() {
        let arena = Arena(halfWidth: 5, halfHeight: 4, obstacles: [.init(x: 2, y: 0, radius: 0.5)])
        #expect(abs(arena.rayCast(x: 0, y: 0, yaw: 0) - 1.5) < 1e-9)
        #expect(abs(arena.rayCast(x: 0, y: 0, yaw: .pi) - 5) < 1e-9)
        #expect(abs(arena.rayCast(x: 0, y: 0, yaw: .pi / 2) - 4) < 1e-9)
        #expect(abs(arena.rayCast(x: 0, y: 1, yaw: 0) - 5) < 1e-9)  // passes above the obstacle
        #expect(arena.collides(x: 1.4, y: 0, radius: 0.2) && !arena.collides(x: 1.2, y: 0, radius: 0.2))
        #expect(arena.collides(x: 4.9, y: 0, radius: 0.2))
    }

    @Test func when_wheels_turn_equally_or_oppositely_expect_a_straight_line_or_a_turn_on_the_spot() {
        let open = Arena(halfWidth: 50, halfHeight: 50, obstacles: [])
        var rover = DiffDriveRover()
        let on = WheelDrive(speed: 10, energised: true)  // 10 rad/s × 0.05 m = 0.5 m/s
        for _ in 0..<2000 { rover.step(dt: 0.001, left: on, right: on, arena: open) }
        #expect(abs(rover.linearVelocity - 0.5) < 1e-3)
        #expect(abs(rover.pose.x - (1.0 - 0.5 * 0.05)) < 5e-3)  // 2 s minus the motor lag
        #expect(abs(rover.pose.y) < 1e-12 && rover.pose.yaw == 0)

        var spinner = DiffDriveRover()
        let back = WheelDrive(speed: -10, energised: true)
        for _ in 0..<1000 { spinner.step(dt: 0.001, left: back, right: on, arena: open) }
        #expect(abs(spinner.angularVelocity - 0.05 * 20 / 0.3) < 1e-3)
        #expect(hypot(spinner.pose.x, spinner.pose.y) < 1e-9)
    }

    @Test func when_the_rover_drives_into_a_wall_expect_one_collision_and_a_stall() {
        let box = Arena(halfWidth: 1, halfHeight: 1, obstacles: [])
        var rover = DiffDriveRover()
        let on = WheelDrive(speed: 20, energised: true)
        for _ in 0..<5000 { rover.step(dt: 0.001, left: on, right: on, arena: box) }
        #expect(rover.collisions == 1 && rover.inContact)
        #expect(rover.pose.x < 1 - rover.parameters.bodyRadius + 1e-9 && rover.pose.x > 0.7)
        #expect(rover.linearVelocity == 0)
    }

    @Test func when_simulated_for_one_second_expect_each_sensor_at_its_rate_through_the_shared_decoder() {
        let rover = RoverSimulation()
        var received = Received()
        drive(rover, to: second, into: &received)
        #expect(received.imu.count == 200 && received.encoders.count == 50)
        #expect(received.ranges.count == 20 && received.heartbeats == 5)
        // At rest: gravity on z, no rotation beyond the noise.
        let meanZ = received.imu.map { Double($0.accel.z) }.reduce(0, +) / 200
        #expect(abs(meanZ - 9.80665) < 0.01)
        #expect(received.imu.allSatisfy { abs($0.gyro.z) < 0.02 })
        // Device time follows simulated time (µs).
        #expect(received.imu[1].deviceTimeMicros &- received.imu[0].deviceTimeMicros == 5000)
    }

    @Test func when_motor_commands_arrive_as_frames_expect_the_rover_to_drive_and_the_encoders_to_count() {
        var config = RoverSimulationConfig()
        config.start = Pose2D(x: -3, y: 0, yaw: 0)
        config.arena = Arena(halfWidth: 5, halfHeight: 4, obstacles: [])
        let rover = RoverSimulation(config: config)
        var received = Received()
        for step in 1...10 {  // commands every 100 ms, well inside the firmware watchdog
            rover.receive(wheelCommand(0, 10) + wheelCommand(1, 10))
            drive(rover, to: Int64(step) * second / 10, into: &received)
        }
        let s = rover.snapshot()
        #expect(s.firmware.commandsApplied == 20 && s.firmware.watchdogTrips == 0)
        #expect(abs(s.linearVelocity - 0.5) < 0.01 && s.pose.x > -2.6)
        let last = try! #require(received.encoders.last)
        let expected = Int32((s.odometer / 0.05) * 2048 / (2 * .pi))
        #expect(abs(last.leftTicks - expected) < 100 && last.leftTicks == last.rightTicks)
        // The range sensor sees the far wall: 5 − x − body radius.
        let range = try! #require(received.ranges.last)
        #expect(range.status == 0 || range.status == 2)
    }

    @Test func when_commands_stop_expect_the_firmware_watchdog_to_de_energise_the_wheels() {
        let rover = RoverSimulation()
        var received = Received()
        rover.receive(wheelCommand(0, 5) + wheelCommand(1, 5))
        drive(rover, to: 400_000_000, into: &received)
        #expect(rover.snapshot().leftEnergised)
        drive(rover, to: 600_000_000, into: &received)
        let s = rover.snapshot()
        #expect(!s.leftEnergised && !s.rightEnergised && s.firmware.watchdogTrips == 2)
        drive(rover, to: 3 * second, into: &received)
        #expect(abs(rover.snapshot().linearVelocity) < 0.001)
    }

    @Test func when_a_de_energise_command_arrives_expect_the_wheel_to_coast_down() {
        let rover = RoverSimulation()
        var received = Received()
        rover.receive(wheelCommand(0, 10) + wheelCommand(1, 10))
        drive(rover, to: 300_000_000, into: &received)
        rover.receive(wheelCommand(0, 0, deenergize: true) + wheelCommand(1, 0, deenergize: true))
        drive(rover, to: 310_000_000, into: &received)
        let coasting = rover.snapshot()
        #expect(!coasting.leftEnergised && coasting.wheelSpeedLeft > 5)  // coasting, not braking
        drive(rover, to: 3 * second, into: &received)
        #expect(abs(rover.snapshot().wheelSpeedLeft) < 0.01 && rover.snapshot().firmware.deenergiseCommands == 2)
    }

    @Test func when_frames_are_corrupt_or_not_for_the_motors_expect_them_counted_and_ignored() {
        let rover = RoverSimulation()
        var bad = wheelCommand(0, 10)
        bad[3] ^= 0x40
        rover.receive(bad)
        rover.receive(wheelCommand(7, 10))  // no such motor
        rover.receive(Frame.encode(type: Frame.MessageType.motorCommand.rawValue, sequence: 1, payload: [0, 1, 0, 0, 0, 0x80, 0x3F]))  // position mode
        rover.receive(wheelCommand(1, .nan))
        let s = rover.snapshot()
        #expect(s.firmware.framesRejected == 1 && s.firmware.commandsIgnored == 3 && s.firmware.commandsApplied == 0)
        #expect(!s.leftEnergised && !s.rightEnergised)
    }

    @Test func when_the_cable_is_pulled_expect_no_frames_either_way_and_lost_bytes_counted() {
        let rover = RoverSimulation()
        var received = Received()
        rover.setLinkUp(false)
        rover.receive(wheelCommand(0, 10))
        drive(rover, to: second, into: &received)
        #expect(received.bytes.isEmpty)
        let s = rover.snapshot()
        #expect(s.firmware.bytesLost > 0 && !s.leftEnergised && !s.linkUp)
    }

    @Test func when_run_twice_with_the_same_seed_and_inputs_expect_identical_bytes_and_state() {
        func run(seed: UInt64) -> (Received, RoverSnapshot) {
            var config = RoverSimulationConfig()
            config.seed = seed
            let rover = RoverSimulation(config: config)
            var received = Received()
            for step in 1...30 {
                rover.receive(wheelCommand(0, Float(step % 7)) + wheelCommand(1, 4))
                drive(rover, to: Int64(step) * 100_000_000, into: &received)
            }
            return (received, rover.snapshot())
        }
        let (a, sa) = run(seed: 42)
        let (b, sb) = run(seed: 42)
        let (c, _) = run(seed: 43)
        #expect(a.bytes == b.bytes && a.times == b.times && sa == sb)
        #expect(a.bytes != c.bytes)  // the noise depends on the seed
    }

    @Test func when_the_device_clock_wraps_expect_device_time_to_wrap_like_hardware() {
        var config = RoverSimulationConfig()
        config.deviceClockStartMicros = .max - 100_000
        let rover = RoverSimulation(config: config)
        var received = Received()
        drive(rover, to: second / 5, into: &received)
        #expect(received.imu.contains { $0.deviceTimeMicros > .max - 100_000 })
        #expect(received.imu.contains { $0.deviceTimeMicros < 100_000 })
    }
}

@Suite("Simulated gamepad: input_event records")
struct SimulatedGamepadTests {
    @Test func when_the_script_runs_expect_records_with_sim_time_and_syn_report_after_each_step() throws {
        var pad = try SimulatedGamepad(script: [
            .init(at: 1_500_000_000, [.press("BTN_EAST")]),
            .init(at: 500_000_000, [.axis("ABS_Y", -20000), .axis("ABS_X", 100)]),
        ])
        #expect(pad.advance(to: 100).isEmpty)
        var decoder = InputEventStreamDecoder()
        var events: [InputEvent] = []
        let bytes = pad.advance(to: 2 * second)
        bytes.withUnsafeBytes { decoder.feed($0) { events.append($0) } }
        #expect(events.map(\.codeName) == ["ABS_Y", "ABS_X", "SYN_REPORT", "BTN_EAST", "SYN_REPORT"])
        #expect(events[0].value == -20000 && events[3].value == 1)
        #expect(events[0].seconds == 0 && events[0].microseconds == 500_000)
        #expect(events[3].seconds == 1 && events[3].microseconds == 500_000)
        #expect(pad.isFinished)
        #expect(throws: SimulatedGamepad.UnknownCode.self) { try SimulatedGamepad(script: [.init(at: 0, [.press("BTN_NOPE")])]) }
    }

    /// What a reader opening the device can know: every stick axis's position now (moved by steps
    /// lost while unplugged too), the e-stop key's level (moved while unplugged too), then SYN_REPORT.
    @Test func when_the_stream_opens_expect_a_state_report_of_the_axes_and_the_estop_level() throws {
        var pad = try SimulatedGamepad(script: [
            .init(at: 100_000_000, [.axis("ABS_Y", -32768), .press("BTN_TL")]),
            .init(at: 1_500_000_000, [.axis("ABS_RX", 9000)]),  // while unplugged: lost, but the stick moved
            .init(at: 2_500_000_000, [.axis("ABS_HAT0X", 1)]),
        ], faults: [SimulatorFault(.gamepadUnplug, at: 1_000_000_000, for: 1_000_000_000),
                    SimulatorFault(.estopHold, at: 1_200_000_000)])  // pressed while unplugged: down when it is back
        func events(_ bytes: [UInt8]) -> [InputEvent] {
            var decoder = InputEventStreamDecoder()
            var events: [InputEvent] = []
            bytes.withUnsafeBytes { decoder.feed($0) { events.append($0) } }
            return events
        }
        let atStart = events(pad.stateReport(at: 0))
        #expect(atStart.map(\.codeName) == ["ABS_X", "ABS_Y", "ABS_RX", "ABS_RY", "ABS_HAT0X", "BTN_EAST", "SYN_REPORT"])
        #expect(atStart.allSatisfy { $0.value == 0 })
        _ = pad.advance(to: 2 * second)
        let replugged = events(pad.stateReport(at: 2 * second))
        #expect(replugged.map(\.codeName) == ["ABS_X", "ABS_Y", "ABS_RX", "ABS_RY", "ABS_HAT0X", "BTN_EAST", "SYN_REPORT"])
        #expect(replugged.map(\.value) == [0, -32768, 9000, 0, 0, 1, 0])
        #expect(replugged[0].seconds == 2)
    }

    /// The FIFO's writer sends the opening state first to each reader that opens it: at the start
    /// and after the reader went away and came back (robotd's restart), never in between.
    @Test func when_a_reader_opens_the_fifo_expect_the_opening_bytes_before_the_rest() throws {
        let path = NSTemporaryDirectory() + "robotd-fifo-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let writer = try FifoWriter(path: path)
        func readAll(_ fd: Int32) -> [UInt8] {
            var buffer = [UInt8](repeating: 0, count: 256)
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            return n > 0 ? Array(buffer[0..<n]) : []
        }
        writer.write([1, 2]) { [9] }  // no reader yet: dropped, opening included
        #expect(writer.bytesDropped == 2)
        var reader = open(path, O_RDONLY | O_NONBLOCK)
        #expect(reader >= 0)
        writer.write([1, 2]) { [9] }
        writer.write([3]) { [9] }
        #expect(readAll(reader) == [9, 1, 2, 3])
        close(reader)
        writer.write([4]) { [9] }  // EPIPE: the reader left
        reader = open(path, O_RDONLY | O_NONBLOCK)
        defer { close(reader) }
        writer.write([5]) { [8] }
        #expect(readAll(reader) == [8, 5])
    }
}
