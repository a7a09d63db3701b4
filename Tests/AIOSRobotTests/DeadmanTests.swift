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

/// Teleop's deadman as an enabling device (IEC 60204-1 10.9, ISO 10218 habits): motion needs a
/// fresh press, with the sticks centred; a release keeps the wheels stopped until a deliberate
/// hand-back. Judged on the simulator's ground truth in lockstep, and on the policy alone where a
/// rule needs isolating.
@Suite("Teleop's deadman: an enabling device")
struct DeadmanTests {
    // MARK: On the simulated rover (examples/rover-sim.yaml: teleop above wander)

    /// Released after driving: teleop keeps the wheels at rest for ten seconds — twenty times the
    /// former release hold — while wander, below it, runs every period and would drive; only the
    /// hand-back key (pressed with the deadman released) lets wander drive again. A hand-back
    /// pressed while the deadman is held does nothing.
    @Test func when_the_deadman_is_released_expect_a_stop_held_until_the_handback_key() throws {
        let loop = try ConfiguredRoverLoop(try Examples.configuration("rover-sim.yaml"))
        try loop.script([
            .init(at: 2_000_000_000, [.press("BTN_TL")]),
            .init(at: 2_100_000_000, [.axis("ABS_RX", -20000)]),  // turn on the spot
            .init(at: 3_000_000_000, [.press("BTN_NORTH")]),
            .init(at: 3_050_000_000, [.release("BTN_NORTH")]),  // deadman held: refused
            .init(at: 4_000_000_000, [.release("BTN_TL"), .axis("ABS_RX", 0)]),
            .init(at: 15_000_000_000, [.press("BTN_NORTH")]),
            .init(at: 15_050_000_000, [.release("BTN_NORTH")]),
        ])
        loop.run(until: 1_900_000_000)
        #expect(loop.status.commandedBy[0] == 1 && loop.snapshot.linearVelocity > 0.1)  // wander drives
        loop.run(until: 3_900_000_000)
        #expect(loop.status.commandedBy[0] == 0 && abs(loop.snapshot.angularVelocity) > 0.3)  // teleop turns it
        #expect(try loop.gamepadInput().handbacksRefused.load(ordering: .relaxed) == 1)
        loop.run(until: 5_000_000_000)
        let stopped = loop.snapshot
        #expect(abs(stopped.linearVelocity) < 0.01 && abs(stopped.angularVelocity) < 0.01)
        let wanderRuns = loop.task("wander")?.completions ?? 0
        for second in 6...14 {
            loop.run(until: Int64(second) * 1_000_000_000)
            #expect(loop.status.commandedBy[0] == 0 && loop.status.wanted[0] == 0 && loop.status.wanted[1] == 0)
            #expect(abs(loop.snapshot.linearVelocity) < 0.01 && abs(loop.snapshot.angularVelocity) < 0.01, "at \(second) s")
        }
        #expect(loop.snapshot.odometer - stopped.odometer < 0.005)
        #expect((loop.task("wander")?.completions ?? 0) - wanderRuns >= 440)  // wander ran all along (50 Hz)
        #expect(!loop.status.latched)
        loop.run(until: 17_000_000_000)
        #expect(loop.status.commandedBy[0] == 1)  // handed back
        #expect(loop.snapshot.odometer - stopped.odometer > 0.3)
        #expect(loop.snapshot.collisions == 0)
    }

    /// `on_release: yield` keeps the former behaviour: a stop for `release_hold_ms`, then wander
    /// drives by itself — and `robotd check` names the choice in a warning.
    @Test func when_on_release_is_yield_expect_wander_to_resume_by_itself_and_a_check_warning() throws {
        let edit: (inout String) -> Void = {
            $0 = $0.replacingOccurrences(of: "    on_release: hold ", with: "    on_release: yield")
        }
        var text = try Examples.text("rover-sim.yaml")
        edit(&text)
        #expect(text.contains("on_release: yield"))
        let report = RobotFileCheck.load(text: text, file: "rover.yaml")
        #expect(report.errors.isEmpty, "\(report)")
        #expect(report.warnings.contains { $0.keyPath == "policies[0].on_release" && $0.message.contains("by themselves") }, "\(report)")
        let loop = try ConfiguredRoverLoop(try Examples.configuration("rover-sim.yaml", edit: edit))
        try loop.script([
            .init(at: 2_000_000_000, [.press("BTN_TL")]),
            .init(at: 4_000_000_000, [.release("BTN_TL")]),
        ])
        loop.run(until: 4_300_000_000)
        #expect(loop.status.commandedBy[0] == 0 && abs(loop.snapshot.linearVelocity) < 0.01)  // inside the release hold
        let held = loop.snapshot
        loop.run(until: 6_500_000_000)
        #expect(loop.status.commandedBy[0] == 1)  // wander again, nobody asked
        #expect(loop.snapshot.odometer - held.odometer > 0.3)
    }

    /// Driving with the deadman held and the stick forward, the e-stop, then a reset with both
    /// held — held since before the stop, or released and pressed again while latched: nothing
    /// moves. A release and a press with the stick still forward: refused (a stick held deflected
    /// on enable is a runaway). Release, centre, press, then the stick: it drives.
    @Test(arguments: [false, true])
    func when_reset_with_the_deadman_held_and_the_stick_deflected_expect_no_motion_until_released_centred_and_pressed(pressedWhileLatched: Bool) throws {
        let loop = try ConfiguredRoverLoop(try Examples.configuration("rover-sim.yaml"))
        var script: [SimulatedGamepad.Step] = [
            .init(at: 1_000_000_000, [.press("BTN_TL")]),
            .init(at: 1_100_000_000, [.axis("ABS_Y", -20000)]),  // forward
            .init(at: 2_000_000_000, [.press("BTN_EAST")]),
            .init(at: 2_100_000_000, [.release("BTN_EAST")]),
            .init(at: 4_000_000_000, [.press("BTN_START")]),
            .init(at: 4_050_000_000, [.release("BTN_START")]),  // reset, the deadman held
            .init(at: 7_000_000_000, [.release("BTN_TL")]),
            .init(at: 7_500_000_000, [.press("BTN_TL")]),  // the stick still forward: refused
            .init(at: 9_000_000_000, [.release("BTN_TL"), .axis("ABS_Y", 0)]),
            .init(at: 9_500_000_000, [.press("BTN_TL")]),
            .init(at: 9_600_000_000, [.axis("ABS_Y", -20000)]),
        ]
        if pressedWhileLatched {
            // A fresh press, centred — but while latched: it is no enable edge after the reset.
            script += [.init(at: 2_500_000_000, [.release("BTN_TL"), .axis("ABS_Y", 0)]), .init(at: 3_000_000_000, [.press("BTN_TL")]),
                       .init(at: 5_000_000_000, [.axis("ABS_Y", -20000)])]
        }
        try loop.script(script)
        loop.run(until: 1_900_000_000)
        #expect(loop.snapshot.linearVelocity > 0.2)
        loop.run(until: 3_900_000_000)
        #expect(loop.status.latched && abs(loop.snapshot.linearVelocity) < 0.01)
        loop.run(until: 4_200_000_000)
        #expect(!loop.status.latched && loop.status.resets == 1)
        let afterReset = loop.snapshot
        loop.run(until: 7_000_000_000)
        #expect(abs(loop.snapshot.linearVelocity) < 0.01 && loop.snapshot.odometer - afterReset.odometer < 0.005)
        #expect(loop.status.commandedBy[0] == 0)  // teleop holds the wheels: wander does not take them either
        loop.run(until: 9_000_000_000)
        #expect(abs(loop.snapshot.linearVelocity) < 0.01 && loop.snapshot.odometer - afterReset.odometer < 0.005)
        loop.run(until: 11_000_000_000)
        #expect(loop.snapshot.linearVelocity > 0.2 && !loop.status.latched)
        #expect(loop.snapshot.collisions == 0)
    }

