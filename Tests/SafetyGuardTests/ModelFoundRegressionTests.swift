import RTScheduler
import Testing
@testable import SafetyGuard

/// Minimal reproductions of what `ModelBasedGuardTests` found, one test each.
@Suite("SafetyGuard: bugs found by the model-based test")
struct ModelFoundRegressionTests {
    static let left = ChannelID(index: 0), heater = ChannelID(index: 1)

    static func guardian(sensors: [RequiredSensor] = []) throws -> SafetyGuard {
        let wheel = ContinuousLimits.velocity(maxVelocity: 2, maxAcceleration: 4, maxDeceleration: 8)
        return try SafetyGuard(configuration: GuardConfiguration(
            channels: [
                ChannelConfiguration(name: "left", limits: .continuous(wheel),
                                     originLimits: [.planner: .continuous(.velocity(maxVelocity: 0.5, maxAcceleration: 2))]),
                ChannelConfiguration(name: "heater", limits: .discrete(DiscreteLimits(allowedStates: [0, 1])), isMotion: false),
            ],
            sensors: sensors))
    }

    /// Found with seed 0x5EED0001 (and every other CI seed): after a reset, a fresh command that was then rejected (NaN)
    /// cleared the channel's "needs a fresh command", and a queued command issued before the reset
    /// passed next.
    @Test func when_a_fresh_command_after_a_reset_is_rejected_expect_queued_pre_reset_commands_still_refused() throws {
        var g = try Self.guardian()
        g.trigger(.operatorRequest, category: .zero, at: ms(10)) { _ in }
        #expect(g.reset(at: ms(20)) == .released)
        let queued = command(Self.left, 0.1, at: ms(15), validFor: .milliseconds(500))  // issued before the reset
        #expect(g.check(command(Self.left, .nan, at: ms(25)), now: ms(25)) == .rejected(.notFinite))
        #expect(g.check(state(Self.left, 1, at: ms(26)), now: ms(26)) == .rejected(.wrongValueKind))
        #expect(g.check(queued, now: ms(30)) == .rejected(.notFresh))
        // An approved fresh command is what lifts the requirement.
        #expect(g.check(command(Self.left, 0.05, at: ms(35)), now: ms(35)).approved != nil)
        #expect(g.check(queued, now: ms(40)).approved != nil)
    }

    /// Found with seed 0x5EED0001: a reset between two ticks released although the required
    /// sensor had gone stale since the last tick (the level was only re-evaluated by `tick`).
    @Test func when_a_sensor_goes_stale_between_ticks_expect_a_reset_then_refused() throws {
        var g = try Self.guardian(sensors: [RequiredSensor(name: "range", maxAge: .milliseconds(100))])
        let range = try #require(g.sensor(named: "range"))
        g.noteSensor(range, value: 1, at: ms(0)) { _ in }
        g.tick(now: ms(0)) { _ in }
        g.trigger(.operatorRequest, category: .zero, at: ms(10)) { _ in }
        g.tick(now: ms(90)) { _ in }  // fresh at this tick
        #expect(g.reset(at: ms(105)) == .refused(StopCauses(.staleSensor)))  // 105 ms without a sample
        #expect(g.latch.isLatched)
        let refused = try #require(g.audit.drain().last { $0.kind == .resetRefused })
        #expect(refused.causes == StopCauses(.staleSensor))
        g.noteSensor(range, value: 1, at: ms(106)) { _ in }
        #expect(g.reset(at: ms(107)) == .released)
    }

    /// Found with seed 0x5EED0001: with a per-origin envelope narrower than where the channel is,
    /// range and rate were disjoint and the limiter let the rate yield — a planner command after a
    /// policy drove the wheel to 1 rad/s was approved at the planner's 0.5 in one step. Now the
    /// range yields for that step and the value moves back toward it at the rate limit.
    @Test func when_a_planner_command_follows_a_faster_policy_expect_the_channels_rate_limit_held() throws {
        var g = try Self.guardian()
        var t = ms(0)
        for _ in 0..<60 where g.currentValue(of: Self.left) != .continuous(1) {
            t = t + .milliseconds(10)
            _ = g.check(command(Self.left, 1, at: t), now: t)
        }
        #expect(g.currentValue(of: Self.left) == .continuous(1))
        t = t + .milliseconds(10)
        let value = try #require(g.check(command(Self.left, 0.5, at: t, origin: .planner), now: t).value)
        #expect(value < 1 && value >= 1 - 8 * 0.01 - 1e-9)  // toward the range, within the deceleration limit
        // The same instant again (zero elapsed time): no change at all, and the limiter's state agrees.
        let again = try #require(g.check(command(Self.left, 0.5, at: t, origin: .planner), now: t).value)
        #expect(again == value && g.currentValue(of: Self.left) == .continuous(value))
    }
}
