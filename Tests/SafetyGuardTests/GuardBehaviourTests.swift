import RTScheduler
import Testing
@testable import SafetyGuard

@Suite("SafetyGuard: freshness, watchdogs, e-stop latch, stop categories, staleness, workspace")
struct GuardBehaviourTests {
    static func rover(watchdog: Duration? = .milliseconds(200), stopRate: Double? = nil,
                      sensors: [RequiredSensor] = [], workspace: Workspace? = nil,
                      reactions: [FaultKind: Reaction] = [:]) throws -> SafetyGuard {
        try SafetyGuard(configuration: GuardConfiguration(
            channels: [
                ChannelConfiguration(name: "left", limits: .continuous(.velocity(maxVelocity: 1, maxAcceleration: 2, maxDeceleration: 4)),
                                     watchdogTimeout: watchdog, stopRate: stopRate),
                ChannelConfiguration(name: "right", limits: .continuous(.velocity(maxVelocity: 1, maxAcceleration: 2, maxDeceleration: 4)),
                                     watchdogTimeout: watchdog, stopRate: stopRate),
                ChannelConfiguration(name: "heater", limits: .discrete(DiscreteLimits(allowedStates: [0, 1])), isMotion: false),
            ],
            sensors: sensors, workspace: workspace, reactions: reactions))
    }

    /// Drives `left` up to `speed` with commands every 10 ms from `start`; returns the instant after.
    static func driveUp(_ g: inout SafetyGuard, to speed: Double, from start: Instant = ms(0)) -> Instant {
        var t = start
        for _ in 0..<100 {
            t = t + .milliseconds(10)
            _ = g.check(command(ChannelID(index: 0), speed, at: t), now: t)
            if g.currentValue(of: ChannelID(index: 0)) == .continuous(speed) { break }
        }
        return t
    }

    @Test func when_command_is_past_valid_until_expect_rejected_stale() throws {
        var g = try Self.rover()
        let c = command(ChannelID(index: 0), 0.01, at: ms(0), validFor: .milliseconds(5))
        #expect(g.check(c, now: ms(6)) == .rejected(.stale))
        #expect(g.audit.drain().last?.rejectReason == .stale)
    }

    @Test func when_value_is_nan_or_wrong_kind_or_unknown_channel_expect_rejected() throws {
        var g = try Self.rover()
        #expect(g.check(command(ChannelID(index: 0), .nan, at: ms(1)), now: ms(1)) == .rejected(.notFinite))
        #expect(g.check(command(ChannelID(index: 0), .infinity, at: ms(1)), now: ms(1)) == .rejected(.notFinite))
        #expect(g.check(state(ChannelID(index: 0), 1, at: ms(1)), now: ms(1)) == .rejected(.wrongValueKind))
        #expect(g.check(command(ChannelID(index: 2), 1, at: ms(1)), now: ms(1)) == .rejected(.wrongValueKind))
        #expect(g.check(command(ChannelID(index: 9), 1, at: ms(1)), now: ms(1)) == .rejected(.unknownChannel))
        #expect(g.audit.drain().count == 5)
    }

    /// The watchdog fires at the first tick after the timeout (timeout + at most one tick), and
    /// the last velocity never persists.
    @Test(arguments: [Duration.milliseconds(100), .milliseconds(250), .milliseconds(333)])
    func when_commands_stop_expect_watchdog_within_timeout_plus_one_tick(timeout: Duration) throws {
        var g = try Self.rover(watchdog: timeout)
        let last = Self.driveUp(&g, to: 0.5)
        var emitted = Emitted()
        var t = last
        let tick = Duration.milliseconds(10)
        var firedAt: Instant?
        while t < last + timeout + .milliseconds(300) {  // the ramp at 4 /s takes 125 ms
            t = t + tick
            let before = emitted.commands.count
            g.tick(now: t) { emitted.sink($0) }
            if firedAt == nil && emitted.commands.count > before { firedAt = t }
        }
        let fired = try #require(firedAt)
        #expect(fired > last + timeout)
        #expect(fired <= last + timeout + tick)
        #expect(emitted.commands.allSatisfy { $0.origin == .safetyGuard })
        #expect(g.currentValue(of: ChannelID(index: 0)) == .continuous(0))
        #expect(g.audit.drain().contains { $0.kind == .watchdog && $0.channel == 0 })
    }

