import CAllocCounter
import CRealtime
import Foundation
import RTScheduler
import SafetyGuard

/// `robotd bench guard`: the cost of one `SafetyGuard.check` on a mix of channels and commands
/// (about half of them clamped or rejected), with the clock-read overhead measured in the same
/// run and subtracted.
public struct GuardBenchmark: Sendable {
    public struct Result: Sendable, Codable {
        public var checks: Int
        public var checkMedianNs: Double
        public var checkP99Ns: Double
        public var checkMeanNs: Double
        public var clockOverheadNs: Double
        public var allocsPerCheck: Double
        public var nonPassFraction: Double

        enum CodingKeys: String, CodingKey {
            case checks
            case checkMedianNs = "check_median_ns"
            case checkP99Ns = "check_p99_ns"
            case checkMeanNs = "check_mean_ns"
            case clockOverheadNs = "clock_overhead_ns"
            case allocsPerCheck = "allocs_per_check"
            case nonPassFraction = "non_pass_fraction"
        }
    }

    public var checks: Int
    public init(checks: Int = 1_000_000) { self.checks = checks }

    public func run() throws -> Result {
        var guardian = try SafetyGuard(configuration: GuardConfiguration(
            channels: [
                ChannelConfiguration(name: "left", limits: .continuous(.velocity(maxVelocity: 1.5, maxAcceleration: 3,
                                                                                  maxDeceleration: 6, maxJerk: 60)),
                                     originLimits: [.planner: .continuous(.velocity(maxVelocity: 0.5))],
                                     watchdogTimeout: .milliseconds(200)),
                ChannelConfiguration(name: "right", limits: .continuous(.velocity(maxVelocity: 1.5, maxAcceleration: 3)),
                                     watchdogTimeout: .milliseconds(200)),
                ChannelConfiguration(name: "arm", limits: .continuous(.position(minPosition: -1.2, maxPosition: 1.2,
                                                                                 maxVelocity: 1, maxAcceleration: 4, maxJerk: 80))),
                ChannelConfiguration(name: "heater", limits: .discrete(DiscreteLimits(minOnTime: .seconds(5),
                                                                                      minOffTime: .seconds(5),
                                                                                      maxSwitchesPerMinute: 6)),
                                     isMotion: false),
            ],
            sensors: [RequiredSensor(name: "imu", maxAge: .milliseconds(50))],
            workspace: Workspace(radius: 20)))
        let origins: [CommandOrigin] = [.policy, .teleop, .planner, .policy]
        var samples = [Int64](repeating: 0, count: checks)
        var nonPass = 0

        // Clock overhead: the same timing bracket around nothing.
        var overhead = [Int64](repeating: 0, count: 100_000)
        for i in overhead.indices {
            let a = rt_monotonic_ns()
            let b = rt_monotonic_ns()
            overhead[i] = b - a
        }
        overhead.sort()
        let clockOverhead = overhead[overhead.count / 2]

        func makeCommand(_ n: Int) -> Command {
            let t = Instant(nanoseconds: Int64(n) * 2_000_000)  // a 500 Hz command stream
            let channel = n % 4
            let phase = Double(n % 500) / 250 - 1
            let value: CommandValue = channel == 3 ? .discrete((n / 700) % 2) : .continuous(phase * (channel == 2 ? 1.5 : 2))
            return Command(channel: ChannelID(index: channel), value: value, origin: origins[n % origins.count],
                           issuedAt: t, validUntil: t + .milliseconds(20))
        }
        for n in 0..<10_000 { _ = guardian.check(makeCommand(n), now: makeCommand(n).issuedAt) }  // warm up
        let allocsBefore = alloc_counter_thread_total()
        let start = rt_monotonic_ns()
        for n in 0..<checks {
            let command = makeCommand(n + 10_000)
            let now = command.issuedAt
            let a = rt_monotonic_ns()
            let verdict = guardian.check(command, now: now)
            let b = rt_monotonic_ns()
            samples[n] = b - a
            if case .pass = verdict {} else { nonPass += 1 }
        }
        let elapsed = rt_monotonic_ns() - start
        let allocs = alloc_counter_thread_total() - allocsBefore
        samples.sort()
        let median = Double(max(0, samples[checks / 2] - clockOverhead))
        let p99 = Double(max(0, samples[Int(Double(checks) * 0.99)] - clockOverhead))
        _ = guardian.audit.drain()
        return Result(checks: checks, checkMedianNs: median, checkP99Ns: p99,
                      checkMeanNs: Double(elapsed) / Double(checks) - Double(clockOverhead),
                      clockOverheadNs: Double(clockOverhead),
                      allocsPerCheck: alloc_counter_is_active() != 0 ? Double(allocs) / Double(checks) : .nan,
                      nonPassFraction: Double(nonPass) / Double(checks))
    }
}
