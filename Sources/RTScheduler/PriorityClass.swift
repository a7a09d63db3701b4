/// A priority class. Classes are strict: a ready job of a higher class always runs before any job
/// of a lower class. Inside a class, the earliest absolute deadline runs first (EDF).
///
/// Lower raw value = higher priority. Strict priority can starve lower classes by design: keep the
/// work of the upper classes bounded (the accounting shows it when it is not).
public struct PriorityClass: RawRepresentable, Comparable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Safety reactions: deadline faults, e-stop.
    public static let critical = PriorityClass(rawValue: 0)
    /// Control loops and the sensors that feed them.
    public static let high = PriorityClass(rawValue: 1)
    public static let normal = PriorityClass(rawValue: 2)
    /// Planner results, configuration, housekeeping.
    public static let low = PriorityClass(rawValue: 3)

    /// "Higher priority" compares as smaller, so sorting ascending gives dispatch order.
    public static func < (a: PriorityClass, b: PriorityClass) -> Bool { a.rawValue < b.rawValue }

    public var description: String {
        switch self {
        case .critical: "critical"
        case .high: "high"
        case .normal: "normal"
        case .low: "low"
        default: "class\(rawValue)"
        }
    }

    public init?(name: String) {
        switch name {
        case "critical": self = .critical
        case "high": self = .high
        case "normal": self = .normal
        case "low": self = .low
        default: return nil
        }
    }
}
