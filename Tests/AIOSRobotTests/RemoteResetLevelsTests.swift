import Foundation
import RTScheduler
import RobotConfig
import SafetyGuard
import Testing
@testable import AIOSRobot

/// A reset reads every level the guard tick reads (`Control.refreshLevels`) before it acts: a level
/// that changed since the last tick — the stop path's keep-alive gone silent, the broker link
/// dropped — refuses a valid reset at once, not only from the next tick on. The guard here ticks
/// once a second (`guard_period_ms: 1000`), so a reset lands between two ticks.
@Suite("Remote reset: every level read again before it acts")
struct RemoteResetLevelsTests {
    static let alive = "robotd/iot-rig-sim/estop/alive"
    static let stop = "robotd/iot-rig-sim/estop"
    static let reset = "robotd/iot-rig-sim/estop/reset/operator"

    /// Keep-alives every 100 ms up to a guard tick at 3 s, then a remote stop: latched, links up.
    static func latchedAtATick() throws -> (ConfiguredRigLoop, UInt64) {
        let loop = try ConfiguredRigLoop(try Examples.configuration("iot-rig-sim.yaml") {
            $0 = $0.replacingOccurrences(of: "heartbeat_ms: none", with: "heartbeat_ms: 500")
                .replacingOccurrences(of: "guard_period_ms: 100", with: "guard_period_ms: 1000")
        })
        var counter: UInt64 = 1_795_664_561_000
        while loop.rig.time < 3_000_000_000 {
            counter += 100
            loop.publish(alive, "\(counter)")
            loop.run(until: loop.rig.time + 100_000_000)
        }
        loop.publish(stop, "stop")
        counter += 100
        loop.publish(alive, "\(counter)")
        loop.run(until: loop.rig.time + 100_000_000)
        return (loop, counter)
    }

    /// The keep-alive falls silent after the stop; 600 ms later (past `heartbeat_ms`, before the
    /// next tick) a reset naming the current latch: refused, the lost link its cause.
    @Test func when_the_keepalive_went_silent_since_the_last_tick_expect_a_reset_refused() throws {
        let (loop, _) = try Self.latchedAtATick()
        #expect(loop.status.latched && loop.status.latchCause == .remoteStop)
        loop.run(until: loop.rig.time + 600_000_000)
        // The premise: the last tick (at 3 s) saw the link up, the next one is at 4 s.
        #expect(loop.status.linksUp && loop.rig.time < 4_000_000_000)
        loop.publish(Self.reset, "reset \(loop.status.latchSequence)")
        loop.run(until: loop.rig.time + 100_000_000)
        // Refused: the lost link rises as the request is looked at (a new stop state its sender
        // did not see: `stale-latch`), and persists.
        let record = try #require(loop.runtime.remoteResets.records().last)
        #expect(loop.status.latched && loop.status.resets == 0 && record.outcome == .refused, "\(record)")
        #expect(loop.status.causes.kinds.contains(.connectionLost), "\(loop.status.causes)")
        #expect(!loop.status.linksUp)
    }

    /// The keep-alives go on, but the broker link drops right after a reset request arrived (before
    /// the next tick): the request is refused, the lost link its cause.
    @Test func when_the_broker_link_dropped_since_the_last_tick_expect_a_reset_refused() throws {
        let (loop, counter) = try Self.latchedAtATick()
        #expect(loop.status.latched)
        loop.publish(Self.alive, "\(counter + 100)")
        loop.run(until: loop.rig.time + 100_000_000)
        #expect(loop.status.linksUp && loop.rig.time < 4_000_000_000)
        loop.publish(Self.alive, "\(counter + 200)")
        loop.publish(Self.reset, "reset \(loop.status.latchSequence)")
        loop.broker.up.store(false, ordering: .relaxed)
        loop.run(until: loop.rig.time + 100_000_000)
        // Refused: the lost link rises as the request is looked at (a new stop state its sender
        // did not see: `stale-latch`), and persists.
        let record = try #require(loop.runtime.remoteResets.records().last)
        #expect(loop.status.latched && loop.status.resets == 0 && record.outcome == .refused, "\(record)")
        #expect(loop.status.causes.kinds.contains(.connectionLost), "\(loop.status.causes)")
    }

    /// Control: the same reset with every level up is released (the refusals above are the levels').
    @Test func when_every_level_is_up_expect_the_reset_between_ticks_released() throws {
        let (loop, counter) = try Self.latchedAtATick()
        loop.publish(Self.alive, "\(counter + 100)")
        loop.run(until: loop.rig.time + 100_000_000)
        loop.publish(Self.alive, "\(counter + 200)")
        loop.publish(Self.reset, "reset \(loop.status.latchSequence)")
        loop.run(until: loop.rig.time + 100_000_000)
        #expect(!loop.status.latched && loop.status.resets == 1, "\(loop.status.lastRefusal)")
    }
}
