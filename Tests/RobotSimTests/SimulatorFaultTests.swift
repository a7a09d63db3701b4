import Codecs
import Foundation
import Glibc
import Synchronization
import TestSupport
import Testing
import Transports
@testable import RobotSim

/// Device time of a frame as simulated ns (the device clock starts at 0 in these runs).
private func ns(_ micros: UInt32) -> Int64 { Int64(micros) * 1000 }

private func faultyRover(_ faults: [SimulatorFault]) -> RoverSimulation {
    var config = RoverSimulationConfig()
    config.faults = faults
    return RoverSimulation(config: config)
}

@Suite("Simulator faults in lockstep")
struct SimulatorFaultTests {
    @Test func when_a_fault_is_written_kind_at_seconds_plus_duration_expect_it_parsed_and_printed_back() throws {
        let fault = try SimulatorFault(parsing: "range-dead@2+3")
        #expect(fault == SimulatorFault(.rangeDead, at: 2 * second, for: 3 * second))
        #expect(fault.description == "range-dead@2+3")
        let open = try SimulatorFault(parsing: "runaway@1.5")
        #expect(open.kind == .runaway && open.start == 1_500_000_000 && open.duration == nil)
        #expect(open.description == "runaway@1.5")
        #expect(fault.isActive(at: 2 * second) && fault.isActive(at: 5 * second - 1) && !fault.isActive(at: 5 * second))
        #expect(!fault.isActive(at: 2 * second - 1) && open.isActive(at: .max))
        for bad in ["nope@1", "range-dead", "@1", "range-dead@-1", "range-dead@x", "range-dead@1+0", "range-dead@1+", "range-dead@inf"] {
            #expect(throws: SimulatorFault.ParseError.self, "\(bad)") { try SimulatorFault(parsing: bad) }
        }
        // The syntax alone is robotd's to use for kinds that are not the simulator's.
        let policy = try SimulatorFault.parseSpecification("policy-hang@4")
        #expect(policy.kind == "policy-hang" && policy.at == 4 && policy.duration == nil)
        do {
            _ = try SimulatorFault(parsing: "nope@1")
        } catch {
            #expect(error.description.contains("range-dead") && error.description.contains("broker-stop"))
        }
    }

    @Test func when_the_range_sensor_is_dead_from_the_start_expect_no_range_frame_ever_and_the_rest_at_rate() {
        let sim = faultyRover([SimulatorFault(.rangeDead, at: 0)])
        var received = Received()
        drive(sim, to: 3 * second, into: &received)
        #expect(received.ranges.isEmpty)
        #expect(received.imu.count == 600 && received.encoders.count == 150 && received.heartbeats == 15)
        #expect(sim.snapshot().activeFaults == ["range-dead"])
    }

    @Test func when_the_encoders_die_at_2_s_expect_encoder_frames_only_before_and_the_others_after() {
        let sim = faultyRover([SimulatorFault(.encodersDead, at: 2 * second)])
        var received = Received()
        drive(sim, to: 4 * second, into: &received)
        #expect(received.encoders.count == 99)  // 20 ms … 1980 ms; the 2000 ms sample is already dead
        #expect(received.encoders.allSatisfy { ns($0.deviceTimeMicros) < 2 * second })
        #expect(received.imu.contains { ns($0.deviceTimeMicros) > 3 * second })
        #expect(received.ranges.contains { ns($0.deviceTimeMicros) > 3 * second })
    }

    @Test func when_the_imu_dies_for_a_second_expect_a_gap_then_samples_with_unshifted_noise() {
        let faulty = faultyRover([SimulatorFault(.imuDead, at: second, for: second)])
        let clean = faultyRover([])
        var a = Received(), b = Received()
        drive(faulty, to: 3 * second, into: &a)
        drive(clean, to: 3 * second, into: &b)
        #expect(!a.imu.contains { (second..<2 * second).contains(ns($0.deviceTimeMicros)) })
        #expect(a.imu.count == 600 - 200)
        // The noise is drawn for muted samples too: after the fault the two runs agree exactly.
        #expect(a.imu.filter { ns($0.deviceTimeMicros) >= 2 * second } == b.imu.filter { ns($0.deviceTimeMicros) >= 2 * second })
        #expect(a.ranges == b.ranges && a.encoders == b.encoders)
    }

