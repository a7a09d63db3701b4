import RTScheduler
@testable import SafetyGuard

/// SplitMix64: a seeded generator so every property run is reproducible.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func ms(_ value: Int64) -> Instant { Instant(nanoseconds: value * 1_000_000) }

func command(_ channel: ChannelID, _ value: Double, at instant: Instant, origin: CommandOrigin = .policy,
             validFor: Duration = .milliseconds(100)) -> Command {
    Command(channel: channel, value: .continuous(value), origin: origin, issuedAt: instant, validUntil: instant + validFor)
}

func state(_ channel: ChannelID, _ value: Int, at instant: Instant, origin: CommandOrigin = .policy) -> Command {
    Command(channel: channel, value: .discrete(value), origin: origin, issuedAt: instant, validUntil: instant + .seconds(1))
}

/// Collects what the guard emits by itself.
struct Emitted {
    var commands: [ApprovedCommand] = []
    mutating func sink(_ c: ApprovedCommand) { commands.append(c) }
}

extension Verdict {
    var value: Double? { approved?.value.continuousValue }
    var isPass: Bool { if case .pass = self { true } else { false } }
    var reasons: ClampReasons { if case .clamped(_, let r) = self { r } else { [] } }
}