    /// Driving slowly (a stick just inside the centre band), the gamepad's stream writer goes away
    /// (a stop) and comes back reporting the deadman held; after the reset nothing moves. The
    /// stick's position from before the loss is forgotten: a release and a press enable teleop, and
    /// the old slight deflection does not drive it.
    @Test func when_the_gamepad_reconnects_with_the_deadman_held_expect_no_motion_until_pressed_again() throws {
        let loop = try ConfiguredRoverLoop(try Examples.configuration("rover-sim.yaml"))
        try loop.script([
            .init(at: 1_000_000_000, [.press("BTN_TL")]),
            .init(at: 1_100_000_000, [.axis("ABS_Y", -20000)]),
            .init(at: 2_000_000_000, [.axis("ABS_Y", -4300)]),  // ≈ 0.09 of full: inside the centre band
        ])
        loop.run(until: 2_900_000_000)
        #expect(loop.snapshot.linearVelocity > 0.02 && loop.snapshot.linearVelocity < 0.08, "v = \(loop.snapshot.linearVelocity)")
        _ = loop.runtime.handle(.writerGone, arrival: 3_000_000_000, input: "gamepad")
        loop.padAlive.store(false, ordering: .relaxed)
        loop.run(until: 3_999_000_000)
        #expect(loop.status.latched && abs(loop.snapshot.linearVelocity) < 0.01)
        // The next writer's first frame reports the sticks (centred now), the e-stop up and the
        // deadman down (a stream that replays its state).
        _ = loop.runtime.handle(.resumed, arrival: 4_000_000_000, input: "gamepad")
        loop.padAlive.store(true, ordering: .relaxed)
        try loop.script([
            .init(at: 4_000_000_000, [.axis("ABS_Y", 0), .axis("ABS_RX", 0), .release("BTN_EAST"), .press("BTN_TL")]),
            .init(at: 5_000_000_000, [.press("BTN_START")]),
            .init(at: 5_050_000_000, [.release("BTN_START")]),
            .init(at: 8_000_000_000, [.release("BTN_TL")]),
            .init(at: 8_500_000_000, [.press("BTN_TL")]),
        ])
        loop.run(until: 5_200_000_000)
        #expect(!loop.status.latched, "causes \(loop.status.causes)")
        let afterReset = loop.snapshot
        loop.run(until: 8_000_000_000)
        #expect(loop.snapshot.odometer - afterReset.odometer < 0.005 && abs(loop.snapshot.linearVelocity) < 0.01)
        loop.run(until: 10_500_000_000)
        // Enabled again (teleop holds the wheels), and the stale deflection drives nothing.
        #expect(loop.status.commandedBy[0] == 0 && loop.status.wanted[0] == 0 && loop.status.wanted[1] == 0)
        #expect(loop.snapshot.odometer - afterReset.odometer < 0.005)
        #expect(!loop.status.latched)
    }

    /// M5: the stick lies jammed forward; the gamepad's stream goes and comes back (a reconnection,
    /// robotd's restart) without reporting its axes: their positions are unknown. A deadman press
    /// then is refused — unknown is not centred — and the stick's first report (jitter beyond the
    /// kernel's fuzz) drives nothing; wander keeps the wheels. Pressed again with the stick known
    /// and centred: teleop enables.
    @Test func when_the_sticks_are_unknown_after_a_reconnection_expect_the_press_refused_and_the_first_report_to_drive_nothing() throws {
        let loop = try ConfiguredRoverLoop(try Examples.configuration("rover-sim.yaml"))
        try loop.script([.init(at: 1_000_000_000, [.axis("ABS_Y", -32768)])])  // jammed forward, no deadman
        loop.run(until: 1_900_000_000)
        _ = loop.runtime.handle(.writerGone, arrival: 2_000_000_000, input: "gamepad")
        loop.padAlive.store(false, ordering: .relaxed)
        loop.run(until: 2_900_000_000)
        #expect(loop.status.latched)  // the e-stop device was lost
        _ = loop.runtime.handle(.resumed, arrival: 3_000_000_000, input: "gamepad")
        loop.padAlive.store(true, ordering: .relaxed)
        try loop.script([
            .init(at: 3_000_000_000, [.release("BTN_EAST")]),  // its e-stop's level, not its sticks
            .init(at: 3_100_000_000, [.press("BTN_START")]),
            .init(at: 3_150_000_000, [.release("BTN_START")]),
            .init(at: 3_500_000_000, [.press("BTN_TL")]),  // the sticks unknown: refused
            .init(at: 4_000_000_000, [.axis("ABS_Y", -32000)]),  // the jammed stick's jitter
            .init(at: 6_000_000_000, [.release("BTN_TL"), .axis("ABS_Y", 0), .axis("ABS_RX", 0)]),
            .init(at: 6_500_000_000, [.press("BTN_TL")]),
        ])
        loop.run(until: 3_400_000_000)
        #expect(!loop.status.latched, "causes \(loop.status.causes)")
        for ms in stride(from: Int64(3_600), through: 5_900, by: 100) {
            loop.run(until: ms * 1_000_000)
            #expect(loop.status.commandedBy[0] == 1, "at \(ms) ms: teleop must not have the wheels")  // wander
        }
        loop.run(until: 7_000_000_000)
        #expect(loop.status.commandedBy[0] == 0 && loop.status.wanted[0] == 0 && loop.status.wanted[1] == 0)  // enabled, centred
        #expect(loop.snapshot.collisions == 0)
    }

    /// L1: the gamepad's input at `priority: low` or `normal` (below teleop's class, `high`): one
    /// frame carries a full deflection and the deadman press, and arrives as teleop's period is
    /// released, so both wait in the same dispatch pass and teleop runs first, its axes event still
    /// queued. Teleop reads the reader's levels: it sees the deflection and refuses the press.
    @Test(arguments: ["low", "normal"])
    func when_a_low_priority_frame_carries_a_deflection_and_the_press_expect_the_press_refused(priority: String) throws {
        let edit: (inout String) -> Void = {
            $0 = $0.replacingOccurrences(of: "    priority: critical\n    deadline_ms: 1\n", with: "    priority: \(priority)\n    deadline_ms: 1\n")
        }
        var text = try Examples.text("rover-sim.yaml")
        edit(&text)
        #expect(text.contains("priority: \(priority)\n    deadline_ms: 1"))
        let loop = try ConfiguredRoverLoop(try Examples.configuration("rover-sim.yaml", edit: edit))
        let pad = try loop.gamepadInput()
        loop.run(until: 1_999_000_000)
        #expect(loop.status.commandedBy[0] == 1)  // wander
        // Teleop's grid is the scheduler's origin (0) + k·20 ms: 2 s is one of its releases. The
        // frame is posted, then that instant is dispatched: one pass, teleop's class first.
        let t: Int64 = 2_000_000_000
        loop.clock.advance(to: Instant(nanoseconds: t))
        var frame = try SimulatedGamepad(script: [.init(at: t, [.axis("ABS_Y", -32768), .press("BTN_TL")])])
        frame.advance(to: t).withUnsafeBytes { pad.feed(bytes: $0, arrival: t) }
        loop.scheduler.dispatchReady(releasingUntil: Instant(nanoseconds: t))
        #expect((loop.task("teleop")?.completions ?? 0) >= 100)
        for ms in stride(from: Int64(2_010), through: 3_900, by: 10) {
            loop.run(until: ms * 1_000_000)
            #expect(loop.status.commandedBy[0] == 1, "at \(ms) ms: teleop must not have the wheels")
        }
        // Released, centred, pressed again: the low-priority pad still enables teleop.
        try loop.script([.init(at: 4_000_000_000, [.release("BTN_TL"), .axis("ABS_Y", 0)]), .init(at: 4_500_000_000, [.press("BTN_TL")])])
        loop.run(until: 5_000_000_000)
        #expect(loop.status.commandedBy[0] == 0 && loop.status.wanted[0] == 0)
    }

