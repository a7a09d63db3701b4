import Actuators
import Foundation
import Glibc
import RTScheduler
import RobotSim
import SafetyGuard
import Synchronization
import Testing
import TestSupport
import Transports
@testable import AIOSRobot

/// A stand-in for an evdev device (there is no /dev/input on CI machines): it delivers what the
/// test queues and, once told, fails as libevdev does when the device is unplugged (ENODEV).
final class UnpluggableDevice: InputEventPump, @unchecked Sendable {
    // @unchecked: the queue and flag are behind the mutex.
    let path = "/dev/input/event-standin"
    let name = "stand-in e-stop box"
    private let state = Mutex<(events: [InputEvent], unplugged: Bool)>(([], false))
    /// The absolute axes it has, with their positions (what EVIOCGABS would read at open).
    let axes: [UInt16: Int32]
    /// The keys whose state it can tell (what EVIOCGKEY would read at open): true while down.
    let keys: [UInt16: Bool]
    init(axes: [UInt16: Int32] = [:], keys: [UInt16: Bool] = [:]) {
        self.axes = axes
        self.keys = keys
    }

    func currentKeys(_ codes: [UInt16]) -> [UInt16: Bool] { keys.filter { codes.contains($0.key) } }

    func currentAxes(_ codes: [UInt16], deliver: (InputEvent) -> Void) {
        let present = codes.filter { axes[$0] != nil }
        for code in present { deliver(InputEvent(type: 3, code: code, value: axes[code] ?? 0)) }
        if !present.isEmpty { deliver(.synReport) }
    }

    func queue(_ events: [InputEvent]) { state.withLock { $0.events += events } }
    func unplug() { state.withLock { $0.unplugged = true } }

    func pump(timeoutMilliseconds: Int32, onResync: () -> Void, deliver: (InputEvent) -> Void) throws(InputError) {
        let (events, unplugged) = state.withLock { s in
            defer { s.events = [] }
            return (s.events, s.unplugged)
        }
        for event in events { deliver(event) }
        if unplugged { throw InputError("\(path): \(String(cString: strerror(ENODEV)))") }
        usleep(UInt32(min(timeoutMilliseconds, 5)) * 1000)
    }
}

/// The example rover (examples/rover-sim.yaml) on the generic runtime fails closed, judged on the
/// simulator's ground truth in lockstep.
@Suite("The rover fails closed: e-stop device, held e-stop, silent range, start latched")
struct RoverFailClosedTests {
    /// The ENODEV path end to end: the reader thread ends, the runtime marks the e-stop device lost,
    /// and the next guard tick latches `estop-device-lost`; a reset is refused until events flow again.
    @Test func when_the_estop_device_is_unplugged_expect_a_stop_and_resets_refused_until_it_is_back() throws {
        var sim = RoverSimulationConfig()
        sim.seed = 3
        let loop = try ConfiguredRoverLoop(try Examples.configuration("rover-sim.yaml"), simulation: sim)
        loop.run(until: 1_000_000_000)
        #expect(!loop.status.latched && loop.snapshot.odometer > 0.1)
        let btnEast = try #require(InputEvent.code(named: "BTN_EAST")).code
        let device = UnpluggableDevice(keys: [btnEast: false])  // the e-stop read up at open
        let notices = Mutex<[InputDeviceReader.Notice]>([])
        let runtime = loop.runtime
        let signal = try #require(runtime.estops.first { $0.input == "gamepad" }?.signal)
        let reader = try InputDeviceReader(device: device, keys: [btnEast], onNotice: { notice, arrival in
            notices.withLock { $0.append(notice) }
            _ = runtime.handle(notice, arrival: arrival, input: "gamepad")
        }) { _, _ in }
        defer { reader.stop() }
        device.unplug()
        #expect(waitUntil { notices.withLock { $0.contains { if case .ended = $0 { true } else { false } } } })
        #expect(signal.isDeviceLost)
        loop.run(until: 1_100_000_000)
        #expect(loop.status.latched && loop.status.causes.contains(.estopDeviceLost))
        #expect(loop.status.latchCause == .estopDeviceLost)
        #expect(loop.records.contains { $0.kind == .latched && $0.fault == .estopDeviceLost })
        // The operator presses reset on the simulated gamepad: refused while the device is gone.
        try loop.script([.init(at: 1_200_000_000, [.press("BTN_START")]), .init(at: 1_300_000_000, [.release("BTN_START")])])
        loop.run(until: 1_500_000_000)
        #expect(loop.status.latched && loop.status.refusedResets == 1)
        #expect(loop.status.lastRefusal.contains(.estopDeviceLost))
        #expect(!loop.snapshot.leftEnergised && !loop.snapshot.rightEnergised)
        // Back (events again, the e-stop's level first): the cause clears, and a new deliberate
        // reset releases.
        _ = runtime.handle(.resumed, arrival: 0, input: "gamepad")
        try loop.script([.init(at: 1_550_000_000, [.release("BTN_EAST")]),
                         .init(at: 1_600_000_000, [.press("BTN_START")]), .init(at: 1_700_000_000, [.release("BTN_START")])])
        loop.run(until: 2_000_000_000)
        #expect(!loop.status.latched && loop.status.resets == 1)
        loop.run(until: 3_000_000_000)
        #expect(loop.snapshot.leftEnergised && loop.snapshot.collisions == 0)
    }

