import RTScheduler
import Testing
@testable import SafetyGuard

@Suite("Discrete channels: allowed states, minimum on/off time, switch rate")
struct DiscreteLimitTests {
    @Test func when_random_toggling_expect_min_on_off_and_switch_rate_always_hold() throws {
        // The checks below run only where the random walk produced switches: count them, so a
        // guard that never approves a change cannot pass vacuously.
        var holdsChecked = 0
        var rateWindowsChecked = 0
        for seed in 0..<500 as Range<UInt64> {
            var rng = SeededGenerator(seed: seed)
            let minOn = Int64.random(in: 1...20, using: &rng) * 100_000_000
            let minOff = Int64.random(in: 1...20, using: &rng) * 100_000_000
            let perMinute = Int.random(in: 2...30, using: &rng)
            var g = try SafetyGuard(configuration: GuardConfiguration(channels: [
                ChannelConfiguration(name: "heater", limits: .discrete(DiscreteLimits(
                    allowedStates: [0, 1], minOnTime: .nanoseconds(minOn), minOffTime: .nanoseconds(minOff),
                    maxSwitchesPerMinute: perMinute)), isMotion: false)]))
            var t = ms(0)
            var current = 0
            var changes: [(at: Int64, to: Int)] = [(0, 0)]
            for _ in 0..<400 {
                t = t.advanced(byNanoseconds: Int64.random(in: 10_000_000...2_000_000_000, using: &rng))
                let want = Int.random(in: 0...1, using: &rng)
                if let approved = g.check(state(ChannelID(index: 0), want, at: t), now: t).approved,
                   case .discrete(let s) = approved.value, s != current {
                    current = s
                    changes.append((t.nanoseconds, s))
                }
            }
            for (a, b) in zip(changes.dropFirst(), changes.dropFirst(2)) {
                let held = b.at - a.at
                holdsChecked += 1
                if a.to == 1 { #expect(held >= minOn, "seed \(seed): on for \(held) < \(minOn)") }
                else { #expect(held >= minOff, "seed \(seed): off for \(held) < \(minOff)") }
            }
            let switches = changes.dropFirst().map(\.at)
            if switches.count > perMinute {
                for i in perMinute..<switches.count {
                    rateWindowsChecked += 1
                    #expect(switches[i] - switches[i - perMinute] >= 60_000_000_000, "seed \(seed): more than \(perMinute) switches in a minute")
                }
            }
        }
        #expect(holdsChecked > 10_000 && rateWindowsChecked > 10_000, "\(holdsChecked) holds, \(rateWindowsChecked) rate windows")
    }

    @Test func when_state_is_not_allowed_expect_rejected() throws {
        var g = try SafetyGuard(configuration: GuardConfiguration(channels: [
            ChannelConfiguration(name: "mode", limits: .discrete(DiscreteLimits(allowedStates: [0, 1, 2])),
                                 originLimits: [.planner: .discrete(DiscreteLimits(allowedStates: [0, 1]))], isMotion: false)]))
        let mode = ChannelID(index: 0)
        #expect(g.check(state(mode, 3, at: ms(1)), now: ms(1)) == .rejected(.stateNotAllowed))
        #expect(g.check(state(mode, 2, at: ms(1), origin: .planner), now: ms(1)) == .rejected(.stateNotAllowed))
        #expect(g.check(state(mode, 2, at: ms(1)), now: ms(1)).approved?.value == .discrete(2))
    }

    @Test func when_heater_turned_off_by_a_stop_expect_min_on_time_does_not_block_safety() throws {
        var g = try SafetyGuard(configuration: GuardConfiguration(channels: [
            ChannelConfiguration(name: "heater", limits: .discrete(DiscreteLimits(minOnTime: .seconds(60))), isMotion: false)]))
        let heater = ChannelID(index: 0)
        #expect(g.check(state(heater, 1, at: ms(1)), now: ms(1)).approved != nil)
        #expect(g.check(state(heater, 0, at: ms(2)), now: ms(2)) == .rejected(.minOnTime))
        var emitted = Emitted()
        g.trigger(.emergencyStopInput, category: .zero, at: ms(3)) { emitted.sink($0) }
        #expect(emitted.commands.map(\.value) == [.discrete(0)])
    }

    @Test func when_an_origin_envelope_sets_discrete_times_and_switch_rate_expect_them_enforced_for_that_origin_only() throws {
        // The channel itself allows 6 switches a minute and no minimum times; the planner's envelope
        // allows 2 switches a minute and a 10 s minimum on time.
        var g = try SafetyGuard(configuration: GuardConfiguration(channels: [
            ChannelConfiguration(name: "relay", limits: .discrete(DiscreteLimits(maxSwitchesPerMinute: 6)),
                                 originLimits: [.planner: .discrete(DiscreteLimits(minOnTime: .seconds(10), maxSwitchesPerMinute: 2))],
                                 isMotion: false)]))
        let relay = ChannelID(index: 0)
        #expect(g.check(state(relay, 1, at: ms(1_000), origin: .planner), now: ms(1_000)).approved != nil)
        // On for 2 s: the planner may not switch it off yet, a policy may.
        #expect(g.check(state(relay, 0, at: ms(3_000), origin: .planner), now: ms(3_000)) == .rejected(.minOnTime))
        #expect(g.check(state(relay, 0, at: ms(3_000)), now: ms(3_000)).approved != nil)
        // Two switches in this minute: the planner's third is refused, a policy's is not.
        #expect(g.check(state(relay, 1, at: ms(20_000), origin: .planner), now: ms(20_000)) == .rejected(.switchRate))
        #expect(g.check(state(relay, 1, at: ms(20_000)), now: ms(20_000)).approved != nil)
        #expect(g.check(state(relay, 0, at: ms(21_000)), now: ms(21_000)).approved != nil)
        #expect(g.check(state(relay, 1, at: ms(22_000)), now: ms(22_000)).approved != nil)
        #expect(g.check(state(relay, 0, at: ms(23_000)), now: ms(23_000)).approved != nil)
        // Six switches within the minute: the policy's limit holds too (the ring is sized for it).
        #expect(g.check(state(relay, 1, at: ms(24_000)), now: ms(24_000)) == .rejected(.switchRate))
        // The planner's window looks at its own last two switches (at 22 s and 23 s): a minute later it may.
        #expect(g.check(state(relay, 1, at: ms(81_500), origin: .planner), now: ms(81_500)) == .rejected(.switchRate))
        #expect(g.check(state(relay, 1, at: ms(82_500), origin: .planner), now: ms(82_500)).approved != nil)
    }
}