    /// M5 (b): a real device's axes are read at open and reported like any event, before anything
    /// else: a stick held deflected since before the opening is known at once. Axes the device
    /// lacks stay unknown. (A stand-in device: there is no /dev/input on CI machines.)
    @Test func when_a_device_opens_expect_its_current_axes_reported_first() throws {
        let loop = try ConfiguredRoverLoop(try Examples.configuration("rover-sim.yaml"))
        let pad = try loop.gamepadInput()
        let absY = try #require(InputEvent.code(named: "ABS_Y")).code, absRX = try #require(InputEvent.code(named: "ABS_RX")).code
        let device = UnpluggableDevice(axes: [absY: -32768])  // jammed forward; no ABS_RX
        let runtime = loop.runtime
        let reader = try InputDeviceReader(device: device, axes: [absY, absRX], onNotice: { notice, arrival in
            _ = runtime.handle(notice, arrival: arrival, input: "gamepad")
        }) { event, arrival in pad.feed(event: event, arrival: arrival) }
        defer { reader.stop() }
        #expect(waitUntil { pad.axisLevels[0].value == 1 })  // linear (ABS_Y, inverted): full forward
        #expect(pad.axisLevels[1].value.isNaN)  // angular: the device has no ABS_RX
        #expect(pad.connectionChangedAt.load(ordering: .relaxed) > 0)
    }

    /// A real device's deadman is read at open (EVIOCGKEY): held since before the opening it is
    /// known held — but no press, so teleop enables nothing until it is released and pressed
    /// again — and up it is known released, so a hand-back works at once. A device that cannot
    /// tell (its key state unreadable) leaves it unknown. (Stand-in devices: no /dev/input here.)
    @Test(arguments: [true, false])
    func when_a_device_opens_expect_the_deadman_known_from_its_key_state_without_a_press(held: Bool) throws {
        let loop = try ConfiguredRoverLoop(try Examples.configuration("rover-sim.yaml"))
        let pad = try loop.gamepadInput()
        #expect(Set(pad.keysReadAtOpen) == ["BTN_TL", "BTN_EAST"])  // the deadman's and the e-stop's
        let btnTL = try #require(InputEvent.code(named: "BTN_TL")).code, absY = try #require(InputEvent.code(named: "ABS_Y")).code
        let absRX = try #require(InputEvent.code(named: "ABS_RX")).code
        let device = UnpluggableDevice(axes: [absY: 0, absRX: 0], keys: [btnTL: held])
        let runtime = loop.runtime
        let notices = Mutex<[InputDeviceReader.Notice]>([])
        let reader = try InputDeviceReader(device: device, axes: [absY, absRX], keys: [btnTL], onNotice: { notice, arrival in
            notices.withLock { $0.append(notice) }
            _ = runtime.handle(notice, arrival: arrival, input: "gamepad")
        }) { event, arrival in pad.feed(event: event, arrival: arrival) }
        defer { reader.stop() }
        #expect(waitUntil { pad.deadmanLevel.load(ordering: .relaxed) != .unknown })
        #expect(pad.deadmanLevel.load(ordering: .relaxed) == (held ? .pressed : .released))
        #expect(notices.withLock { $0 }.contains(.keysAtOpen([btnTL: held])))
        #expect(pad.deadmanPressedAt.load(ordering: .relaxed) == 0, "a level read at open is no press")
        #expect(pad.axisLevels[0].value == 0 && pad.axisLevels[1].value == 0)  // both sticks known, centred
        if !held {
            // Known up: a hand-back at once (unknown, it would be refused).
            let t = pad.connectionChangedAt.load(ordering: .relaxed) + 1_000_000
            var g = try SimulatedGamepad(script: [.init(at: t, [.press("BTN_NORTH")]), .init(at: t + 1_000_000, [.release("BTN_NORTH")])])
            g.advance(to: t + 1_000_000).withUnsafeBytes { pad.feed(bytes: $0, arrival: t + 1_000_000) }
            #expect(pad.handbackAt.load(ordering: .relaxed) == t + 1_000_000 && pad.handbacksRefused.load(ordering: .relaxed) == 0)
        } else {
            // Held since before the opening, sticks centred: the policy sees the deadman held and
            // still does not drive (no press after the opening).
            // The world read from the pad as the control loop reads it: every field, the press
            // edge's instant included (a level read at open that recorded an edge would drive).
            var policy = try Self.policy()
            var world = World(sensorCount: 0, gamepads: [GamepadState(axisCount: 2)])
            world.gamepads[0].read(pad)
            #expect(world.gamepads[0].axes == [0, 0])
            #expect(world.gamepads[0].deadman)
            let later = pad.connectionChangedAt.load(ordering: .relaxed) + 1_000_000_000
            #expect(policy.step(world, now: Instant(nanoseconds: later)) == nil)
        }
    }

    /// An e-stop key latched down while the device was closed sends no event at the opening: read
    /// at open, it is a press — the guard latches, and a reset is refused while it is held; its
    /// release (an event) lets the next reset through. One up at open changes nothing.
    @Test func when_the_estop_key_is_held_at_open_expect_a_latch_and_no_reset_until_it_is_released() throws {
        let loop = try ConfiguredRoverLoop(try Examples.configuration("rover-sim.yaml"), gamepad: [
            .init(at: 2_000_000_000, [.press("BTN_START")]), .init(at: 2_100_000_000, [.release("BTN_START")]),
            .init(at: 3_000_000_000, [.release("BTN_EAST")]),
            .init(at: 3_500_000_000, [.press("BTN_START")]), .init(at: 3_600_000_000, [.release("BTN_START")]),
        ])
        let pad = try loop.gamepadInput()
        let estop = try #require(pad.estop)
        let btnEast = try #require(InputEvent.code(named: "BTN_EAST")).code
        loop.run(until: 1_000_000_000)
        #expect(!loop.status.latched)
        // Up at open: no press, no latch.
        #expect(pad.keysAtOpen([btnEast: false], arrival: loop.rover.time).contains("e-stop BTN_EAST up at open"))
        loop.run(until: 1_200_000_000)
        #expect(!loop.status.latched && !estop.isPressed)
        // Held at open (a device reopened with the mushroom down).
        let words = pad.keysAtOpen([btnEast: true], arrival: loop.rover.time)
        #expect(words.contains("e-stop BTN_EAST HELD at open"), "\(words)")
        #expect(estop.isPressed)
        loop.run(until: 1_500_000_000)
        #expect(loop.status.latched)
        loop.run(until: 2_500_000_000)
        #expect(loop.status.latched && loop.status.resets == 0 && loop.status.refusedResets >= 1, "a reset while the e-stop is held")
        loop.run(until: 4_000_000_000)
        #expect(!loop.status.latched && loop.status.resets == 1, "released, then reset")
    }

