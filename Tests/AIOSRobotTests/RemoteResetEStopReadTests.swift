import Foundation
import RTScheduler
import RobotConfig
import SafetyGuard
import Testing
@testable import AIOSRobot

/// A remote reset reads the e-stop devices before it acts (as the reset key does): an e-stop
/// press whose event the guard has not seen yet — still queued, or refused by a full queue; only
/// the device's sticky press count says it — is a stop event the request's sender cannot have
/// seen, so the request is stale and the latch holds.
@Suite("Remote reset: the e-stop devices are read before the request acts")
struct RemoteResetEStopReadTests {
    static let stop = "robotd/iot-rig-sim/estop"
    static let reset = "robotd/iot-rig-sim/estop/reset/operator"

    /// The rig example with an e-stop device beside the remote stop (an evdev pad; the runtime opens
    /// no device, its signal is set by hand below).
    static func rig() throws -> ConfiguredRigLoop {
        try ConfiguredRigLoop(try Examples.configuration("iot-rig-sim.yaml") {
            $0 = $0.replacingOccurrences(of: "\nsensors:\n", with: """

              - name: pad
                kind: evdev
                path: /dev/input/robotd-test-pad
                keys:
                  - {code: BTN_EAST, action: estop}
                priority: critical
                deadline_ms: 1

            sensors:

            """)
            .replacingOccurrences(of: "  inputs: []", with: "  inputs: [pad]")
        })
    }

    @Test func when_an_estop_press_is_unseen_by_the_guard_when_a_reset_request_is_dispatched_expect_the_request_stale() throws {
        let loop = try Self.rig()
        let signal = try #require(loop.runtime.estops.first { $0.input == "pad" }?.signal)
        loop.run(until: 20_000_000_000)
        #expect(loop.heaterOn && !loop.status.latched)
        loop.publish(Self.stop, "stop")
        loop.run(until: loop.rig.time + 200_000_000)
        #expect(loop.status.latched && loop.status.latchCause == .remoteStop)
        let latch = loop.status.latchSequence

        // Between two guard ticks: a press and its release reach the device's signal, and the
        // operator's request (for the number read before the press) is dispatched before the next
        // tick. Only the reset's own read of the devices can see the press.
        let now = loop.rig.time
        signal.set(pressed: true, at: now + 1_000_000)
        signal.set(pressed: false, at: now + 2_000_000)
        loop.publish(Self.reset, "reset \(latch)", arrival: now + 3_000_000)
        loop.scheduler.advance(to: Instant(nanoseconds: now + 5_000_000))
        #expect(loop.status.latched && loop.status.resets == 0 && loop.status.staleResetsIgnored == 1)
        #expect(loop.status.latchSequence != latch)
        let records = loop.runtime.remoteResets.records()
        #expect(records.map(\.reason) == [.staleLatch] && records.first?.latch == latch)

        // The press is over and nothing else persists: a request naming the new number releases,
        // so the refusal above came from the press alone.
        loop.run(until: loop.rig.time + 200_000_000)
        loop.publish(Self.reset, "reset \(loop.status.latchSequence)")
        loop.run(until: loop.rig.time + 200_000_000)
        #expect(!loop.status.latched && loop.status.resets == 1, "\(loop.runtime.remoteResets.records().map(\.reasons))")
    }
}