    @Test func when_the_controller_goes_silent_expect_no_frame_at_all_in_the_window_commands_still_obeyed_and_frames_after() {
        let sim = faultyRover([SimulatorFault(.controllerSilent, at: second, for: 2 * second)])
        var received = Received()
        drive(sim, to: 2 * second, into: &received)
        sim.receive(wheelCommand(0, 5))
        drive(sim, to: 4 * second, into: &received)
        #expect(!received.times.contains { (second..<3 * second).contains($0) })
        #expect(received.times.contains { $0 < second } && received.times.contains { $0 >= 3 * second })
        #expect(received.heartbeats == 4 + 6)  // 200…800 ms, then 3000…4000 ms
        let s = sim.snapshot()
        #expect(s.firmware.commandsApplied == 1 && s.linkUp && s.activeFaults.isEmpty)
    }

    @Test func when_the_serial_adapter_is_unplugged_in_lockstep_expect_the_link_down_both_ways_for_the_duration() {
        let sim = faultyRover([SimulatorFault(.serialUnplug, at: second, for: second)])
        var received = Received()
        drive(sim, to: 1_500_000_000, into: &received)
        #expect(!sim.snapshot().linkUp && !sim.isLinkUp && sim.snapshot().activeFaults == ["serial-unplug"])
        sim.receive(wheelCommand(0, 5))
        drive(sim, to: 3 * second, into: &received)
        #expect(!received.times.contains { (second..<2 * second).contains($0) })
        #expect(received.times.contains { $0 >= 2 * second })
        let s = sim.snapshot()
        #expect(s.linkUp && s.firmware.bytesLost > 0 && s.firmware.commandsApplied == 0)
    }

    /// A host that refreshes both wheels at 50 Hz with `speed` (no heartbeats, so only the command
    /// watchdog watches it).
    private func command(_ sim: RoverSimulation, _ speed: Float, from: Int64, until: Int64, left: Bool = true,
                         received: inout Received) {
        var t = from
        while t < until {
            sim.receive((left ? wheelCommand(0, speed) : []) + wheelCommand(1, speed))
            t += 20_000_000
            drive(sim, to: t, into: &received)
        }
    }

    @Test func when_the_left_wheel_runs_away_expect_it_to_speed_up_while_energised_at_zero_and_coast_once_de_energised() {
        let sim = faultyRover([SimulatorFault(.runaway, at: second)])
        var received = Received()
        command(sim, 0, from: 0, until: second, received: &received)
        #expect(abs(sim.snapshot().wheelSpeedLeft) < 0.001)  // the step at 1 s already ran away, one step's worth
        command(sim, 0, from: second, until: 2 * second, received: &received)
        let one = sim.snapshot()
        command(sim, 0, from: 2 * second, until: 2_500_000_000, received: &received)
        let later = sim.snapshot()
        // 10 rad/s² behind a 50 ms lag: ≈ 9.5 rad/s after 1 s, ≈ 14.5 after 1.5 s.
        #expect(one.leftEnergised && one.wheelSpeedLeft > 8 && later.wheelSpeedLeft > one.wheelSpeedLeft + 4)
        #expect(abs(later.wheelSpeedRight) < 1e-9 && later.activeFaults == ["runaway"])
        #expect(later.angularVelocity < 0)  // turning right, about the stopped wheel
        // Cutting its power stops the run: it coasts down as an unpowered wheel does.
        sim.receive(wheelCommand(0, 0, deenergize: true))
        command(sim, 0, from: 2_500_000_000, until: 2_600_000_000, left: false, received: &received)
        let cut = sim.snapshot()
        #expect(!cut.leftEnergised && cut.wheelSpeedLeft < later.wheelSpeedLeft)
        command(sim, 0, from: 2_600_000_000, until: 5 * second, left: false, received: &received)
        #expect(abs(sim.snapshot().wheelSpeedLeft) < 0.05)
    }