    /// The e-stop held for 2 s: latched at once, the reset pressed and released meanwhile is refused,
    /// a reset key held through the e-stop's release is refused too, then a fresh press releases.
    @Test func when_the_estop_is_held_expect_resets_refused_until_released_and_a_fresh_reset_press() throws {
        let loop = try ConfiguredRoverLoop(try Examples.configuration("rover-sim.yaml"), gamepad: [
            .init(at: 2_000_000_000, [.press("BTN_EAST")]),
            .init(at: 2_500_000_000, [.press("BTN_START")]), .init(at: 2_600_000_000, [.release("BTN_START")]),
            .init(at: 3_900_000_000, [.press("BTN_START")]),
            .init(at: 4_000_000_000, [.release("BTN_EAST")]),
            .init(at: 4_100_000_000, [.release("BTN_START")]),
            .init(at: 5_000_000_000, [.press("BTN_START")]), .init(at: 5_100_000_000, [.release("BTN_START")]),
        ])
        loop.run(until: 3_000_000_000)
        #expect(loop.status.latched && loop.status.latchCause == .emergencyStopInput && loop.status.refusedResets == 1)
        #expect(loop.status.lastRefusal == StopCauses(.emergencyStopInput))
        loop.run(until: 4_500_000_000)
        #expect(loop.status.latched && loop.status.refusedResets == 2)  // held through the release
        #expect(!loop.snapshot.leftEnergised && !loop.snapshot.rightEnergised)
        loop.run(until: 6_500_000_000)
        #expect(!loop.status.latched && loop.status.resets == 1)
        #expect(loop.records.filter { $0.kind == .resetRefused }.count == 2)
        #expect(loop.snapshot.firmware.firstEnergisedAt ?? .max < 2_000_000_000)  // it drove before the stop
    }

    /// With no range frame ever the rover never moves (held, then latched `silent-sensor` after the
    /// startup timeout): an unknown range is never +∞.
    @Test func when_the_range_sensor_never_reports_expect_the_rover_never_to_move() throws {
        var sim = RoverSimulationConfig()
        sim.rangeHz = 0.0001  // effectively never
        let loop = try ConfiguredRoverLoop(try Examples.configuration("rover-sim.yaml"), simulation: sim)
        loop.run(until: 4_000_000_000)
        let truth = loop.snapshot
        #expect(truth.firmware.firstEnergisedAt == nil && truth.odometer < 0.001)
        #expect(loop.status.latched && loop.status.latchCause == .silentSensor)
        #expect(loop.status.verdicts.passed == 0 && loop.status.verdicts.clamped == 0)
        #expect(loop.status.verdicts.rejected > 0)  // the policy did ask: the guard refused
        let range = try #require(loop.runtime.sensorNames.firstIndex(of: "range"))
        #expect(loop.status.sensors[range].isNaN)  // unknown, never +∞
    }

    /// On hardware robotd starts latched: nothing moves until a deliberate reset.
    @Test func when_started_latched_expect_no_motion_until_a_reset() throws {
        let loop = try ConfiguredRoverLoop(try Examples.configuration("rover-sim.yaml") {
            $0 = $0.replacingOccurrences(of: "start_latched: false", with: "start_latched: true")
        }, gamepad: [
            .init(at: 2_000_000_000, [.press("BTN_START")]), .init(at: 2_100_000_000, [.release("BTN_START")]),
        ])
        #expect(loop.runtime.configuration.safety.startLatched)
        loop.run(until: 1_900_000_000)
        #expect(loop.status.latched && loop.status.latchCause == .powerOn)
        #expect(loop.snapshot.firmware.firstEnergisedAt == nil && loop.snapshot.odometer < 0.001)
        loop.run(until: 4_000_000_000)
        #expect(!loop.status.latched && loop.status.resets == 1)
        let truth = loop.snapshot
        #expect((truth.firmware.firstEnergisedAt ?? 0) >= 2_100_000_000 && truth.odometer > 0.2)
    }
}