    @Test func when_watchdog_has_a_stop_rate_expect_ramp_down_not_a_jump() throws {
        var g = try Self.rover(watchdog: .milliseconds(100), stopRate: 2)
        let last = Self.driveUp(&g, to: 0.5)
        var emitted = Emitted()
        var t = last
        for _ in 0..<60 {
            t = t + .milliseconds(10)
            g.tick(now: t) { emitted.sink($0) }
        }
        let left = emitted.commands.filter { $0.channel.index == 0 }.compactMap { $0.value.continuousValue }
        #expect(left.last == 0)
        #expect(left.count >= 20)  // 0.5 at 2 /s = 250 ms in 10 ms steps
        for (a, b) in zip([0.5] + left, left) { #expect(b <= a && a - b <= 0.02 + 1e-9) }
    }

    @Test func when_estop_latches_expect_everything_refused_until_reset_and_fresh_commands() throws {
        var g = try Self.rover(watchdog: nil)
        let left = ChannelID(index: 0), right = ChannelID(index: 1)
        let t = Self.driveUp(&g, to: 0.3)
        var emitted = Emitted()
        // A command issued before the stop but delivered after: must never resume by itself.
        let queued = command(left, 0.3, at: t, validFor: .seconds(10))
        g.trigger(.emergencyStopInput, category: .zero, at: t + .milliseconds(1)) { emitted.sink($0) }
        #expect(emitted.commands.map(\.value) == [.continuous(0), .continuous(0), .discrete(0)])
        #expect(emitted.commands.allSatisfy { $0.deenergize })
        #expect(g.check(command(left, 0.1, at: t + .milliseconds(2)), now: t + .milliseconds(2)) == .stop(.zero, .emergencyStopInput))
        let resetAt = t + .milliseconds(50)
        #expect(g.reset(at: resetAt) == .released)
        // Anything issued before the reset is refused, on every channel.
        #expect(g.check(queued, now: resetAt + .milliseconds(1)) == .rejected(.notFresh))
        #expect(g.check(command(right, 0.1, at: t), now: resetAt + .milliseconds(1)) == .rejected(.notFresh))
        // A fresh command on one channel re-arms that channel only.
        let fresh = resetAt + .milliseconds(10)
        #expect(g.check(command(left, 0.01, at: fresh), now: fresh).approved != nil)
        #expect(g.check(command(right, 0.1, at: t), now: fresh) == .rejected(.notFresh))
        #expect(g.check(command(right, 0.01, at: fresh), now: fresh).approved != nil)
        let kinds = g.audit.drain().map(\.kind)
        #expect(kinds.contains(.latched) && kinds.contains(.reset) && kinds.contains(.refusedWhileStopped))
    }

    @Test func when_reset_without_a_latch_or_during_a_ramp_expect_refused() throws {
        var g = try Self.rover(watchdog: nil)
        #expect(g.reset(at: ms(1)) == .notLatched)
        let t = Self.driveUp(&g, to: 0.5)
        g.trigger(.operatorRequest, category: .one, at: t) { _ in }
        #expect(g.reset(at: t + .milliseconds(1)) == .stillStopping)
    }

    @Test func when_category_1_stop_expect_monotonic_ramp_then_deenergize() throws {
        var g = try Self.rover(watchdog: nil)
        var t = Self.driveUp(&g, to: 0.8)
        t = Self.driveUp(&g, to: 0.8, from: t)
        _ = g.check(command(ChannelID(index: 1), -0.02, at: t), now: t)
        var emitted = Emitted()
        g.trigger(.deadlineFault, category: .one, at: t) { emitted.sink($0) }
        for _ in 0..<100 {
            t = t + .milliseconds(10)
            g.tick(now: t) { emitted.sink($0) }
        }
        for channel in 0..<2 {
            let values = emitted.commands.filter { $0.channel.index == channel && !$0.deenergize }.compactMap { $0.value.continuousValue }
            #expect(values.last == 0)
            let start = channel == 0 ? 0.8 : -0.02
            // Monotonic toward 0 at the deceleration limit (4 /s → 0.04 per 10 ms tick).
            for (a, b) in zip([start] + values, values) {
                #expect(abs(b) <= abs(a) && abs(a - b) <= 0.04 + 1e-9, "channel \(channel): \(a) → \(b)")
            }
        }
        let deenergized = emitted.commands.filter(\.deenergize)
        #expect(deenergized.count == 3)  // one per channel, after the ramp
        #expect(g.latch.state == .stopped(.one, .deadlineFault, since: deenergized[0].approvedAt))
    }

    @Test func when_category_2_stop_expect_ramp_and_hold_without_deenergize() throws {
        var g = try Self.rover(watchdog: nil)
        var t = Self.driveUp(&g, to: 0.5)
        var emitted = Emitted()
        g.trigger(.operatorRequest, category: .two, at: t) { emitted.sink($0) }
        for _ in 0..<50 {
            t = t + .milliseconds(10)
            g.tick(now: t) { emitted.sink($0) }
        }
        #expect(emitted.commands.last { $0.channel.index == 0 }?.value == .continuous(0))
        #expect(!emitted.commands.contains { $0.deenergize })
        if case .stopped(.two, .operatorRequest, _) = g.latch.state {} else { Issue.record("latch \(g.latch.state)") }
    }

    @Test func when_a_more_severe_stop_arrives_during_a_ramp_expect_escalation_to_category_0() throws {
        var g = try Self.rover(watchdog: nil)
        let t = Self.driveUp(&g, to: 0.5)
        var emitted = Emitted()
        g.trigger(.operatorRequest, category: .two, at: t) { emitted.sink($0) }
        g.trigger(.emergencyStopInput, category: .zero, at: t + .milliseconds(5)) { emitted.sink($0) }
        #expect(g.latch.category == .zero)
        #expect(g.currentValue(of: ChannelID(index: 0)) == .continuous(0))
    }

    @Test func when_a_required_sensor_goes_stale_expect_its_configured_reaction() throws {
        var g = try Self.rover(watchdog: nil, sensors: [RequiredSensor(name: "imu", maxAge: .milliseconds(50), reaction: .stop(.zero)),
                                                        RequiredSensor(name: "range", maxAge: .milliseconds(100), reaction: .hold)])
        let imu = try #require(g.sensor(named: "imu")), range = try #require(g.sensor(named: "range"))
        g.noteSensor(imu, at: ms(0))
        g.noteSensor(range, at: ms(0))
        g.tick(now: ms(40)) { _ in }
        #expect(!g.latch.isLatched)
        // range goes stale first (imu kept fresh): hold, not latched.
        g.noteSensor(imu, at: ms(90))
        g.tick(now: ms(110)) { _ in }
        #expect(g.isHolding && !g.latch.isLatched)
        #expect(g.check(command(ChannelID(index: 0), 0.01, at: ms(110)), now: ms(110)) == .rejected(.holding))
        #expect(g.check(state(ChannelID(index: 2), 1, at: ms(110)), now: ms(110)).approved != nil)  // not a motion channel
        g.noteSensor(range, at: ms(115))
        g.tick(now: ms(120)) { _ in }
        #expect(!g.isHolding)
        g.tick(now: ms(200)) { _ in }  // imu last seen at 90 ms: stale → category 0
        #expect(g.latch.category == .zero && g.latch.cause == .staleSensor)
    }

    @Test func when_pose_leaves_the_workspace_expect_warn_then_hold_then_stop() throws {
        let workspace = Workspace(radius: 5, warnDistance: 0.5, stopDistance: 0.5, stopCategory: .zero)
        var g = try Self.rover(watchdog: nil, workspace: workspace)
        var emitted = Emitted()
        g.notePose(x: 1, y: 1, at: ms(1)) { emitted.sink($0) }
        #expect(g.workspaceLevel == .inside)
        g.notePose(x: 4.7, y: 0, at: ms(2)) { emitted.sink($0) }
        #expect(g.workspaceLevel == .warn && !g.isHolding)
        g.notePose(x: 5.2, y: 0, at: ms(3)) { emitted.sink($0) }
        #expect(g.workspaceLevel == .hold && g.isHolding && !g.latch.isLatched)
        g.notePose(x: 4.0, y: 0, at: ms(4)) { emitted.sink($0) }
        #expect(!g.isHolding)
        g.notePose(x: 5.8, y: 0, at: ms(5)) { emitted.sink($0) }
        #expect(g.latch.category == .zero && g.latch.cause == .workspace)
        let kinds = g.audit.drain().map(\.kind)
        #expect(kinds.contains(.warn) && kinds.contains(.hold) && kinds.contains(.holdReleased) && kinds.contains(.latched))
    }

    @Test func when_polygon_workspace_expect_signed_distance() {
        let square = Workspace(polygon: [.init(x: 0, y: 0), .init(x: 4, y: 0), .init(x: 4, y: 4), .init(x: 0, y: 4)])
        #expect(abs(square.signedDistance(x: 2, y: 2) - 2) < 1e-12)
        #expect(abs(square.signedDistance(x: 5, y: 2) + 1) < 1e-12)
        #expect(square.level(x: 3.8, y: 2) == .warn)
        #expect(square.level(x: 4.3, y: 2) == .hold)
        #expect(square.level(x: 6, y: 2) == .stop)
    }

    @Test func when_scheduler_raises_a_deadline_fault_expect_configured_stop() throws {
        var g = try Self.rover(watchdog: nil, reactions: [.deadlineFault: .stop(.zero)])
        let fault = DeadlineFault(task: TaskID(index: 0), taskName: "control", consecutiveMisses: 3, limit: 3, at: ms(7))
        var emitted = Emitted()
        g.handle(fault) { emitted.sink($0) }
        #expect(g.latch.category == .zero && g.latch.cause == .deadlineFault)
        #expect(emitted.commands.count == 3)
    }

    @Test func when_configuration_is_malformed_expect_a_clear_error() {
        #expect(throws: GuardConfigurationError.self) {
            try SafetyGuard(configuration: GuardConfiguration(channels: [
                ChannelConfiguration(name: "x", limits: .continuous(.position(minPosition: 1, maxPosition: -1)))]))
        }
        #expect(throws: GuardConfigurationError.self) {
            try SafetyGuard(configuration: GuardConfiguration(channels: [
                ChannelConfiguration(name: "x", limits: .continuous(.velocity(maxVelocity: 1, maxAcceleration: -2)))]))
        }
        #expect(throws: GuardConfigurationError.self) {
            try SafetyGuard(configuration: GuardConfiguration(channels: [
                ChannelConfiguration(name: "x", limits: .continuous(.duty(min: 0.2, max: 1)))]))  // safe 0 outside range
        }
        #expect(throws: GuardConfigurationError.self) {
            try SafetyGuard(configuration: GuardConfiguration(channels: [
                ChannelConfiguration(name: "x", limits: .discrete(DiscreteLimits())),
                ChannelConfiguration(name: "x", limits: .discrete(DiscreteLimits()))]))
        }
    }
}

