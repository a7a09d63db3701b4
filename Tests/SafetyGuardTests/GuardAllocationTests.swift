import CAllocCounter
import RTScheduler
import Testing
@testable import SafetyGuard

@Suite("No allocation on the guard's check path")
struct GuardAllocationTests {
    @Test func when_checking_and_ticking_in_steady_state_expect_zero_allocations() throws {
        try #require(alloc_counter_is_active() != 0, "the malloc interposer is not active in this binary")
        var g = try SafetyGuard(configuration: GuardConfiguration(
            channels: [
                ChannelConfiguration(name: "left", limits: .continuous(.velocity(maxVelocity: 1, maxAcceleration: 2, maxJerk: 50)),
                                     watchdogTimeout: .milliseconds(100)),
                ChannelConfiguration(name: "arm", limits: .continuous(.position(minPosition: -1, maxPosition: 1, maxVelocity: 1))),
                ChannelConfiguration(name: "heater", limits: .discrete(DiscreteLimits(minOnTime: .seconds(1), maxSwitchesPerMinute: 10)),
                                     isMotion: false),
            ],
            sensors: [RequiredSensor(name: "imu", maxAge: .milliseconds(50))],
            workspace: Workspace(radius: 10)))
        let imu = try #require(g.sensor(named: "imu"))
        var sink = 0
        func cycle(_ n: Int) {
            let t = Instant(nanoseconds: Int64(n) * 10_000_000)
            g.noteSensor(imu, at: t)
            let target = Double(n % 200) / 100 - 1  // a sawtooth that keeps hitting the limits
            if g.check(command(ChannelID(index: 0), target * 2, at: t), now: t).approved != nil { sink += 1 }
            if g.check(command(ChannelID(index: 1), target, at: t), now: t).approved != nil { sink += 1 }
            if g.check(state(ChannelID(index: 2), n % 3 == 0 ? 1 : 0, at: t), now: t).approved != nil { sink += 1 }
            _ = g.check(command(ChannelID(index: 0), .nan, at: t), now: t)  // rejections are audited too
            g.notePose(x: 0.5, y: 0.5, at: t) { _ in sink += 1 }
            g.tick(now: t) { _ in sink += 1 }
        }
        for n in 0..<1_000 { cycle(n) }
        let before = alloc_counter_thread_total()
        for n in 1_000..<11_000 { cycle(n) }
        let allocations = alloc_counter_thread_total() - before
        #expect(allocations == 0, "\(allocations) allocations in 40 000 checks")
        #expect(sink > 10_000)
        #expect(g.audit.appended > 10_000)  // clamps and rejections were recorded
    }
}
