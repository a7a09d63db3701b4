/// IEC 60204-1 stop categories.
public enum StopCategory: Int, Sendable, Codable, Comparable, CustomStringConvertible {
    /// Safe value now (uncontrolled stop: power removed at once).
    case zero = 0
    /// Controlled ramp to the safe value, then de-energise.
    case one = 1
    /// Controlled ramp to the safe value, then hold (power kept).
    case two = 2

    public static func < (a: StopCategory, b: StopCategory) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "category \(rawValue)" }
}

/// Why an approved command differs from the request. A bit set, so recording it never allocates.
public struct ClampReasons: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let range = ClampReasons(rawValue: 1 << 0)
    public static let rate = ClampReasons(rawValue: 1 << 1)
    public static let deceleration = ClampReasons(rawValue: 1 << 2)
    public static let acceleration = ClampReasons(rawValue: 1 << 3)
    public static let jerk = ClampReasons(rawValue: 1 << 4)
    /// Slowed so that the range boundary can still be reached without exceeding acceleration.
    public static let braking = ClampReasons(rawValue: 1 << 5)
    /// Limits conflicted; a higher-derivative limit yielded to a lower one (range and rate never yield).
    public static let yielded = ClampReasons(rawValue: 1 << 6)
    /// Every reason that names a limit (all but `yielded`). Built from raw bits: an array
    /// literal here would allocate on every use in unoptimised builds.
    static let limitReasons = ClampReasons(rawValue: 0b11_1111)

    public var description: String {
        let names: [(ClampReasons, String)] = [(.range, "range"), (.rate, "rate"), (.deceleration, "deceleration"),
                                               (.acceleration, "acceleration"), (.jerk, "jerk"), (.braking, "braking"),
                                               (.yielded, "yielded")]
        return names.filter { contains($0.0) }.map(\.1).joined(separator: ",")
    }
}

public enum RejectReason: String, Sendable, Codable {
    case unknownChannel = "unknown-channel"
    case wrongValueKind = "wrong-value-kind"
    case notFinite = "not-finite"
    case stale
    case stateNotAllowed = "state-not-allowed"
    case minOnTime = "min-on-time"
    case minOffTime = "min-off-time"
    case switchRate = "switch-rate"
    /// Motion held (workspace ladder or a "hold" reaction).
    case holding
    /// After an e-stop reset: the command was issued before the reset; a fresh one is required.
    case notFresh = "not-fresh"
}

/// What can make the guard act.
public enum FaultKind: Int, Sendable, Codable, NamedCase {
    case emergencyStopInput = 0
    case deadlineFault = 1
    case staleSensor = 2
    case workspace = 3
    case actuatorFailure = 4
    case connectionLost = 5
    case commandWatchdog = 6
    case operatorRequest = 7

    public var description: String {
        switch self {
        case .emergencyStopInput: "estop-input"
        case .deadlineFault: "deadline-fault"
        case .staleSensor: "stale-sensor"
        case .workspace: "workspace"
        case .actuatorFailure: "actuator-failure"
        case .connectionLost: "connection-lost"
        case .commandWatchdog: "command-watchdog"
        case .operatorRequest: "operator-request"
        }
    }
}

/// The guard's answer for one command. Not an error: every outcome is a value.
public enum Verdict: Sendable, Equatable {
    case pass(ApprovedCommand)
    case clamped(ApprovedCommand, ClampReasons)
    case rejected(RejectReason)
    /// The system is stopped (e-stop latched): nothing but safe values goes out.
    case stop(StopCategory, FaultKind)

    /// The command to hand to the actuator, if any.
    public var approved: ApprovedCommand? {
        switch self {
        case .pass(let c), .clamped(let c, _): c
        case .rejected, .stop: nil
        }
    }
}