@Suite("SafetyGuard: an actuator that went to its safe state on its own")
struct SafeStateNoticeTests {
    /// A category-1 stop is ramping a wheel down when its back end is reconnected and reactivated in
    /// its safe state (de-energised). The guard must not re-energise it with the rest of its ramp,
    /// and after a reset the limiter must start from rest, not from the speed before the stop.
    @Test func when_a_back_end_reports_its_safe_state_mid_ramp_expect_no_more_ramp_steps_and_a_limiter_from_rest() throws {
        var g = try SafetyGuard(configuration: GuardConfiguration(channels: [
            ChannelConfiguration(name: "wheel", limits: .continuous(.velocity(maxVelocity: 10, maxAcceleration: 20))),
        ]))
        let wheel = ChannelID(index: 0)
        var t: Int64 = 0
        while t < 1_000 {  // up to 10 at 20/s²
            t += 10
            _ = g.check(command(wheel, 10, at: ms(t)), now: ms(t))
        }
        #expect(g.currentValue(of: wheel) == .continuous(10))
        var emitted = Emitted()
        g.trigger(.connectionLost, category: .one, at: ms(t), emit: { emitted.sink($0) })
        g.tick(now: ms(t + 50), emit: { emitted.sink($0) })
        #expect(emitted.commands.last?.value == .continuous(9))  // ramping down at 20/s²

        g.noteSafeStateApplied(to: wheel, at: ms(t + 60))
        emitted = Emitted()
        for step in Int64(7)...30 { g.tick(now: ms(t + step * 10), emit: { emitted.sink($0) }) }
        // Only the category-1 de-energise at value 0: no energised ramp step reaches the wheel.
        #expect(emitted.commands.allSatisfy { $0.value == .continuous(0) && $0.deenergize })
        #expect(emitted.commands.count == 1)
        if case .stopped = g.latch.state {} else { Issue.record("the stop should have finished: \(g.latch.state)") }

        #expect(g.reset(at: ms(t + 400)) == .released)
        let fresh = g.check(command(wheel, 10, at: ms(t + 410)), now: ms(t + 410))
        // From rest, 10 ms at 20/s² allows 0.2 (not 10 as from the pre-stop speed).
        #expect(abs((fresh.value ?? 99) - 0.2) < 1e-9)
        #expect(g.audit.drain().contains { $0.kind == .deenergized && $0.channel == 0 })
    }
}
