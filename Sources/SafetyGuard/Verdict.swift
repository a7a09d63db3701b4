/// IEC 60204-1 stop categories.
public enum StopCategory: Int, BitwiseCopyable, Sendable, Codable, Comparable, CustomStringConvertible {
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
public struct ClampReasons: OptionSet, BitwiseCopyable, Sendable, Hashable, CustomStringConvertible {
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

public enum RejectReason: String, BitwiseCopyable, Sendable, Codable {
    case unknownChannel = "unknown-channel"
    case wrongValueKind = "wrong-value-kind"
    case notFinite = "not-finite"
    case stale
    case stateNotAllowed = "state-not-allowed"
    case minOnTime = "min-on-time"
    case minOffTime = "min-off-time"
    case switchRate = "switch-rate"
    /// Held: motion by the workspace ladder or a "hold" reaction; every channel by `estop-unknown`.
    case holding
    /// After an e-stop reset: the command was issued before the reset; a fresh one is required.
    case notFresh = "not-fresh"
    /// The channel is locked by a value interlock (a reading beyond its limit) until a reset.
    case interlocked
    /// In the workspace recovery hold: the command would not bring the robot back toward the workspace.
    case awayFromWorkspace = "away-from-workspace"
    /// The guard's tick has not run recently (`maxTickAge`).
    case guardNotTicking = "guard-not-ticking"
}

/// What can make the guard act.
public enum FaultKind: Int, BitwiseCopyable, Sendable, Codable, NamedCase {
    case emergencyStopInput = 0
    case deadlineFault = 1
    case staleSensor = 2
    case workspace = 3
    case actuatorFailure = 4
    case connectionLost = 5
    case commandWatchdog = 6
    case operatorRequest = 7
    /// The e-stop device itself is gone (reader ended: EOF, ENODEV, FIFO writer gone).
    case estopDeviceLost = 8
    /// A required sensor has never reported (held at start, a stop after the startup timeout).
    case silentSensor = 9
    /// A wheel turns faster than commanded (or the wrong way) beyond tolerance for a set time.
    case runaway = 10
    /// Motion measured during a category-2 stop or a hold (standstill monitoring).
    case standstill = 11
    /// A handler overran its budget: the supervisor put the actuators in their safe state.
    case dispatchStall = 12
    /// A reading beyond a configured limit (e.g. chamber above 60 °C).
    case valueInterlock = 13
    /// A remote stop (MQTT): latching, released only by a reset.
    case remoteStop = 14
    /// Started latched (after a restart on hardware): needs a deliberate reset.
    case powerOn = 15
    /// A sensor value that is not finite or out of its valid range (it counts as no sample).
    case invalidSample = 16
    /// A wheel measured much slower than commanded while driven (blocked, or its encoder frozen).
    case stalledWheel = 17
    /// An e-stop device (re)opened whose key has not reported its level yet: a mushroom latched
    /// down while it was closed sends no event. A hold of every channel (what a press would
    /// stop), not a latch.
    case estopUnknown = 18

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
        case .estopDeviceLost: "estop-device-lost"
        case .silentSensor: "silent-sensor"
        case .runaway: "runaway"
        case .standstill: "standstill"
        case .dispatchStall: "dispatch-stall"
        case .valueInterlock: "value-interlock"
        case .remoteStop: "remote-stop"
        case .powerOn: "power-on"
        case .invalidSample: "invalid-sample"
        case .stalledWheel: "stalled-wheel"
        case .estopUnknown: "estop-unknown"
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

/// A set of fault kinds as one bit each: the stop causes present now. Fixed-size, so the guard
/// keeps and audits it without allocating.
public struct StopCauses: OptionSet, BitwiseCopyable, Sendable, Hashable, Codable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(_ kind: FaultKind) { rawValue = 1 << UInt32(kind.rawValue) }

    public func contains(_ kind: FaultKind) -> Bool { rawValue & (1 << UInt32(kind.rawValue)) != 0 }

    /// The kinds in this set, in declaration order. Allocates: not for the check path.
    public var kinds: [FaultKind] { FaultKind.allCases.filter { contains($0) } }
    public var description: String { kinds.map(\.description).joined(separator: ",") }
}

/// What a reset request came to.
public enum ResetOutcome: Sendable, Equatable {
    /// Released: motion needs fresh commands issued after this instant.
    case released
    /// Released while the pose is still beyond the workspace stop level: only commands that bring
    /// the robot back toward the workspace pass until it is back inside.
    case releasedIntoRecovery
    case notLatched
    /// A stop ramp is still running.
    case stillStopping
    /// Causes still present: nothing is released.
    case refused(StopCauses)
    /// The reset key was already down when the e-stop was released: a reset needs its own deliberate press.
    case resetKeyHeldThrough
}