    /// An e-stop device back after its loss (reopened, or its stream's writer back) whose key
    /// state nobody reports — the ioctl failed, the code is missing, a stream's writer sends no
    /// level — leaves the e-stop's level unknown, and unknown holds motion (`estop-unknown`): a
    /// reset releases the latch of the loss, but nothing moves until the key reports up. A frame
    /// without it changes nothing.
    @Test(arguments: [false, true])
    func when_the_estop_level_is_unknown_after_a_reopening_expect_motion_held_until_the_key_reports_up(stream: Bool) throws {
        var sim = RoverSimulationConfig()
        sim.seed = 3
        let loop = try ConfiguredRoverLoop(try Examples.configuration("rover-sim.yaml"), simulation: sim, gamepad: [
            .init(at: 2_000_000_000, [.axis("ABS_Y", 0)]),  // a frame without the e-stop key
            .init(at: 2_200_000_000, [.press("BTN_START")]), .init(at: 2_300_000_000, [.release("BTN_START")]),
            .init(at: 3_500_000_000, [.release("BTN_EAST")]),  // the key reports: up
        ])
        let pad = try loop.gamepadInput()
        let estop = try #require(pad.estop)
        loop.run(until: 1_000_000_000)
        #expect(!loop.status.latched && !estop.isPressed && !estop.isLevelUnknown && loop.snapshot.odometer > 0.1)
        // Lost (a stop), then back with its level unknown.
        _ = loop.runtime.handle(stream ? .writerGone : .ended("ENODEV"), arrival: loop.rover.time, input: "gamepad")
        loop.run(until: 1_200_000_000)
        #expect(loop.status.latched && loop.status.causes.contains(.estopDeviceLost))
        let words = loop.runtime.handle(stream ? .resumed : .opened("evdev"), arrival: loop.rover.time, input: "gamepad")
        #expect(stream || words.contains("e-stop level unknown"), "\(words)")
        #expect(estop.isLevelUnknown && !estop.isPressed && !estop.isDeviceLost)
        if !stream { #expect(pad.keysAtOpen([:], arrival: loop.rover.time).contains("e-stop BTN_EAST unknown at open")) }
        loop.run(until: 2_600_000_000)
        #expect(estop.isLevelUnknown, "a frame without the key leaves it unknown")
        #expect(loop.status.resets == 1 && !loop.status.latched, "the loss's latch is reset")
        #expect(loop.status.holding, "but unknown holds motion")
        #expect(!loop.status.causes.contains(.emergencyStopInput), "unknown is no press: no estop-input, no stop category")
        let held = loop.snapshot
        loop.run(until: 3_400_000_000)
        #expect(loop.snapshot.odometer - held.odometer < 0.01 && abs(loop.snapshot.linearVelocity) < 0.01, "nothing moves while unknown")
        #expect(loop.records.contains { $0.kind == .hold && $0.fault == .estopUnknown })
        loop.run(until: 5_000_000_000)
        #expect(!estop.isLevelUnknown && !loop.status.holding)
        #expect(loop.snapshot.odometer - held.odometer > 0.1, "known up: driving again")
        #expect(!loop.status.latched && loop.status.resets == 1)
    }

    /// Unlatched (start_latched: false, the simulator's example), an e-stop device that opens with
    /// its level unknown holds motion until its key reports: read up at open, driving resumes
    /// without a reset (nothing was stopped, only held).
    @Test func when_the_estop_level_is_unknown_while_unlatched_expect_motion_held_until_it_is_read_up() throws {
        var sim = RoverSimulationConfig()
        sim.seed = 3
        let loop = try ConfiguredRoverLoop(try Examples.configuration("rover-sim.yaml"), simulation: sim)
        let pad = try loop.gamepadInput()
        let btnEast = try #require(InputEvent.code(named: "BTN_EAST")).code
        loop.run(until: 1_000_000_000)
        #expect(!loop.status.latched && loop.snapshot.odometer > 0.1)
        _ = loop.runtime.handle(.opened("evdev"), arrival: loop.rover.time, input: "gamepad")
        loop.run(until: 1_500_000_000)
        let held = loop.snapshot
        loop.run(until: 2_000_000_000)
        #expect(!loop.status.latched && loop.status.holding)
        #expect(loop.snapshot.odometer - held.odometer < 0.01 && abs(loop.snapshot.linearVelocity) < 0.01)
        #expect(pad.keysAtOpen([btnEast: false], arrival: loop.rover.time).contains("e-stop BTN_EAST up at open"))
        loop.run(until: 3_000_000_000)
        #expect(!loop.status.latched && !loop.status.holding && loop.status.resets == 0)
        #expect(loop.snapshot.odometer - held.odometer > 0.1)
    }

    /// Read up at the reopening, the e-stop's level is known at once: the next reset goes through.
    @Test func when_the_estop_key_is_read_up_at_a_reopening_expect_the_reset_to_go_through() throws {
        let loop = try ConfiguredRoverLoop(try Examples.configuration("rover-sim.yaml"), gamepad: [
            .init(at: 2_000_000_000, [.press("BTN_START")]), .init(at: 2_100_000_000, [.release("BTN_START")]),
        ])
        let pad = try loop.gamepadInput()
        let estop = try #require(pad.estop)
        let btnEast = try #require(InputEvent.code(named: "BTN_EAST")).code
        loop.run(until: 1_000_000_000)
        _ = loop.runtime.handle(.ended("ENODEV"), arrival: loop.rover.time, input: "gamepad")
        loop.run(until: 1_100_000_000)
        _ = loop.runtime.handle(.opened("evdev"), arrival: loop.rover.time, input: "gamepad")
        loop.run(until: 1_200_000_000)
        #expect(loop.status.latched && estop.isLevelUnknown)
        #expect(pad.keysAtOpen([btnEast: false], arrival: loop.rover.time).contains("e-stop BTN_EAST up at open"))
        #expect(!estop.isPressed && !estop.isLevelUnknown)
        loop.run(until: 2_500_000_000)
        #expect(!loop.status.latched && loop.status.resets == 1)
    }

    /// A device that cannot tell its keys' state (the ioctl fails) leaves the deadman unknown at
    /// open, with no notice; so does a FIFO of raw input_event records (the simulator's gamepad),
    /// whose writer sends events only: a frame of sticks sets the sticks, not the deadman.
    @Test func when_a_device_cannot_tell_its_keys_or_is_a_fifo_expect_the_deadman_unknown_at_open() throws {
        let btnTL = try #require(InputEvent.code(named: "BTN_TL")).code, absY = try #require(InputEvent.code(named: "ABS_Y")).code
        do {
            let loop = try ConfiguredRoverLoop(try Examples.configuration("rover-sim.yaml"))
            let pad = try loop.gamepadInput()
            let runtime = loop.runtime
            let notices = Mutex<[InputDeviceReader.Notice]>([])
            let reader = try InputDeviceReader(device: UnpluggableDevice(axes: [absY: 0]), axes: [absY], keys: [btnTL], onNotice: { notice, arrival in
                notices.withLock { $0.append(notice) }
                _ = runtime.handle(notice, arrival: arrival, input: "gamepad")
            }) { event, arrival in pad.feed(event: event, arrival: arrival) }
            defer { reader.stop() }
            #expect(waitUntil { pad.axisLevels[0].value == 0 })
            usleep(100_000)
            #expect(pad.deadmanLevel.load(ordering: .relaxed) == .unknown)
            #expect(!notices.withLock { $0 }.contains { if case .keysAtOpen = $0 { true } else { false } })
        }
        let directory = try temporaryDirectory("robotd-deadman-fifo")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let fifo = directory + "/gamepad"
        #expect(mkfifo(fifo, 0o600) == 0)
        let loop = try ConfiguredRoverLoop(try Examples.configuration("rover-sim.yaml"))
        let pad = try loop.gamepadInput()
        let runtime = loop.runtime
        let notices = Mutex<[InputDeviceReader.Notice]>([])
        let reader = try InputDeviceReader(path: fifo, axes: ["ABS_Y"], keys: ["BTN_TL"], onNotice: { notice, arrival in
            notices.withLock { $0.append(notice) }
            _ = runtime.handle(notice, arrival: arrival, input: "gamepad")
        }) { event, arrival in pad.feed(event: event, arrival: arrival) }
        defer { reader.stop() }
        let writer = open(fifo, O_WRONLY)
        #expect(writer >= 0)
        defer { close(writer) }
        var g = try SimulatedGamepad(script: [.init(at: 1, [.axis("ABS_Y", 0), .axis("ABS_RX", 0)])])
        let bytes = g.advance(to: 1)
        #expect(bytes.withUnsafeBytes { write(writer, $0.baseAddress, $0.count) } == bytes.count)
        #expect(waitUntil { pad.axisLevels[0].value == 0 })
        #expect(pad.deadmanLevel.load(ordering: .relaxed) == .unknown)
        #expect(!notices.withLock { $0 }.contains { if case .keysAtOpen = $0 { true } else { false } })
    }

    // MARK: The policy alone

    static func policy(_ onRelease: TeleopPolicy.OnRelease = .hold) throws -> TeleopPolicy {
        let odometry = try #require(try Examples.configuration("rover-sim.yaml").odometry)
        return TeleopPolicy(gamepad: 0, linearAxis: 0, angularAxis: 1, maxLinear: 0.5, maxAngular: 1.5, kinematics: DiffDrive(odometry),
                            onRelease: onRelease, releaseHold: .milliseconds(500))
    }

    static func world(deadman: Bool, pressedAt: Int64?, connectedAt: Int64? = nil, lastReset: Int64? = nil, latched: Bool = false,
                      axes: (Double, Double) = (0, 0), handbackAt: Int64? = nil, changedAt: Int64? = nil) -> World {
        var pad = GamepadState(axisCount: 2)
        pad.axes = [axes.0, axes.1]
        pad.deadmanLevel = deadman ? .pressed : .released
        pad.deadmanPressedAt = pressedAt.map { Instant(nanoseconds: $0) }
        pad.deadmanChangedAt = (changedAt ?? pressedAt).map { Instant(nanoseconds: $0) }
        pad.connectionChangedAt = connectedAt.map { Instant(nanoseconds: $0) }
        pad.handbackAt = handbackAt.map { Instant(nanoseconds: $0) }
        var world = World(sensorCount: 0, gamepads: [pad])
        world.latched = latched
        world.lastReset = lastReset.map { Instant(nanoseconds: $0) }
        return world
    }

    static func t(_ ms: Int64) -> Instant { Instant(nanoseconds: ms * 1_000_000) }

    @Test func a_press_before_the_device_was_opened_or_the_last_reset_or_while_latched_enables_nothing() throws {
        var p = try Self.policy()
        // Held since before the device (re)opened: its press is as old as the opening, or older.
        #expect(p.step(Self.world(deadman: true, pressedAt: 1_000_000_000, connectedAt: 1_000_000_000), now: Self.t(1_020)) == nil)
        #expect(p.step(Self.world(deadman: true, pressedAt: 500_000_000, connectedAt: 1_000_000_000), now: Self.t(1_040)) == nil)
        // Held through a reset.
        #expect(p.step(Self.world(deadman: true, pressedAt: 1_500_000_000, connectedAt: 1_000_000_000, lastReset: 2_000_000_000),
                       now: Self.t(2_020)) == nil)
        // Pressed while latched.
        #expect(p.step(Self.world(deadman: true, pressedAt: 3_000_000_000, latched: true), now: Self.t(3_020)) == nil)
        // A press after all of them: enabled (sticks centred, so zeros — teleop has the wheels).
        #expect(p.step(Self.world(deadman: true, pressedAt: 4_000_000_000, connectedAt: 1_000_000_000, lastReset: 2_000_000_000),
                       now: Self.t(4_020)) == ChannelValues(count: 2))
        #expect(p.mode == .driving(press: Self.t(4_000)))
    }

    @Test func a_press_with_a_stick_deflected_is_refused_until_the_next_press() throws {
        var p = try Self.policy()
        #expect(p.step(Self.world(deadman: true, pressedAt: 1_000_000_000, axes: (0.5, 0)), now: Self.t(1_020)) == nil)
        // The same press, the stick now centred: still refused (release, centre, press again).
        #expect(p.step(Self.world(deadman: true, pressedAt: 1_000_000_000, axes: (0, 0)), now: Self.t(1_040)) == nil)
        #expect(p.step(Self.world(deadman: true, pressedAt: 1_000_000_000, axes: (0, 0.3)), now: Self.t(1_060)) == nil)
        // A new press with both centred (within 10 %): enabled, and the sticks then drive.
        #expect(p.step(Self.world(deadman: true, pressedAt: 2_000_000_000, axes: (0.05, -0.08)), now: Self.t(2_020)) != nil)
        let output = p.step(Self.world(deadman: true, pressedAt: 2_000_000_000, axes: (1, 0)), now: Self.t(2_040))
        let forward = try #require(output)
        #expect(abs(forward[0] - 10) < 1e-9 && abs(forward[1] - 10) < 1e-9)  // 0.5 m/s on 0.05 m wheels
    }

    /// M5: an unknown stick (NaN: not reported since the device was opened) is not centred: the
    /// press is refused, and stays refused when the stick's first report arrives.
    @Test func a_press_with_a_stick_unknown_is_refused_until_the_next_press() throws {
        var p = try Self.policy()
        #expect(p.step(Self.world(deadman: true, pressedAt: 1_000_000_000, axes: (.nan, .nan)), now: Self.t(1_020)) == nil)
        #expect(p.step(Self.world(deadman: true, pressedAt: 1_000_000_000, axes: (1, 0)), now: Self.t(1_040)) == nil)
        #expect(p.mode == .idle)
        #expect(p.step(Self.world(deadman: true, pressedAt: 2_000_000_000, axes: (0, .nan)), now: Self.t(2_020)) == nil)
        #expect(p.step(Self.world(deadman: true, pressedAt: 3_000_000_000, axes: (0, 0)), now: Self.t(3_020)) == ChannelValues(count: 2))
        // Driving, an axis unknown again drives nothing on it.
        #expect(p.step(Self.world(deadman: true, pressedAt: 3_000_000_000, axes: (.nan, 0)), now: Self.t(3_040)) == ChannelValues(count: 2))
    }

    @Test func on_hold_a_release_keeps_zero_until_a_handback_made_after_it() throws {
        var p = try Self.policy(.hold)
        _ = p.step(Self.world(deadman: true, pressedAt: 1_000_000_000), now: Self.t(1_020))
        // Released at 2 s; a hand-back from before the release does not count.
        for ms in stride(from: Int64(2_020), through: 60_000, by: 1_000) {
            #expect(p.step(Self.world(deadman: false, pressedAt: 1_000_000_000, handbackAt: 1_500_000_000, changedAt: 2_000_000_000),
                           now: Self.t(ms)) == ChannelValues(count: 2))
        }
        #expect(p.step(Self.world(deadman: false, pressedAt: 1_000_000_000, handbackAt: 61_000_000_000, changedAt: 2_000_000_000),
                       now: Self.t(61_020)) == nil)
        #expect(p.mode == .idle)
        #expect(p.step(Self.world(deadman: false, pressedAt: 1_000_000_000, handbackAt: 61_000_000_000, changedAt: 2_000_000_000),
                       now: Self.t(61_040)) == nil)
    }

    /// F6: a hand-back stamped after the release, but the deadman unknown now (events lost since,
    /// or the device reopened): teleop keeps the wheels until the deadman is seen released again.
    @Test func on_hold_a_handback_with_the_deadman_unknown_hands_nothing_back() throws {
        var p = try Self.policy(.hold)
        _ = p.step(Self.world(deadman: true, pressedAt: 1_000_000_000), now: Self.t(1_020))
        var unknown = Self.world(deadman: false, pressedAt: 1_000_000_000, handbackAt: 3_000_000_000, changedAt: 2_000_000_000)
        unknown.gamepads[0].deadmanLevel = .unknown
        #expect(!unknown.gamepads[0].deadman && !unknown.gamepads[0].deadmanReleased)
        for ms in stride(from: Int64(3_020), through: 10_000, by: 500) {
            #expect(p.step(unknown, now: Self.t(ms)) == ChannelValues(count: 2), "at \(ms) ms")
        }
        #expect(p.mode == .holding(since: Self.t(2_000)))
        #expect(p.step(Self.world(deadman: false, pressedAt: 1_000_000_000, handbackAt: 3_000_000_000, changedAt: 2_000_000_000),
                       now: Self.t(10_020)) == nil)
        #expect(p.mode == .idle)
    }

    @Test func on_yield_a_release_stops_for_the_release_hold_then_yields() throws {
        var p = try Self.policy(.yield)
        _ = p.step(Self.world(deadman: true, pressedAt: 1_000_000_000), now: Self.t(1_020))
        let released = Self.world(deadman: false, pressedAt: 1_000_000_000, changedAt: 2_000_000_000)
        #expect(p.step(released, now: Self.t(2_020)) == ChannelValues(count: 2))
        #expect(p.step(released, now: Self.t(2_480)) == ChannelValues(count: 2))
        #expect(p.step(released, now: Self.t(2_520)) == nil)
    }

    // MARK: The gamepad's levels

    /// Edges, not levels: a repeated press is no new edge; the hand-back acts on its release and
    /// only with the deadman released at its press, at its release and in between; the device's
    /// (re)opening is stamped and forgets the sticks.
    @Test func when_keys_arrive_expect_press_edges_and_handbacks_stamped_on_the_reader_side() throws {
        let loop = try ConfiguredRoverLoop(try Examples.configuration("rover-sim.yaml"))
        let pad = try loop.gamepadInput()
        func feed(_ changes: [SimulatedGamepad.Change], at t: Int64) throws {
            var g = try SimulatedGamepad(script: [.init(at: t, changes)])
            g.advance(to: t).withUnsafeBytes { pad.feed(bytes: $0, arrival: t) }
        }
        try feed([.press("BTN_TL")], at: 100)
        try feed([.press("BTN_TL")], at: 200)  // a stream repeating the level: no new edge
        #expect(pad.deadmanPressedAt.load(ordering: .relaxed) == 100)
        try feed([.press("BTN_NORTH")], at: 300)
        try feed([.release("BTN_NORTH")], at: 400)
        #expect(pad.handbackAt.load(ordering: .relaxed) == 0 && pad.handbacksRefused.load(ordering: .relaxed) == 1)
        try feed([.release("BTN_TL")], at: 500)
        try feed([.release("BTN_NORTH")], at: 550)  // a release without its press: nothing
        try feed([.press("BTN_NORTH")], at: 600)
        #expect(pad.handbackAt.load(ordering: .relaxed) == 0)  // not on the press
        try feed([.release("BTN_NORTH")], at: 700)
        #expect(pad.handbackAt.load(ordering: .relaxed) == 700)
        try feed([.press("BTN_TL")], at: 800)
        #expect(pad.deadmanPressedAt.load(ordering: .relaxed) == 800)
        // Pressed while driving, released after the deadman (the pad let go): refused.
        try feed([.press("BTN_NORTH")], at: 810)
        try feed([.release("BTN_TL")], at: 820)
        try feed([.release("BTN_NORTH")], at: 830)
        #expect(pad.handbackAt.load(ordering: .relaxed) == 700 && pad.handbacksRefused.load(ordering: .relaxed) == 2)
        // Pressed with the deadman released, the deadman pressed and released meanwhile: refused.
        try feed([.press("BTN_NORTH")], at: 840)
        try feed([.press("BTN_TL")], at: 850)
        try feed([.release("BTN_TL")], at: 860)
        try feed([.release("BTN_NORTH")], at: 870)
        #expect(pad.handbackAt.load(ordering: .relaxed) == 700 && pad.handbacksRefused.load(ordering: .relaxed) == 3)
        try feed([.press("BTN_TL")], at: 880)
        #expect(pad.deadmanPressedAt.load(ordering: .relaxed) == 880)
        try feed([.axis("ABS_Y", 0)], at: 890)
        #expect(pad.axisLevels[0].value == 0)
        pad.deviceLost(arrival: 900)
        #expect(pad.deadmanLevel.load(ordering: .relaxed) == .released && pad.connectionChangedAt.load(ordering: .relaxed) == 900)
        #expect(pad.axisLevels[0].value.isNaN)
        try feed([.axis("ABS_Y", 0)], at: 950)
        _ = loop.runtime.handle(.opened("pad"), arrival: 1_000, input: "gamepad")
        #expect(pad.connectionChangedAt.load(ordering: .relaxed) == 1_000)
        #expect(pad.axisLevels[0].value.isNaN)
        // Events lost (SYN_DROPPED on a stream, where nothing reports the state again): the
        // sticks may have moved meanwhile, so they are unknown (not centred) until reported.
        try feed([.axis("ABS_Y", 0)], at: 1_100)
        #expect(pad.axisLevels[0].value == 0)
        pad.feed(event: .synDropped, arrival: 1_200)
        #expect(pad.axisLevels[0].value.isNaN)
    }

    /// F6: after lost events (SYN_DROPPED) the keys' states are unknown: a deadman held through the
    /// loss reports nothing more (the kernel reports changes only), so it is neither held nor
    /// released until its next event. A hand-back made then — the deadman still held — is refused,
    /// and so is one whose press came before a loss and its release after it; the device's
    /// (re)opening makes the deadman unknown likewise.
    @Test func when_events_are_lost_expect_the_deadman_unknown_and_no_handback_across_the_loss() throws {
        let loop = try ConfiguredRoverLoop(try Examples.configuration("rover-sim.yaml"))
        let pad = try loop.gamepadInput()
        func feed(_ changes: [SimulatedGamepad.Change], at t: Int64) throws {
            var g = try SimulatedGamepad(script: [.init(at: t, changes)])
            g.advance(to: t).withUnsafeBytes { pad.feed(bytes: $0, arrival: t) }
        }
        func level() -> GamepadInput.KeyLevel { pad.deadmanLevel.load(ordering: .relaxed) }
        func handbackAt() -> Int64 { pad.handbackAt.load(ordering: .relaxed) }
        func refused() -> UInt64 { pad.handbacksRefused.load(ordering: .relaxed) }
        #expect(level() == .unknown)  // nothing reported yet
        try feed([.press("BTN_TL")], at: 100)
        #expect(level() == .pressed)
        // Events lost with the deadman held (a stream's SYN_DROPPED, then the frame it skips to).
        pad.feed(event: .synDropped, arrival: 200)
        pad.feed(event: .synReport, arrival: 210)
        #expect(level() == .unknown && pad.deadmanChangedAt.load(ordering: .relaxed) == 200)
        // The hand-back, the deadman still held (nothing reports it): refused.
        try feed([.press("BTN_NORTH")], at: 300)
        try feed([.release("BTN_NORTH")], at: 400)
        #expect(handbackAt() == 0 && refused() == 1)
        // The deadman's release is a fresh event: known again.
        try feed([.release("BTN_TL")], at: 500)
        #expect(level() == .released)
        // A hand-back straddling a loss (libevdev's resync of a real device here), even with the
        // deadman reported released again before the hand-back's release: refused.
        try feed([.press("BTN_NORTH")], at: 600)
        _ = loop.runtime.handle(.resynchronised, arrival: 700, input: "gamepad")
        #expect(level() == .unknown)
        try feed([.release("BTN_TL")], at: 750)
        #expect(level() == .released)
        try feed([.release("BTN_NORTH")], at: 800)
        #expect(handbackAt() == 0 && refused() == 2)
        // Both edges after the loss with the deadman known released: it counts.
        try feed([.press("BTN_NORTH")], at: 900)
        try feed([.release("BTN_NORTH")], at: 1_000)
        #expect(handbackAt() == 1_000 && refused() == 2)
        // The device reopened: unknown until the deadman's next event.
        _ = loop.runtime.handle(.opened("pad"), arrival: 1_100, input: "gamepad")
        #expect(level() == .unknown)
        try feed([.press("BTN_NORTH")], at: 1_200)
        try feed([.release("BTN_NORTH")], at: 1_300)
        #expect(handbackAt() == 1_000 && refused() == 3)
    }

    /// F6 on the simulated rover: teleop drives, events are lost with the deadman held (teleop's
    /// drive ends and it holds the wheels; the pad is also the e-stop, so the loss latches, and a
    /// reset follows), then the hand-back key is pressed and released — the deadman still held,
    /// which nothing reports. Wander must not get the wheels. Released, and the hand-back again:
    /// wander drives.
    @Test func when_events_are_lost_with_the_deadman_held_expect_the_wheels_kept_until_a_handback_with_it_seen_released() throws {
        let loop = try ConfiguredRoverLoop(try Examples.configuration("rover-sim.yaml"))
        let pad = try loop.gamepadInput()
        try loop.script([
            .init(at: 1_000_000_000, [.press("BTN_TL")]),
            .init(at: 1_100_000_000, [.axis("ABS_RX", -20000)]),  // turn on the spot
        ])
        loop.run(until: 1_999_000_000)
        #expect(loop.status.commandedBy[0] == 0 && abs(loop.snapshot.angularVelocity) > 0.3)
        pad.feed(event: .synDropped, arrival: 2_000_000_000)
        pad.feed(event: .synReport, arrival: 2_000_000_000)
        try loop.script([
            .init(at: 2_100_000_000, [.axis("ABS_Y", 0), .axis("ABS_RX", 0)]),  // the sticks reported again
            .init(at: 2_600_000_000, [.press("BTN_START")]),
            .init(at: 2_650_000_000, [.release("BTN_START")]),  // reset: a lost e-stop press is possible
            .init(at: 3_000_000_000, [.press("BTN_NORTH")]),
            .init(at: 3_050_000_000, [.release("BTN_NORTH")]),  // the deadman still held
            .init(at: 6_500_000_000, [.release("BTN_TL")]),
            .init(at: 7_000_000_000, [.press("BTN_NORTH")]),
            .init(at: 7_050_000_000, [.release("BTN_NORTH")]),
        ])
        loop.run(until: 2_500_000_000)
        #expect(loop.status.latched)
        loop.run(until: 2_900_000_000)
        #expect(!loop.status.latched, "causes \(loop.status.causes)")
        let held = loop.snapshot
        #expect(abs(held.angularVelocity) < 0.01 && abs(held.linearVelocity) < 0.01)
        for ms in stride(from: Int64(3_100), through: 6_400, by: 100) {
            loop.run(until: ms * 1_000_000)
            #expect(loop.status.commandedBy[0] == 0 && loop.status.wanted[0] == 0 && loop.status.wanted[1] == 0,
                    "at \(ms) ms: teleop must keep the wheels")
        }
        #expect(loop.snapshot.odometer - held.odometer < 0.005)
        #expect(pad.handbacksRefused.load(ordering: .relaxed) == 1 && pad.handbackAt.load(ordering: .relaxed) == 0)
        #expect(!loop.status.latched)
        loop.run(until: 9_000_000_000)
        #expect(loop.status.commandedBy[0] == 1)  // handed back
        #expect(loop.snapshot.odometer - held.odometer > 0.3)
        #expect(loop.snapshot.collisions == 0)
    }
}

