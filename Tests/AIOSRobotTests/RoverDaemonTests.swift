import Foundation
import RTScheduler
import RobotSim
import SafetyGuard
import Testing
import TestSupport
import Transports
@testable import AIOSRobot

/// The daemon on real threads against the real-time simulator, through a stable port path, as it
/// would run against a USB motor driver that gets unplugged and plugged back in.
@Suite("RoverDaemon: lost and regained rover link", .serialized)
struct RoverDaemonTests {
    @Test func when_the_rover_link_drops_and_returns_expect_a_latched_stop_reactivation_in_safe_state_and_motion_only_after_reset() throws {
        let directory = try temporaryDirectory("robotd-daemon")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var simOptions = SimulatorRunner.Options()
        simOptions.roverLinkPath = directory + "/rover"
        simOptions.gamepadFIFO = directory + "/gamepad"
        var first: SimulatorRunner? = try SimulatorRunner(options: simOptions)
        try first?.start()

        var options = RoverDaemon.Options(roverPort: .path(directory + "/rover"))
        options.gamepad = directory + "/gamepad"
        let daemon = try RoverDaemon(options: options) { _ in }
        try daemon.start()
        defer { daemon.stop(reason: "test") }
        #expect(waitUntil { (first?.rover.snapshot().odometer ?? 0) > 0.2 })

        // Unplugged: the simulator goes away with its pty.
        first?.stop()
        first = nil
        #expect(waitUntil { daemon.runtime.isLatched })
        // The pty's EOF (and the gamepad FIFO's writer going too: the e-stop device is lost).
        var records: [AuditRecord] = []
        #expect(waitUntil {
            records += daemon.runtime.audit.drain()
            return records.contains { $0.fault == .connectionLost } && records.contains { $0.fault == .estopDeviceLost }
        })

        // Plugged back in; the operator resets 2 s later (the new simulator's gamepad).
        simOptions.gamepadScript = [.init(at: 2_000_000_000, [.press("BTN_START")]), .init(at: 2_100_000_000, [.release("BTN_START")])]
        let second = try SimulatorRunner(options: simOptions)
        try second.start()
        defer { second.stop() }
        #expect(waitUntil { daemon.actuators.state(of: "rover-motors") == .active && second.rover.snapshot().firmware.deenergiseCommands >= 2 })
        #expect(waitUntil { daemon.runtime.status.resets == 1 })
        #expect(waitUntil { second.rover.snapshot().odometer > 0.1 })
        // Nothing moved before the reset (in the simulator's own time, whenever the test looked).
        #expect((second.rover.snapshot().firmware.firstEnergisedAt ?? 0) >= 2_000_000_000)
    }
}
