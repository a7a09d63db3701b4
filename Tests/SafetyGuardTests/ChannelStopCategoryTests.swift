import RTScheduler
import Testing
@testable import SafetyGuard

/// A channel's own stop category is the strictest way it may be stopped: under a gentler latch it
/// is stopped its own way (a heater with category 0 loses power at once under a category-1 stop),
/// and it never makes a stricter latch gentler.
@Suite("SafetyGuard: per-channel stop category")
struct ChannelStopCategoryTests {
    static func guardian(wheel: StopCategory?, heater: StopCategory?) throws -> SafetyGuard {
        try SafetyGuard(configuration: GuardConfiguration(channels: [
            ChannelConfiguration(name: "wheel", limits: .continuous(.velocity(maxVelocity: 1, maxAcceleration: 2, maxDeceleration: 2)),
                                 stopCategory: wheel),
            ChannelConfiguration(name: "heater", limits: .discrete(DiscreteLimits(allowedStates: [0, 1])), isMotion: false,
                                 stopCategory: heater),
        ]))
    }

    @Test func when_a_category_1_stop_latches_expect_a_category_0_channel_de_energised_at_once_and_the_other_ramped() throws {
        var g = try Self.guardian(wheel: nil, heater: .zero)
        let t = GuardBehaviourTests.driveUp(&g, to: 1)
        _ = g.check(command(ChannelID(index: 1), 1, at: t), now: t)
        var emitted: [ApprovedCommand] = []
        g.trigger(.operatorRequest, category: .one, at: t + .milliseconds(1)) { emitted.append($0) }
        let heater = emitted.filter { $0.channel.index == 1 }
        #expect(heater.count == 1 && heater[0].value == .discrete(0) && heater[0].deenergize)
        // The wheel ramps down (category 1, from the next tick): not de-energised, not at 0 yet.
        #expect(!emitted.contains { $0.channel.index == 0 && $0.deenergize })
        #expect(g.currentValue(of: ChannelID(index: 0)) != .continuous(0))
        // Ticks finish the ramp, then de-energise the wheel.
        var later: [ApprovedCommand] = []
        var now = t + .milliseconds(1)
        for _ in 0..<100 {
            now = now + .milliseconds(10)
            g.tick(now: now) { later.append($0) }
        }
        #expect(later.contains { $0.channel.index == 0 && $0.deenergize && $0.value == .continuous(0) })
    }

    @Test func when_a_category_2_stop_latches_expect_a_category_1_channel_de_energised_after_its_ramp_and_the_rest_kept_powered() throws {
        var g = try Self.guardian(wheel: .one, heater: nil)
        let t = GuardBehaviourTests.driveUp(&g, to: 1)
        var out: [ApprovedCommand] = []
        g.trigger(.operatorRequest, category: .two, at: t + .milliseconds(1)) { out.append($0) }
        var now = t + .milliseconds(1)
        for _ in 0..<100 {
            now = now + .milliseconds(10)
            g.tick(now: now) { out.append($0) }
        }
        #expect(out.contains { $0.channel.index == 0 && $0.deenergize })
        #expect(!out.contains { $0.channel.index == 1 && $0.deenergize })
    }

    @Test func when_a_channel_says_category_2_under_a_category_0_latch_expect_it_de_energised_at_once() throws {
        var g = try Self.guardian(wheel: .two, heater: .two)
        let t = GuardBehaviourTests.driveUp(&g, to: 1)
        var out: [ApprovedCommand] = []
        g.trigger(.operatorRequest, category: .zero, at: t + .milliseconds(1)) { out.append($0) }
        #expect(out.filter(\.deenergize).count == 2)
        #expect(g.currentValue(of: ChannelID(index: 0)) == .continuous(0))
    }
}