    @Test func when_a_runaway_wheel_loses_its_commands_expect_the_firmware_watchdog_to_cut_it() {
        let sim = faultyRover([SimulatorFault(.runaway, at: 0)])
        var received = Received()
        command(sim, 0, from: 0, until: second, received: &received)
        let running = sim.snapshot().wheelSpeedLeft
        #expect(running > 8)
        // No more commands after the one at 980 ms: the driver's own 500 ms watchdog cuts the wheel.
        drive(sim, to: 1_470_000_000, into: &received)
        #expect(sim.snapshot().leftEnergised && sim.snapshot().wheelSpeedLeft > running)
        drive(sim, to: 1_600_000_000, into: &received)
        let cut = sim.snapshot()
        #expect(!cut.leftEnergised && cut.firmware.watchdogTrips >= 1)
        drive(sim, to: 3 * second, into: &received)
        #expect(sim.snapshot().wheelSpeedLeft < 0.1)
    }

    @Test func when_the_estop_is_held_expect_a_press_at_the_start_and_a_release_at_the_end() throws {
        var pad = try SimulatedGamepad(script: [.init(at: 500_000_000, [.press("BTN_SOUTH")])],
                                       faults: [SimulatorFault(.estopHold, at: second, for: 2 * second),
                                                SimulatorFault(.rangeDead, at: 0)])
        var decoder = InputEventStreamDecoder()
        var events: [InputEvent] = []
        pad.advance(to: 2 * second).withUnsafeBytes { decoder.feed($0) { events.append($0) } }
        #expect(events.map(\.codeName) == ["BTN_SOUTH", "SYN_REPORT", "BTN_EAST", "SYN_REPORT"])
        #expect(events[2].value == 1 && events[2].seconds == 1 && events[2].microseconds == 0)
        events = []
        pad.advance(to: 3 * second - 1).withUnsafeBytes { decoder.feed($0) { events.append($0) } }
        #expect(events.isEmpty)  // held
        pad.advance(to: 3 * second).withUnsafeBytes { decoder.feed($0) { events.append($0) } }
        #expect(events.map(\.codeName) == ["BTN_EAST", "SYN_REPORT"] && events[0].value == 0 && events[0].seconds == 3)
        #expect(pad.isFinished)

        var forever = try SimulatedGamepad(script: [], faults: [SimulatorFault(.estopHold, at: 0)])
        #expect(forever.advance(to: 100 * second).count == 2 * InputEvent.size)  // pressed, never released
    }

    @Test func when_the_gamepad_is_unplugged_in_lockstep_expect_what_falls_due_meanwhile_lost() throws {
        var pad = try SimulatedGamepad(script: [.init(at: 500_000_000, [.press("BTN_START")]),
                                                .init(at: 1_500_000_000, [.press("BTN_EAST")])],
                                       faults: [SimulatorFault(.gamepadUnplug, at: 400_000_000, for: 200_000_000)])
        #expect(!pad.isUnplugged(at: 399_999_999) && pad.isUnplugged(at: 400_000_000) && !pad.isUnplugged(at: 600_000_000))
        var decoder = InputEventStreamDecoder()
        var events: [InputEvent] = []
        pad.advance(to: 2 * second).withUnsafeBytes { decoder.feed($0) { events.append($0) } }
        #expect(events.map(\.codeName) == ["BTN_EAST", "SYN_REPORT"] && pad.stepsLost == 1)
    }