extension ConfiguredRoverLoop {
    /// The (first) gamepad's input, as its reader thread would feed it.
    func gamepadInput() throws -> GamepadInput {
        try #require(runtime.endpoints.lazy.compactMap { if case .inputDevice(let d) = $0.endpoint { d.gamepad } else { nil } }.first)
    }
}

/// An e-stop gamepad on a FIFO of raw input_event records (the simulator's, or any writer's) under
/// the daemon — `robotd run`'s code path: `InputDeviceReader`'s stream reader, its `.writerGone`
/// and `.resumed` notices, `RobotRuntime.handle`, the gamepad's decoder, the guard on its own
/// thread — when the stream's writer goes away and a new one comes. The reader posts `.resumed`
/// (the level unknown again) at the new writer's first complete frame, before that frame's keys
/// are decoded, all on the reader thread: the writer's first report of the e-stop key decides the
/// level. Posted after them (checked by moving it there), a key reported up is made unknown again
/// at once — motion held for good, since the writer reports it once — and one reported down still
/// latches by its count but is left unknown, not known held.
@Suite("An e-stop stream's writer back, through the real reader", .serialized)
struct EStopStreamReopeningTests {
    enum FirstFrame: String, CaseIterable, Sendable, CustomStringConvertible {
        /// The simulator's state report: sticks and the e-stop key, up — then nothing but empty reports.
        case keyUp
        /// The sticks only (a writer that does not report the key): unknown, held, until it does.
        case withoutKey
        /// The state report with the key down (a mushroom latched while the writer was away): a press.
        case keyDown
        var description: String { rawValue }
    }

