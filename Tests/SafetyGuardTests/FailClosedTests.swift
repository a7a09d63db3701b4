import RTScheduler
import Testing
@testable import SafetyGuard

/// The guard fails closed: what it does not know is unsafe, every stop cause is a level, and a
/// reset is refused while any cause persists (docs/safety.md, hazard table).
@Suite("SafetyGuard fails closed: silent sensors, levels, refused resets, e-stop habits, recovery, monitors")
struct FailClosedTests {
    static let wheel = ContinuousLimits.velocity(maxVelocity: 10, maxAcceleration: 100)

    static func guardian(sensors: [RequiredSensor] = [], workspace: Workspace? = nil, monitor: MotionMonitor? = nil,
                         interlocks: [ValueInterlock] = [], startLatched: Bool = false,
                         reactions: [FaultKind: Reaction] = [:]) throws -> SafetyGuard {
        var configuration = GuardConfiguration(
            channels: [
                ChannelConfiguration(name: "left", limits: .continuous(wheel), motionMonitor: monitor),
                ChannelConfiguration(name: "right", limits: .continuous(wheel), motionMonitor: monitor),
                ChannelConfiguration(name: "heater", limits: .discrete(DiscreteLimits(allowedStates: [0, 1])), isMotion: false),
            ],
            sensors: sensors, workspace: workspace, reactions: reactions)
        configuration.startupTimeout = .milliseconds(500)
        configuration.startLatched = startLatched
        configuration.interlocks = interlocks
        return try SafetyGuard(configuration: configuration)
    }

    static let left = ChannelID(index: 0), right = ChannelID(index: 1), heater = ChannelID(index: 2)