    @Test func when_the_rig_loses_its_broker_expect_nothing_published_or_received_meanwhile_and_state_sent_after() {
        var config = RigSimulationConfig()
        config.faults = [SimulatorFault(.brokerStop, at: 2 * second, for: 3 * second)]
        let sim = RigSimulation(config: config)
        var messages: [(topic: String, payload: [UInt8], at: Int64)] = []
        sim.advance(to: 3 * second) { topic, payload, _, at in messages.append((topic, payload, at)) }
        #expect(!sim.snapshot().linkUp && sim.snapshot().activeFaults == ["broker-stop"])
        sim.handle(topic: "sim/rig/heater/set", payload: Array("on".utf8))
        #expect(!sim.snapshot().heaterOn && sim.snapshot().counters.commandsLost == 1)
        sim.setLinkUp(true)  // the fault holds the link down whatever the flag says
        #expect(!sim.snapshot().linkUp)
        sim.advance(to: 8 * second) { topic, payload, _, at in messages.append((topic, payload, at)) }
        #expect(!messages.contains { (2 * second..<5 * second).contains($0.at) })
        let readings = messages.filter { $0.topic == "sim/rig/temperature" }
        #expect(readings.map(\.at) == [1, 5, 6, 7, 8].map { $0 * second })
        sim.handle(topic: "sim/rig/heater/set", payload: Array("on".utf8))
        #expect(sim.snapshot().heaterOn && sim.snapshot().linkUp)

        // A manual link-down holds the rig's state changes until it is back.
        let manual = RigSimulation()
        manual.handle(topic: "sim/rig/heater/set", payload: Array("on".utf8))
        manual.setLinkUp(false)
        var states: [String] = []
        manual.advance(to: second) { topic, payload, _, _ in if topic.hasSuffix("heater/state") { states.append(String(decoding: payload, as: UTF8.self)) } }
        #expect(states.isEmpty)
        manual.setLinkUp(true)
        manual.advance(to: 2 * second) { topic, payload, _, _ in if topic.hasSuffix("heater/state") { states.append(String(decoding: payload, as: UTF8.self)) } }
        #expect(states == ["on"])
    }

    @Test func when_run_twice_with_the_same_faults_expect_identical_bytes() {
        let faults = [SimulatorFault(.runaway, at: 500_000_000, for: 500_000_000), SimulatorFault(.rangeDead, at: second),
                      SimulatorFault(.controllerSilent, at: 1_200_000_000, for: 300_000_000)]
        func run() -> (Received, RoverSnapshot) {
            let sim = faultyRover(faults)
            var received = Received()
            command(sim, 3, from: 0, until: 2 * second, received: &received)
            return (received, sim.snapshot())
        }
        let (a, sa) = run()
        let (b, sb) = run()
        #expect(a.bytes == b.bytes && a.times == b.times && sa == sb)
    }
}

