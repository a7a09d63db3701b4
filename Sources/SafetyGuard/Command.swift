import RTScheduler

/// A channel's index in the guard's configuration (assigned in configuration order).
public struct ChannelID: BitwiseCopyable, Hashable, Sendable, CustomStringConvertible {
    public let index: Int
    public init(index: Int) { self.index = index }
    public var description: String { "channel#\(index)" }
}

/// What a command asks for: a continuous value (position, velocity, effort, duty) in SI units, or
/// a discrete state (0 = off; other indices name the channel's states).
public enum CommandValue: Sendable, Equatable {
    case continuous(Double)
    case discrete(Int)

    public var continuousValue: Double? { if case .continuous(let v) = self { v } else { nil } }
    public var discreteValue: Int? { if case .discrete(let s) = self { s } else { nil } }
}

/// Who proposed a command. Limits may be tighter per origin (a planner inside a smaller envelope
/// than a local policy).
public enum CommandOrigin: Int, BitwiseCopyable, Sendable, Codable, NamedCase {
    case policy = 0
    case teleop = 1
    case planner = 2
    /// The guard itself: safe values, stop ramps. Never limited by origin envelopes.
    case safetyGuard = 3

    public var description: String {
        switch self {
        case .policy: "policy"
        case .teleop: "teleop"
        case .planner: "planner"
        case .safetyGuard: "guard"
        }
    }
}

/// Enums whose configuration name is their description (`origin: planner`, `fault: stale-sensor`).
public protocol NamedCase: CaseIterable, CustomStringConvertible {}

extension NamedCase {
    /// The case whose name is `name`, or nil.
    public init?(name: String) {
        guard let found = Self.allCases.first(where: { $0.description == name }) else { return nil }
        self = found
    }
}

/// A proposed actuator command. Nothing reaches an actuator in this form: only the guard's
/// `ApprovedCommand` does.
public struct Command: Sendable, Equatable {
    public var channel: ChannelID
    public var value: CommandValue
    public var origin: CommandOrigin
    /// Which policy or input (a caller-defined tag, kept in audit records).
    public var sourceTag: UInt32
    public var issuedAt: Instant
    /// Past this instant the command is stale and rejected.
    public var validUntil: Instant

    public init(channel: ChannelID, value: CommandValue, origin: CommandOrigin, sourceTag: UInt32 = 0,
                issuedAt: Instant, validUntil: Instant) {
        self.channel = channel
        self.value = value
        self.origin = origin
        self.sourceTag = sourceTag
        self.issuedAt = issuedAt
        self.validUntil = validUntil
    }
}