    @Test(arguments: FirstFrame.allCases)
    func when_an_estop_streams_writer_comes_back_expect_the_level_unknown_until_its_first_report_of_the_key(first: FirstFrame) throws {
        let directory = try temporaryDirectory("robotd-estop-reopen")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var simOptions = SimulatorRunner.Options()
        simOptions.roverLinkPath = directory + "/rover"  // the rover only: this test is the gamepad's writer
        let sim = try SimulatorRunner(options: simOptions)
        try sim.start()
        defer { sim.stop() }
        let fifo = directory + "/gamepad"
        try #require(mkfifo(fifo, 0o600) == 0)
        let lines = Mutex<[String]>([])
        let daemon = try RobotDaemon(configuration: try Examples.roverSim(in: directory)) { line in lines.withLock { $0.append(line) } }
        try daemon.start()
        defer { daemon.stop(reason: "test") }
        let pad = try #require(daemon.runtime.endpoints.lazy.compactMap { if case .inputDevice(let d) = $0.endpoint { d.gamepad } else { nil } }.first)
        let estop = try #require(pad.estop)
        let writer = GamepadFIFOWriter(path: fifo)
        // Looked at last, once the writer has stopped (defers run in reverse).
        defer { #expect(writer.shortWrites.load(ordering: .relaxed) == 0, "frames not written whole") }
        defer { writer.stop() }  // before the daemon's reader goes
        let odometer = { sim.rover.snapshot().odometer }
        let status = { daemon.runtime.status }
        let audit = Mutex<[AuditRecord]>([])
        let records = { audit.withLock { $0 += daemon.runtime.audit.drain(); return $0 } }

        // The first writer reports the key up (as the simulator's does when a reader opens the FIFO): driving.
        #expect(estop.isLevelUnknown, "opened: unknown until the key reports")
        try #require(writer.open())
        writer.send(try Self.frame(["ABS_Y": 0, "ABS_RX": 0, "BTN_EAST": 0]))
        writer.keepAlive(true)
        #expect(waitUntil { !estop.isLevelUnknown && !status().holding && odometer() > 0.1 })
        #expect(!status().latched, "latched: \(status().latchCause.map { "\($0)" } ?? "-")")

        // The writer goes: the e-stop device is lost, a stop, carried out to the end (de-energised)
        // before the next writer comes, so that a reset below is refused for its causes only.
        writer.close()
        #expect(waitUntil { estop.isDeviceLost && status().latched && status().causes.contains(.estopDeviceLost) })
        #expect(waitUntil { records().contains { $0.kind == .deenergized } })
        #expect(waitUntil {
            let rover = sim.rover.snapshot()
            return abs(rover.linearVelocity) < 0.005 && abs(rover.angularVelocity) < 0.01
        }, "at rest")
        let pressesBefore = estop.presses, mark = records().count