/// serial-unplug and gamepad-unplug in real time: seen from outside as a reader of the paths.
@Suite("Simulator faults in real time", .serialized)
struct SimulatorFaultRealTimeTests {
    /// Reads the device at `path` until it ends (EOF, EIO or hang-up); returns the bytes read.
    private func readUntilEnd(_ path: String, seconds: Double) -> (bytes: Int, ended: Bool) {
        let fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return (0, false) }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        var total = 0
        let begin = Date()
        while Date().timeIntervalSince(begin) < seconds {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 50) > 0 else { continue }
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 { total += n; continue }
            if n == 0 || errno == EIO || poller.revents & Int16(POLLHUP) != 0 { return (total, true) }
        }
        return (total, false)
    }

    @Test func when_the_serial_adapter_is_unplugged_expect_the_reader_to_see_the_end_then_the_device_again_at_the_same_path() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var options = SimulatorRunner.Options()
        options.roverLinkPath = dir + "/rover"
        options.faults = [SimulatorFault(.serialUnplug, at: 600_000_000, for: 600_000_000)]
        let runner = try SimulatorRunner(options: options)
        try runner.start()
        defer { runner.stop() }

        let first = readUntilEnd(dir + "/rover", seconds: 3)
        #expect(first.ended && first.bytes > 1000)
        #expect(runner.rover.snapshot().activeFaults == ["serial-unplug"])
        var info = stat()
        #expect(lstat(dir + "/rover", &info) != 0)  // the link went with the adapter
        #expect(waitUntil(seconds: 3) { lstat(dir + "/rover", &info) == 0 })
        #expect(runner.rover.snapshot().time >= 1_200_000_000)
        let again = readUntilEnd(dir + "/rover", seconds: 0.5)
        #expect(!again.ended && again.bytes > 1000)  // 200 Hz IMU alone is ≈ 2.6 kB/s… and more
        #expect(waitUntil { runner.statistics.serialUnplugs == 1 && runner.statistics.replugFailures == 0 })
    }

    @Test func when_the_serial_unplug_has_no_link_path_expect_a_clear_error() {
        var options = SimulatorRunner.Options()
        options.faults = [SimulatorFault(.serialUnplug, at: 0)]
        #expect(throws: SimulatorError.self) { try SimulatorRunner(options: options) }
        options.faults = [SimulatorFault(.brokerStop, at: 0)]
        #expect(throws: SimulatorError.self) { try SimulatorRunner(options: options) }
        options.faults = [SimulatorFault(.estopHold, at: 0)]
        #expect(throws: SimulatorError.self) { try SimulatorRunner(options: options) }
    }

    @Test func when_the_gamepad_is_unplugged_expect_the_reader_to_lose_the_writer_then_find_it_again_and_nothing_in_between() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var options = SimulatorRunner.Options()
        options.gamepadFIFO = dir + "/gamepad"
        options.gamepadScript = [.init(at: 800_000_000, [.press("BTN_SOUTH")]), .init(at: 1_600_000_000, [.press("BTN_START")])]
        options.faults = [SimulatorFault(.gamepadUnplug, at: 600_000_000, for: 600_000_000)]
        let runner = try SimulatorRunner(options: options)
        let events = Mutex<[InputEvent]>([])
        let links = Mutex<[Bool]>([])
        let decoder = Mutex(InputEventStreamDecoder())
        let reader = try StreamReader(path: dir + "/gamepad", onLink: { up in links.withLock { $0.append(up) } }) { bytes, _ in
            decoder.withLock { d in d.feed(bytes) { e in events.withLock { $0.append(e) } } }
        }
        defer { reader.stop() }
        try runner.start()
        defer { runner.stop() }
        #expect(waitUntil(seconds: 5) { events.withLock { $0.contains { $0.codeName == "BTN_START" } } })
        #expect(links.withLock { $0 } == [false, true])
        let all = events.withLock { $0 }
        let stamps = all.map { Int64($0.seconds) * second + Int64($0.microseconds) * 1000 }
        #expect(!stamps.contains { (600_000_000..<1_200_000_000).contains($0) })  // no keep-alive either
        #expect(stamps.contains { $0 < 600_000_000 } && stamps.contains { (1_200_000_000..<1_600_000_000).contains($0) })
        #expect(!all.contains { $0.codeName == "BTN_SOUTH" })  // pressed while unplugged: lost
        #expect(waitUntil { runner.statistics.gamepadUnplugs == 1 })
    }

    @Test(.enabled(if: MosquittoBroker.isInstalled, "mosquitto is not installed"))
    func when_the_rig_loses_its_broker_expect_no_readings_meanwhile_and_readings_after() throws {
        let broker = try MosquittoBroker()
        try broker.start()
        defer { broker.stop() }
        var options = SimulatorRunner.Options()
        options.broker = ("127.0.0.1", broker.port)
        options.rig.sampleHz = 10
        options.faults = [SimulatorFault(.brokerStop, at: 1_500_000_000, for: second)]
        let runner = try SimulatorRunner(options: options)
        let stamps = Mutex<[Double]>([])
        let client = try MQTTClient(options: MQTTOptions(port: broker.port, clientID: "rig-fault-test")) { message in
            if message.topic == "sim/rig/temperature", let t = try? MQTTPayload.number(message.payload, fieldPath: "time_ms").get() {
                stamps.withLock { $0.append(t) }
            }
        }
        try client.subscribe(.init(filter: "sim/rig/temperature"))
        try client.start()
        defer { client.stop() }
        #expect(waitUntil { client.counters.subscribed.load(ordering: .relaxed) >= 1 })
        try runner.start()
        defer { runner.stop() }
        #expect(waitUntil(seconds: 6) { stamps.withLock { $0.contains { $0 >= 3000 } } })
        let got = stamps.withLock { $0 }
        #expect(!got.contains { (1500..<2500).contains($0) })
        #expect(got.contains { $0 < 1500 })
        #expect(runner.statistics.brokerStops == 1 || waitUntil { runner.statistics.brokerStops == 1 })
    }
}