    @Test func when_a_required_sensor_never_reports_expect_motion_held_then_a_latch_after_the_startup_timeout() throws {
        var g = try Self.guardian(sensors: [RequiredSensor(name: "range", maxAge: .milliseconds(100))])
        g.tick(now: ms(0)) { _ in }
        #expect(g.isHolding && !g.latch.isLatched)
        #expect(g.check(command(Self.left, 1, at: ms(10)), now: ms(10)) == .rejected(.holding))
        g.tick(now: ms(400)) { _ in }
        #expect(!g.latch.isLatched)
        g.tick(now: ms(510)) { _ in }
        #expect(g.latch.isLatched && g.latch.cause == .silentSensor)
        #expect(g.reset(at: ms(520)) == .refused(StopCauses(.silentSensor)))
        let refused = try #require(g.audit.drain().last { $0.kind == .resetRefused })
        #expect(refused.causes == StopCauses(.silentSensor))
        // It reports at last: the cause clears, and a deliberate reset releases.
        g.noteSensor(try #require(g.sensor(named: "range")), value: 2.0, at: ms(530)) { _ in }
        g.tick(now: ms(540)) { _ in }
        #expect(g.reset(at: ms(550)) == .released)
        #expect(g.check(command(Self.left, 0.5, at: ms(560)), now: ms(560)).approved != nil)
    }

    @Test func when_a_sample_is_not_finite_or_out_of_range_expect_it_counts_as_no_sample() throws {
        var g = try Self.guardian(sensors: [RequiredSensor(name: "range", maxAge: .milliseconds(100), validRange: 0...4)])
        let range = try #require(g.sensor(named: "range"))
        g.tick(now: ms(0)) { _ in }
        #expect(!g.noteSensor(range, value: .nan, at: ms(1)) { _ in })
        #expect(!g.noteSensor(range, value: .infinity, at: ms(2)) { _ in })
        #expect(!g.noteSensor(range, value: 7, at: ms(3)) { _ in })
        g.tick(now: ms(4)) { _ in }
        #expect(g.isHolding && g.freshValue(of: range, now: ms(4)) == nil)
        #expect(g.audit.drain().filter { $0.kind == .sampleRejected }.count == 3)
        #expect(g.noteSensor(range, value: 3.5, at: ms(5)) { _ in })
        g.tick(now: ms(6)) { _ in }
        #expect(!g.isHolding && g.freshValue(of: range, now: ms(6)) == 3.5)
    }

    @Test func when_a_sensor_stays_stale_expect_reset_refused_and_after_a_reset_a_new_staleness_latches_at_once() throws {
        var g = try Self.guardian(sensors: [RequiredSensor(name: "range", maxAge: .milliseconds(100), reaction: .stop(.zero))])
        let range = try #require(g.sensor(named: "range"))
        g.noteSensor(range, value: 1, at: ms(0)) { _ in }
        g.tick(now: ms(50)) { _ in }
        g.tick(now: ms(150)) { _ in }
        #expect(g.latch.cause == .staleSensor)
        // Today's hole: a reset used to forget the dead sensor. Now refused, with the cause.
        #expect(g.reset(at: ms(200)) == .refused(StopCauses(.staleSensor)))
        g.tick(now: ms(210)) { _ in }
        #expect(g.latch.isLatched)
        g.noteSensor(range, value: 1, at: ms(300)) { _ in }
        g.tick(now: ms(300)) { _ in }
        #expect(g.reset(at: ms(310)) == .released)
        g.tick(now: ms(420)) { _ in }  // 120 ms without a sample
        #expect(g.latch.isLatched && g.latch.cause == .staleSensor)
    }

    @Test func when_a_lost_link_persists_expect_reset_refused_until_it_clears() throws {
        var g = try Self.guardian()
        g.setCause(.connectionLost, present: true, at: ms(1)) { _ in }
        g.tick(now: ms(2)) { _ in }
        #expect(g.latch.cause == .connectionLost)
        #expect(g.reset(at: ms(3)) == .refused(StopCauses(.connectionLost)))
        g.setCause(.connectionLost, present: false, at: ms(4)) { _ in }
        g.tick(now: ms(5)) { _ in }
        #expect(g.reset(at: ms(6)) == .released)
    }

    @Test func when_the_estop_is_held_expect_reset_refused_and_a_reset_key_held_through_its_release_refused() throws {
        var g = try Self.guardian()
        var out = Emitted()
        g.observeEStop(asserted: true, presses: 1, at: ms(1)) { out.sink($0) }
        #expect(g.latch.isLatched && g.latch.cause == .emergencyStopInput)
        g.tick(now: ms(2)) { _ in }
        #expect(g.resetKey(down: true, at: ms(3)) == nil)
        #expect(g.resetKey(down: false, at: ms(4)) == .refused(StopCauses(.emergencyStopInput)))
        // The reset key goes down while the e-stop is still held, the e-stop is released, then the key.
        #expect(g.resetKey(down: true, at: ms(5)) == nil)
        g.observeEStop(asserted: false, presses: 1, at: ms(6)) { out.sink($0) }
        #expect(g.resetKey(down: false, at: ms(7)) == .resetKeyHeldThrough)
        #expect(g.latch.isLatched)
        // Its own deliberate press and release: released on the release edge.
        #expect(g.resetKey(down: true, at: ms(8)) == nil)
        #expect(g.latch.isLatched)
        #expect(g.resetKey(down: false, at: ms(9)) == .released)
        let kinds = g.audit.drain().map(\.kind)
        #expect(kinds.filter { $0 == .resetRefused }.count == 2)
    }

    @Test func when_an_estop_press_and_release_fall_between_two_ticks_expect_the_latch_anyway() throws {
        var g = try Self.guardian()
        g.observeEStop(asserted: false, presses: 0, at: ms(1)) { _ in }
        #expect(!g.latch.isLatched)
        g.observeEStop(asserted: false, presses: 1, at: ms(11)) { _ in }  // the sticky counter moved
        #expect(g.latch.isLatched && g.latch.cause == .emergencyStopInput && g.latch.category == .one)
    }

    @Test func when_the_estop_is_configured_as_category_2_expect_a_configuration_error() {
        #expect(throws: GuardConfigurationError.self) {
            try Self.guardian(reactions: [.emergencyStopInput: .stop(.two)])
        }
        #expect(throws: GuardConfigurationError.self) {
            try Self.guardian(reactions: [.estopDeviceLost: .warn])
        }
        #expect(throws: GuardConfigurationError.self) {
            try Self.guardian(reactions: [.runaway: .stop(.one)])
        }
    }

    @Test func when_started_latched_expect_nothing_to_move_until_a_deliberate_reset() throws {
        var g = try Self.guardian(startLatched: true)
        #expect(g.latch.isLatched && g.latch.cause == .powerOn && g.epoch == 1)
        #expect(g.check(command(Self.left, 1, at: ms(1)), now: ms(1)) == .stop(.zero, .powerOn))
        #expect(g.reset(at: ms(2)) == .released)
        #expect(g.check(command(Self.left, 1, at: ms(3)), now: ms(3)).approved != nil)
    }

    /// A 10 m circle; the rover sits 0.8 m outside (beyond the 0.5 m stop distance) facing out.
    @Test func when_the_workspace_stop_persists_expect_a_reset_into_recovery_where_only_motion_back_passes() throws {
        let workspace = Workspace(radius: 10, warnDistance: 0.5, stopDistance: 0.5, stopCategory: .one,
                                  kinematics: DiffDriveKinematics(leftChannel: "left", rightChannel: "right", wheelRadius: 0.1))
        var g = try Self.guardian(workspace: workspace)
        var out = Emitted()
        g.notePose(x: 10.8, y: 0, yaw: 0, at: ms(1)) { out.sink($0) }
        #expect(g.latch.cause == .workspace)
        for t in stride(from: 2, through: 400, by: 10) { g.tick(now: ms(Int64(t))) { out.sink($0) } }
        #expect(g.reset(at: ms(401)) == .releasedIntoRecovery)
        g.tick(now: ms(402)) { _ in }
        #expect(!g.latch.isLatched && g.inRecovery)
        // Forward (facing out) is away: refused. Backward is toward: passes, audited as recovery.
        #expect(g.check(command(Self.left, 2, at: ms(410)), now: ms(410)) == .rejected(.awayFromWorkspace))
        #expect(g.check(command(Self.left, -2, at: ms(411)), now: ms(411)).approved != nil)
        #expect(g.check(command(Self.right, -2, at: ms(412)), now: ms(412)).approved != nil)
        #expect(g.audit.drain().filter { $0.kind == .recoveryCommand }.count == 2)
        // Backing in: the recovery ends once the pose is inside the warn band again.
        g.notePose(x: 10.3, y: 0, yaw: 0, at: ms(500)) { _ in }
        #expect(g.inRecovery && !g.latch.isLatched)
        g.notePose(x: 9.8, y: 0, yaw: 0, at: ms(600)) { _ in }
        #expect(!g.inRecovery && !g.latch.isLatched)
        #expect(g.check(command(Self.left, 2, at: ms(610)), now: ms(610)).approved != nil)
    }

    @Test func when_the_pose_gets_further_out_during_recovery_expect_a_latch_again() throws {
        let workspace = Workspace(radius: 10, warnDistance: 0.5, stopDistance: 0.5, stopCategory: .zero,
                                  kinematics: DiffDriveKinematics(leftChannel: "left", rightChannel: "right", wheelRadius: 0.1))
        var g = try Self.guardian(workspace: workspace)
        g.notePose(x: 10.8, y: 0, yaw: 0, at: ms(1)) { _ in }
        #expect(g.reset(at: ms(2)) == .releasedIntoRecovery)
        g.notePose(x: 11.0, y: 0, yaw: 0, at: ms(100)) { _ in }
        #expect(g.latch.isLatched && g.latch.cause == .workspace && !g.inRecovery)
    }

    @Test func when_a_wheel_turns_faster_than_commanded_expect_a_category_0_stop_and_no_reset_while_it_turns() throws {
        var g = try Self.guardian(monitor: MotionMonitor(tolerance: 1, time: .milliseconds(100)))
        g.tick(now: ms(0)) { _ in }
        _ = g.check(command(Self.left, 2, at: ms(1)), now: ms(1))
        g.noteMeasured(Self.left, value: 2.5, at: ms(10)) { _ in }  // within tolerance
        g.noteMeasured(Self.left, value: 3.5, at: ms(20)) { _ in }
        g.noteMeasured(Self.left, value: 4.0, at: ms(100)) { _ in }
        #expect(!g.latch.isLatched)  // 80 ms: not yet the monitor's time
        g.noteMeasured(Self.left, value: 4.5, at: ms(130)) { _ in }
        #expect(g.latch.category == .zero && g.latch.cause == .runaway)
        g.noteMeasured(Self.left, value: 3.0, at: ms(200)) { _ in }
        #expect(g.reset(at: ms(210)) == .refused(StopCauses(.runaway)))
        g.noteMeasured(Self.left, value: 0.2, at: ms(300)) { _ in }
        #expect(g.reset(at: ms(310)) == .released)
    }

    @Test func when_a_wheel_moves_during_a_category_2_hold_expect_a_standstill_stop_of_category_0() throws {
        var g = try Self.guardian(monitor: MotionMonitor(tolerance: 0.5, time: .milliseconds(50)))
        g.tick(now: ms(0)) { _ in }
        g.trigger(.operatorRequest, category: .two, at: ms(1)) { _ in }
        for t in stride(from: 10, through: 200, by: 10) { g.tick(now: ms(Int64(t))) { _ in } }
        guard case .stopped(.two, _, _) = g.latch.state else {
            Issue.record("expected a completed category-2 stop, got \(g.latch.state)")
            return
        }
        g.noteMeasured(Self.right, value: 0.8, at: ms(210)) { _ in }
        g.noteMeasured(Self.right, value: 0.9, at: ms(270)) { _ in }
        #expect(g.latch.category == .zero && g.latch.cause == .standstill)
    }

    @Test func when_a_reading_exceeds_an_interlock_expect_its_channels_locked_safe_until_a_reset_after_it_clears() throws {
        var g = try Self.guardian(sensors: [RequiredSensor(name: "chamber", maxAge: .seconds(5), reaction: .warn)],
                                  interlocks: [ValueInterlock(sensor: "chamber", max: 60, channels: ["heater"])])
        let chamber = try #require(g.sensor(named: "chamber"))
        // No reading yet: the heater is withheld, not locked.
        #expect(g.check(state(Self.heater, 1, at: ms(1)), now: ms(1)) == .rejected(.interlocked))
        g.noteSensor(chamber, value: 40, at: ms(2)) { _ in }
        #expect(g.check(state(Self.heater, 1, at: ms(3)), now: ms(3)).approved != nil)
        var out = Emitted()
        g.noteSensor(chamber, value: 61, at: ms(4)) { out.sink($0) }
        #expect(out.commands.contains { $0.channel == Self.heater && $0.value == .discrete(0) && $0.deenergize })
        #expect(g.check(state(Self.heater, 1, at: ms(5)), now: ms(5)) == .rejected(.interlocked))
        // Motion channels are not named by the interlock: they still pass.
        #expect(g.check(command(Self.left, 0.5, at: ms(5)), now: ms(5)).approved != nil)
        #expect(g.reset(at: ms(6)) == .refused(StopCauses(.valueInterlock)))
        g.noteSensor(chamber, value: 55, at: ms(7)) { _ in }
        #expect(g.check(state(Self.heater, 1, at: ms(8)), now: ms(8)) == .rejected(.interlocked))  // locked until reset
        #expect(g.reset(at: ms(9)) == .released)
        #expect(g.check(state(Self.heater, 1, at: ms(10)), now: ms(10)).approved != nil)
    }

    @Test func when_the_guard_latches_expect_a_new_epoch_and_its_own_commands_to_expire() throws {
        var g = try Self.guardian()
        let before = try #require(g.check(command(Self.left, 1, at: ms(1)), now: ms(1)).approved)
        #expect(before.guardID == g.seal.id && before.epoch == 0 && g.seal.admit(before, now: ms(2)) == nil)
        var out = Emitted()
        g.trigger(.operatorRequest, category: .zero, at: ms(3)) { out.sink($0) }
        #expect(g.seal.epoch == 1 && g.seal.admit(before, now: ms(4)) == .beforeLatch)
        let own = try #require(out.commands.first)
        #expect(own.epoch == 1 && own.validUntil < .distantFuture)
        #expect(g.seal.admit(own, now: own.validUntil + .milliseconds(1)) == .expired)
        let other = try Self.guardian()
        #expect(other.seal.admit(own, now: ms(3)) == .foreignGuard)
    }

    /// Found in review: the recovery hold must not let motion through another hold.
    @Test func when_in_recovery_and_a_sensor_holds_expect_recovery_motion_refused_too() throws {
        let workspace = Workspace(radius: 10, warnDistance: 0.5, stopDistance: 0.5, stopCategory: .one,
                                  kinematics: DiffDriveKinematics(leftChannel: "left", rightChannel: "right", wheelRadius: 0.1))
        var g = try Self.guardian(sensors: [RequiredSensor(name: "range", maxAge: .milliseconds(100), reaction: .hold)], workspace: workspace)
        let range = try #require(g.sensor(named: "range"))
        g.noteSensor(range, value: 1, at: ms(0)) { _ in }
        g.notePose(x: 10.8, y: 0, yaw: 0, at: ms(1)) { _ in }
        for t in stride(from: 2, through: 90, by: 10) { g.tick(now: ms(Int64(t))) { _ in }; g.noteSensor(range, value: 1, at: ms(Int64(t))) { _ in } }
        #expect(g.reset(at: ms(91)) == .releasedIntoRecovery)
        #expect(g.check(command(Self.left, -2, at: ms(92)), now: ms(92)).approved != nil)  // toward: passes
        g.tick(now: ms(250)) { _ in }  // the range is stale now: hold
        #expect(g.isHolding)
        #expect(g.check(command(Self.left, -2, at: ms(251)), now: ms(251)) == .rejected(.holding))
    }

    /// An e-stop whose level is unknown may be down, and a press stops every channel: the hold of
    /// `estop-unknown` sends the heater to safe and refuses it too, where a motion hold (a silent
    /// sensor) leaves it be; known again, the heater is commanded as before.
    @Test func when_the_estop_level_is_unknown_expect_every_channel_held_not_motion_only() throws {
        var g = try Self.guardian(sensors: [RequiredSensor(name: "range", maxAge: .milliseconds(100), reaction: .hold)])
        let range = try #require(g.sensor(named: "range"))
        g.noteSensor(range, value: 1, at: ms(0)) { _ in }
        g.tick(now: ms(1)) { _ in }
        #expect(g.check(state(Self.heater, 1, at: ms(2)), now: ms(2)).approved != nil)
        // A motion hold first (the range goes stale): the heater keeps its state and its commands.
        g.tick(now: ms(150)) { _ in }
        #expect(g.isHolding)
        #expect(g.check(state(Self.heater, 1, at: ms(151)), now: ms(151)).approved != nil, "a motion hold leaves the heater")
        // The e-stop's level unknown on top: the heater goes to safe at once, and is refused.
        var sent: [ApprovedCommand] = []
        _ = g.audit.drain()
        g.setCause(.estopUnknown, present: true, at: ms(160)) { sent.append($0) }
        #expect(sent.contains { $0.channel == Self.heater && $0.value == .discrete(0) }, "\(sent)")
        #expect(g.audit.drain().contains { $0.kind == .hold && $0.fault == .estopUnknown }, "the heater's hold is on the record")
        #expect(g.currentValue(of: Self.heater) == .discrete(0))
        #expect(g.check(state(Self.heater, 1, at: ms(161)), now: ms(161)) == .rejected(.holding))
        #expect(g.check(command(Self.left, 0, at: ms(161)), now: ms(161)) == .rejected(.holding))
        #expect(!g.latch.isLatched, "a hold, not a latch")
        // Known up again: the heater is commanded again (motion stays held by the stale range).
        g.setCause(.estopUnknown, present: false, at: ms(170)) { _ in }
        #expect(g.audit.drain().contains { $0.kind == .holdReleased && $0.fault == .estopUnknown })
        #expect(g.check(state(Self.heater, 1, at: ms(171)), now: ms(171)).approved != nil)
        #expect(g.check(command(Self.left, 1, at: ms(171)), now: ms(171)) == .rejected(.holding))
    }

    /// Alone (nothing else holding), the same: every channel to safe, the hold recorded once.
    @Test func when_the_estop_level_is_unknown_alone_expect_the_heater_safe_and_one_hold_record() throws {
        var g = try Self.guardian()
        g.tick(now: ms(0)) { _ in }
        #expect(g.check(state(Self.heater, 1, at: ms(1)), now: ms(1)).approved != nil)
        _ = g.audit.drain()
        g.setCause(.estopUnknown, present: true, at: ms(10)) { _ in }
        #expect(g.currentValue(of: Self.heater) == .discrete(0))
        #expect(g.check(state(Self.heater, 1, at: ms(11)), now: ms(11)) == .rejected(.holding))
        let records = g.audit.drain()
        #expect(records.filter { $0.kind == .hold }.map(\.fault) == [.estopUnknown])
        g.setCause(.estopUnknown, present: false, at: ms(20)) { _ in }
        #expect(!g.isHolding)
        #expect(g.check(state(Self.heater, 1, at: ms(21)), now: ms(21)).approved != nil)
    }

    /// Found in review (session 10): a reset accepted while a hold's ramp runs — no latch, an
    /// interlock's lock released (an interlock never latches) — ended every ramp: the wheel stayed
    /// at its mid-ramp speed, every command (even a slower one) refused by the hold. The held
    /// channels ramp on to their safe value.
    @Test func when_a_reset_comes_during_a_hold_ramp_expect_the_held_channels_to_ramp_on_to_safe() throws {
        var g = try Self.guardian(sensors: [RequiredSensor(name: "range", maxAge: .milliseconds(100), reaction: .hold),
                                            RequiredSensor(name: "chamber", maxAge: .seconds(5), reaction: .warn)],
                                  interlocks: [ValueInterlock(sensor: "chamber", max: 60, channels: ["heater"])])
        let range = try #require(g.sensor(named: "range")), chamber = try #require(g.sensor(named: "chamber"))
        g.noteSensor(range, value: 1, at: ms(0)) { _ in }
        g.noteSensor(chamber, value: 40, at: ms(0)) { _ in }
        g.tick(now: ms(0)) { _ in }
        for k in 1...3 {
            let t = Int64(k * 10)
            g.noteSensor(range, value: 1, at: ms(t)) { _ in }
            g.tick(now: ms(t)) { _ in }
            #expect(g.check(command(Self.left, Double(k), at: ms(t)), now: ms(t)).approved != nil)
        }
        let driven = try #require(g.currentValue(of: Self.left).continuousValue)
        #expect(driven > 2)
        // The heater locked by the interlock, which then clears: a reset is possible, unlatched.
        g.noteSensor(chamber, value: 61, at: ms(35)) { _ in }
        g.noteSensor(chamber, value: 55, at: ms(36)) { _ in }
        #expect(!g.latch.isLatched)
        // The range goes stale: the hold ramps the wheel down; the reset comes mid-ramp.
        g.tick(now: ms(140)) { _ in }
        g.tick(now: ms(150)) { _ in }
        #expect(g.isHolding)
        let midRamp = try #require(g.currentValue(of: Self.left).continuousValue)
        #expect(midRamp > 0 && midRamp < driven, "\(midRamp)")
        #expect(g.reset(at: ms(151)) == .released)
        for t in stride(from: 160, through: 300, by: 10) { g.tick(now: ms(Int64(t))) { _ in } }
        #expect(g.isHolding)
        #expect(g.currentValue(of: Self.left) == .continuous(0), "left at \(g.currentValue(of: Self.left)) under the hold")
        #expect(g.currentValue(of: Self.right) == .continuous(0))
    }

    /// Found in review (session 10): the same unlatched reset (an interlock's lock released)
    /// disarmed every channel's command watchdog until a fresh command: a wheel driven at the
    /// reset, its policy then gone, drove on for ever; a wheel the watchdog was ramping down
    /// stopped ramping. Not at safe, a channel stays watched, and a running ramp runs on.
    @Test(arguments: [false, true])
    func when_an_unlatched_reset_comes_while_a_wheel_is_driven_expect_its_watchdog_still_armed(rampingAtReset: Bool) throws {
        var configuration = GuardConfiguration(
            channels: [
                ChannelConfiguration(name: "left", limits: .continuous(Self.wheel), watchdogTimeout: .milliseconds(100), stopRate: 10),
                ChannelConfiguration(name: "right", limits: .continuous(Self.wheel), watchdogTimeout: .milliseconds(100), stopRate: 10),
                ChannelConfiguration(name: "heater", limits: .discrete(DiscreteLimits(allowedStates: [0, 1])), isMotion: false),
            ],
            sensors: [RequiredSensor(name: "chamber", maxAge: .seconds(5), reaction: .warn)])
        configuration.interlocks = [ValueInterlock(sensor: "chamber", max: 60, channels: ["heater"])]
        var g = try SafetyGuard(configuration: configuration)
        let chamber = try #require(g.sensor(named: "chamber"))
        g.noteSensor(chamber, value: 40, at: ms(0)) { _ in }
        g.tick(now: ms(0)) { _ in }
        for k in 1...3 {
            let t = Int64(k * 10)
            g.tick(now: ms(t)) { _ in }
            #expect(g.check(command(Self.left, Double(k), at: ms(t)), now: ms(t)).approved != nil)
        }
        g.noteSensor(chamber, value: 61, at: ms(35)) { _ in }
        g.noteSensor(chamber, value: 55, at: ms(36)) { _ in }
        // The policy is gone from 30 ms: the watchdog trips at 130 ms and ramps (10 /s).
        let resetAt: Int64 = rampingAtReset ? 200 : 60
        for t in stride(from: 40, through: resetAt, by: 10) { g.tick(now: ms(Int64(t))) { _ in } }
        let before = try #require(g.currentValue(of: Self.left).continuousValue)
        #expect(before > 0, "still driven at the reset")
        #expect(g.reset(at: ms(resetAt + 1)) == .released)
        for t in stride(from: resetAt + 10, through: resetAt + 800, by: 10) { g.tick(now: ms(t)) { _ in } }
        #expect(g.currentValue(of: Self.left) == .continuous(0), "left at \(g.currentValue(of: Self.left)) long after its policy went")
    }

    /// Found in review: during a category-1 ramp the wheel is still driven and must be watched.
    @Test func when_a_wheel_speeds_up_during_a_category_1_ramp_expect_a_runaway_stop() throws {
        var g = try Self.guardian(monitor: MotionMonitor(tolerance: 1, time: .milliseconds(50)))
        g.tick(now: ms(0)) { _ in }
        let t = GuardBehaviourTests.driveUp(&g, to: 5).nanoseconds / 1_000_000
        #expect(g.currentValue(of: Self.left) == .continuous(5))
        g.trigger(.operatorRequest, category: .one, at: ms(t + 1)) { _ in }
        guard case .stopping(.one, _, _) = g.latch.state else {
            Issue.record("expected a running category-1 ramp, got \(g.latch.state)")
            return
        }
        g.noteMeasured(Self.left, value: 8, at: ms(t + 2)) { _ in }
        g.noteMeasured(Self.left, value: 9, at: ms(t + 60)) { _ in }
        #expect(g.latch.category == .zero && g.present.contains(.runaway))
    }

    @Test func when_the_guard_tick_stops_expect_commands_refused() throws {
        var configuration = GuardConfiguration(channels: [ChannelConfiguration(name: "left", limits: .continuous(Self.wheel))])
        configuration.maxTickAge = .milliseconds(30)
        var g = try SafetyGuard(configuration: configuration)
        #expect(g.check(command(Self.left, 1, at: ms(1)), now: ms(1)) == .rejected(.guardNotTicking))  // never ticked
        g.tick(now: ms(10)) { _ in }
        #expect(g.check(command(Self.left, 1, at: ms(20)), now: ms(20)).approved != nil)
        #expect(g.check(command(Self.left, 1, at: ms(41)), now: ms(41)) == .rejected(.guardNotTicking))
    }

    @Test func when_a_command_asks_for_a_long_validity_expect_the_approval_capped() throws {
        var g = try Self.guardian()
        let approved = try #require(g.check(command(Self.left, 1, at: ms(1), validFor: .seconds(3600)), now: ms(1)).approved)
        #expect(approved.validUntil == ms(1) + g.configuration.maxApprovalValidity)
    }

    /// Found in review: the e-stop's release is compared by its arrival, not by the (late) tick.
    @Test func when_the_reset_key_went_down_before_the_estops_release_arrived_expect_refused_even_if_the_tick_ran_late() throws {
        var g = try Self.guardian()
        g.observeEStop(asserted: true, presses: 1, at: ms(100)) { _ in }
        #expect(g.resetKey(down: true, at: ms(495)) == nil)  // down at 495 ms
        // The release arrived at 500 ms; the tick that sees it is released at 490 ms (ran late).
        g.observeEStop(asserted: false, presses: 1, releasedAt: ms(500), at: ms(490)) { _ in }
        #expect(g.resetKey(down: false, at: ms(600)) == .resetKeyHeldThrough)
    }

    /// Found in review: a safe-state notice from the writer must not override a guard command made
    /// after the one it replaced (a ramp step on its way to the actuator).
    @Test func when_a_safe_state_notice_is_older_than_the_guards_last_command_expect_it_ignored() throws {
        var g = try Self.guardian()
        g.tick(now: ms(0)) { _ in }
        let first = try #require(g.check(command(Self.left, 0.5, at: ms(10)), now: ms(10)).approved)
        _ = g.check(command(Self.left, 1.0, at: ms(20)), now: ms(20))
        let held = g.currentValue(of: Self.left)
        g.noteSafeStateApplied(to: Self.left, at: ms(25), replacing: first.approvedAt)
        #expect(g.currentValue(of: Self.left) == held)  // a later approval exists: ignored
        g.noteSafeStateApplied(to: Self.left, at: ms(26), replacing: ms(20))
        #expect(g.currentValue(of: Self.left) == .continuous(0))  // it replaced the latest: applied
    }

    /// A wheel driven but not turning (blocked, or its encoder frozen) is not evidence of safety.
    @Test func when_a_driven_wheel_does_not_turn_expect_a_stalled_wheel_stop() throws {
        var g = try Self.guardian(monitor: MotionMonitor(tolerance: 1, time: .milliseconds(100)))
        g.tick(now: ms(0)) { _ in }
        let t = GuardBehaviourTests.driveUp(&g, to: 5).nanoseconds / 1_000_000
        #expect(g.currentValue(of: Self.left) == .continuous(5))
        g.noteMeasured(Self.left, value: 4.5, at: ms(t + 1)) { _ in }  // within tolerance: fine
        #expect(!g.latch.isLatched)
        g.noteMeasured(Self.left, value: 0.0, at: ms(t + 10)) { _ in }
        g.noteMeasured(Self.left, value: 0.0, at: ms(t + 60)) { _ in }
        #expect(!g.latch.isLatched)  // not yet the monitor's time
        g.noteMeasured(Self.left, value: 0.0, at: ms(t + 120)) { _ in }
        #expect(g.latch.isLatched && g.latch.cause == .stalledWheel && g.latch.category == .one)
    }
}