        // A new writer; its first frame is read whole, with the key's report before its SYN_REPORT.
        try #require(writer.open())
        switch first {
        case .keyUp: writer.send(try Self.frame(["ABS_Y": 0, "ABS_RX": 0, "BTN_EAST": 0]))
        case .withoutKey: writer.send(try Self.frame(["ABS_Y": 0, "ABS_RX": 0]))
        case .keyDown: writer.send(try Self.frame(["ABS_Y": 0, "ABS_RX": 0, "BTN_EAST": 1]))
        }
        writer.keepAlive(true)  // then only empty reports: nothing else will tell the key's level
        #expect(waitUntil { !estop.isDeviceLost && !status().causes.contains(.estopDeviceLost) })
        // The reader's notices, in its order: gone, then back.
        let notices = lines.withLock { $0 }.filter { $0.hasPrefix("input gamepad: ") }
        let gone = notices.firstIndex { $0.contains("the writer went away") }, back = notices.lastIndex { $0.contains("events again") }
        #expect(gone != nil && back != nil && (gone ?? 0) < (back ?? 0), "\(notices)")

        switch first {
        case .keyUp:
            // Known up from its one report, and it stays known: nothing else will report it.
            #expect(waitUntil { !estop.isLevelUnknown && !status().holding })
            usleep(500_000)
            #expect(!estop.isLevelUnknown && !status().holding && !estop.isPressed && estop.presses == pressesBefore)
            #expect(!status().causes.contains(.emergencyStopInput), "\(status().causes)")
            try Self.reset(writer)
            #expect(waitUntil { status().resets == 1 && !status().latched && !status().holding })
            let resumed = odometer()
            #expect(waitUntil { odometer() - resumed > 0.1 }, "known up and reset: driving again")
        case .withoutKey:
            // Unknown: held (`estop-unknown`), no press; frames without the key change nothing.
            #expect(waitUntil { estop.isLevelUnknown && status().holding })
            #expect(waitUntil { records().dropFirst(mark).contains { $0.kind == .hold && $0.fault == .estopUnknown } })
            #expect(!estop.isPressed && estop.presses == pressesBefore && !status().causes.contains(.emergencyStopInput))
            try Self.reset(writer)
            #expect(waitUntil { status().resets == 1 && !status().latched },
                    "the loss's latch is reset: \(status().refusedResets) refused, last for \(status().lastRefusal)")
            let held = odometer()
            usleep(1_000_000)
            #expect(odometer() - held < 0.01, "nothing moves while unknown")
            #expect(estop.isLevelUnknown && status().holding && status().holdCauses.contains(.estopUnknown))
            // The key reports up: known, the hold ends, driving.
            writer.send(try Self.frame(["BTN_EAST": 0]))
            #expect(waitUntil { !estop.isLevelUnknown && !status().holding })
            #expect(waitUntil { odometer() - held > 0.1 }, "known up: driving again")
            #expect(status().resets == 1 && !status().latched)
        case .keyDown:
            // Down from its one report: a press (latched, `estop-input`), known held — not merely unknown.
            #expect(waitUntil { estop.isPressed && estop.presses == pressesBefore + 1 && status().causes.contains(.emergencyStopInput) })
            #expect(!estop.isLevelUnknown && status().latched)
            try Self.reset(writer)
            #expect(waitUntil { status().refusedResets >= 1 }, "held down: the reset is refused")
            #expect(status().resets == 0 && status().latched)
            let held = odometer()
            writer.send(try Self.frame(["BTN_EAST": 0]))
            #expect(waitUntil { !estop.isPressed && !status().causes.contains(.emergencyStopInput) })
            try Self.reset(writer)
            #expect(waitUntil { status().resets == 1 && !status().latched },
                    "released, then reset: \(status().refusedResets) refused, last for \(status().lastRefusal)")
            #expect(waitUntil { odometer() - held > 0.1 }, "released and reset: driving again")
        }
    }

    /// One frame: each key or axis (libevdev names) at its value, then SYN_REPORT.
    static func frame(_ changes: KeyValuePairs<String, Int32>) throws -> [UInt8] {
        var bytes: [UInt8] = []
        for (name, value) in changes {
            let code = try #require(InputEvent.code(named: name))
            InputEvent(type: code.type, code: code.code, value: value).write(into: &bytes)
        }
        InputEvent.synReport.write(into: &bytes)
        return bytes
    }

    /// The reset key (BTN_START in the example) pressed and released, in two frames.
    static func reset(_ writer: GamepadFIFOWriter) throws {
        writer.send(try frame(["BTN_START": 1]))
        usleep(100_000)
        writer.send(try frame(["BTN_START": 0]))
    }
}

