/// A fault the simulator injects into its own devices (the safety issue's §7 scenarios), so that
/// robotd's reaction can be shown and tested against ground truth. Scheduled on simulated time:
/// lockstep runs stay a pure function of their configuration.
public struct SimulatorFault: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, CaseIterable {
        /// The range sensor sends nothing.
        case rangeDead = "range-dead"
        /// No wheel-encoder frames.
        case encodersDead = "encoders-dead"
        /// No IMU frames.
        case imuDead = "imu-dead"
        /// The USB-serial adapter is unplugged: the pty goes away and comes back at the same path.
        case serialUnplug = "serial-unplug"
        /// The rover's MCU sends no frame at all (sensors, heartbeats) but still obeys commands.
        case controllerSilent = "controller-silent"
        /// The gamepad's FIFO writer goes away (no records, no keep-alives), then comes back.
        case gamepadUnplug = "gamepad-unplug"
        /// BTN_EAST is pressed at the start and held for the duration.
        case estopHold = "estop-hold"
        /// The left wheel ignores its commands and accelerates while energised.
        case runaway
        /// The rig's MQTT link stops: it neither publishes nor receives.
        case brokerStop = "broker-stop"

        // A switch, not allCases: this runs every physics step and must not allocate.
        var bit: UInt16 {
            switch self {
            case .rangeDead: 1 << 0
            case .encodersDead: 1 << 1
            case .imuDead: 1 << 2
            case .serialUnplug: 1 << 3
            case .controllerSilent: 1 << 4
            case .gamepadUnplug: 1 << 5
            case .estopHold: 1 << 6
            case .runaway: 1 << 7
            case .brokerStop: 1 << 8
            }
        }
    }

    public var kind: Kind
    /// ns since the simulator started.
    public var start: Int64
    /// ns; nil: until the end of the run.
    public var duration: Int64?

    public init(_ kind: Kind, at start: Int64, for duration: Int64? = nil) {
        self.kind = kind
        self.start = start
        self.duration = duration
    }

    /// Active on [start, start + duration).
    public func isActive(at time: Int64) -> Bool {
        guard time >= start else { return false }
        guard let duration else { return true }
        return time - start < duration
    }

    /// `KIND@SECONDS[+DURATION]`, as on the command line.
    public var description: String {
        let at = Self.seconds(start)
        return duration.map { "\(kind.rawValue)@\(at)+\(Self.seconds($0))" } ?? "\(kind.rawValue)@\(at)"
    }

    private static func seconds(_ ns: Int64) -> String {
        let s = Double(ns) / 1e9
        return s == s.rounded() ? String(Int64(s)) : String(s)
    }

    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public let description: String
    }

    /// The syntax alone, `KIND@SECONDS[+DURATION]` with seconds ≥ 0 and a duration > 0; the kind is
    /// not checked (robotd also takes kinds that are not the simulator's, e.g. `policy-hang`).
    public static func parseSpecification(_ text: String) throws(ParseError) -> (kind: String, at: Double, duration: Double?) {
        let parts = text.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty else {
            throw ParseError(description: "'\(text)': expected KIND@SECONDS[+DURATION], e.g. range-dead@2+3")
        }
        let timing = parts[1].split(separator: "+", maxSplits: 1, omittingEmptySubsequences: false)
        guard let at = Double(timing[0]), at.isFinite, at >= 0 else {
            throw ParseError(description: "'\(text)': the start must be seconds ≥ 0")
        }
        var duration: Double?
        if timing.count == 2 {
            guard let d = Double(timing[1]), d.isFinite, d > 0 else {
                throw ParseError(description: "'\(text)': the duration must be seconds > 0")
            }
            duration = d
        }
        return (String(parts[0]), at, duration)
    }

    /// Parses `KIND@SECONDS[+DURATION]` for one of the simulator's kinds.
    public init(parsing text: String) throws(ParseError) {
        let spec = try Self.parseSpecification(text)
        guard let kind = Kind(rawValue: spec.kind) else {
            throw ParseError(description: "'\(text)': unknown fault '\(spec.kind)'; simulator faults: "
                             + Kind.allCases.map(\.rawValue).joined(separator: ", "))
        }
        self.init(kind, at: Int64((spec.at * 1e9).rounded()), for: spec.duration.map { Int64(($0 * 1e9).rounded()) })
    }
}

/// The kinds active at one instant as a bit set: checked every physics step without allocating.
struct ActiveFaults: Equatable {
    private(set) var bits: UInt16 = 0

    init() {}

    init(_ faults: [SimulatorFault], at time: Int64) {
        for fault in faults where fault.isActive(at: time) { bits |= fault.kind.bit }
    }

    func contains(_ kind: SimulatorFault.Kind) -> Bool { bits & kind.bit != 0 }

    var names: [String] { SimulatorFault.Kind.allCases.filter(contains).map(\.rawValue) }
}
