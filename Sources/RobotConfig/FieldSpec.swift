import Foundation

/// What one key of a configuration map may hold. The validator checks a file against these before
/// anything is decoded or built, so every problem is reported at once with its line and column.
/// The core sections are described with them, and so is each policy, input and actuator kind: a
/// new kind brings its own list of `FieldSpec`s (see `KindSpec`).
public struct FieldSpec: Sendable {
    public indirect enum ValueType: Sendable {
        case bool
        case number(ClosedRange<Double>? = nil)
        case integer(ClosedRange<Int>? = nil)
        case string
        /// One of these words.
        case oneOf([String])
        case list(ValueType, minCount: Int = 0)
        /// A map with these keys (unknown keys are errors).
        case object([FieldSpec])
        /// A map whose keys are data (names), every value of this type.
        case dictionary(ValueType)
        /// Any of these shapes (e.g. `estop: none` or a map).
        case either([ValueType])
        /// A fixed word (as one alternative of `either`).
        case word(String)
    }

    public var key: String
    public var type: ValueType
    public var required: Bool
    /// One line for `check`'s messages and docs/configuration.md.
    public var help: String
    /// The strings of this value name something declared elsewhere in the file (a sensor, a
    /// channel, an input): `check` refuses names that are not declared, and learns from them which
    /// input feeds which sensor and which actuator carries which channel.
    public var refersTo: NameReference?

    public init(_ key: String, _ type: ValueType, required: Bool = false, help: String = "",
                refersTo: NameReference? = nil) {
        self.key = key
        self.type = type
        self.required = required
        self.help = help
        self.refersTo = refersTo
    }
}

extension FieldSpec.ValueType {
    /// A finite number > 0 (periods, rates, limits).
    public static var positive: Self { .number(Double.leastNonzeroMagnitude...Double.greatestFiniteMagnitude) }
    /// A finite number ≥ 0 (margins, minimum times).
    public static var nonNegative: Self { .number(0...Double.greatestFiniteMagnitude) }
}

/// What the names in a kind's field refer to. In an input, a sensor name means "this input feeds
/// that sensor"; in an actuator, a channel name means "this actuator carries that channel"; in a
/// policy, names are what it reads.
public struct NameReference: Sendable, Equatable {
    public enum Target: String, Sendable {
        case sensor, channel, input
    }

    public var target: Target
    /// For a dictionary: its keys are the names (`channels: {wheel_left: {...}}`); otherwise its
    /// values are. For a string or a list of strings: the strings.
    public var inKeys: Bool

    public init(_ target: Target, inKeys: Bool = false) {
        self.target = target
        self.inKeys = inKeys
    }

    public static let sensor = NameReference(.sensor)
    public static let channel = NameReference(.channel)
    public static let input = NameReference(.input)
}

/// A kind of policy, input or actuator as the configuration sees it: its name and the keys it takes
/// beside the common ones. The runtime's registries provide these, so `robotd check` validates a
/// kind it has never heard of only through its registry entry.
public struct KindSpec: Sendable {
    public var kind: String
    public var summary: String
    public var fields: [FieldSpec]
    /// A policy kind that filters whichever output wins its channels instead of proposing its own:
    /// it has no period, deadline, priority or timeout (`check` refuses them), where a proposing
    /// policy must have a period.
    public var isFilter: Bool
    public init(kind: String, summary: String, fields: [FieldSpec], isFilter: Bool = false) {
        self.kind = kind
        self.summary = summary
        self.fields = fields
        self.isFilter = isFilter
    }
}

/// The kinds known to whoever validates (the runtime's registries).
public struct KindCatalog: Sendable {
    public var policies: [KindSpec]
    public var inputs: [KindSpec]
    public var actuators: [KindSpec]
    public init(policies: [KindSpec], inputs: [KindSpec], actuators: [KindSpec]) {
        self.policies = policies
        self.inputs = inputs
        self.actuators = actuators
    }
}

extension ConfigValue {
    /// Decodes a kind's settings (already validated against its `FieldSpec`s) into its own type.
    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: JSONEncoder().encode(self))
    }
}