/// The writing end of a gamepad FIFO, as a writer process holds it: whole records in one `write`
/// each (a pipe takes up to PIPE_BUF bytes at once), and an empty report every 100 ms while
/// `keepAlive` is on — the e-stop device's liveness (the example's `liveness_ms` is 1000).
final class GamepadFIFOWriter: Sendable {
    let path: String
    private let fd = Mutex<Int32>(-1)
    private let alive = Atomic<Bool>(false)
    private let running = Atomic<Bool>(true)
    private let finished = Atomic<Bool>(false)
    /// Writes that did not write the whole frame (counted: the keep-alive thread is outside any
    /// test's context, so the test checks this).
    let shortWrites = Atomic<Int>(0)

    init(path: String) {
        self.path = path
        signal(SIGPIPE, SIG_IGN)  // a reader gone is EPIPE here, not the test process killed
        Thread.detachNewThread { [self] in
            var report: [UInt8] = []
            InputEvent.synReport.write(into: &report)
            while running.load(ordering: .relaxed) {
                if alive.load(ordering: .relaxed) { send(report) }
                usleep(100_000)
            }
            finished.store(true, ordering: .releasing)
        }
    }

    /// Opens the write end once a reader has the FIFO open (ENXIO until then).
    func open() -> Bool {
        waitUntil {
            let opened = Glibc.open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
            guard opened >= 0 else { return false }
            fd.withLock { $0 = opened }
            return true
        }
    }

    func send(_ bytes: [UInt8]) {
        fd.withLock { fd in
            guard fd >= 0 else { return }
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n != bytes.count { shortWrites.add(1, ordering: .relaxed) }
        }
    }

    func keepAlive(_ on: Bool) { alive.store(on, ordering: .relaxed) }

    /// The writer goes away: the reader sees the FIFO's end.
    func close() {
        alive.store(false, ordering: .relaxed)
        fd.withLock { fd in
            if fd >= 0 { Glibc.close(fd) }
            fd = -1
        }
    }

    func stop() {
        close()
        running.store(false, ordering: .relaxed)
        _ = waitUntil(seconds: 2) { finished.load(ordering: .acquiring) }
    }
}
