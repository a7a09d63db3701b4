import Foundation

/// Abilities with the bounds that actually hold for their arguments: the tighter of the action's
/// own range, the ability's `min`/`max`, the workspace (less the planner's clearance), the wheels'
/// limits and planner envelope, and the thermostat sensor's valid range and interlock. The plan
/// schema and the plan validator both read these, so what a model is told and what is enforced
/// are one set of numbers.

/// Where a bound comes from, so that a refusal can say which limit a value broke.
public enum BoundSource: String, Sendable, Codable, CaseIterable {
    /// The action's own range (`AbilityAction.arguments`).
    case action
    /// `abilities[].arguments.NAME.min`/`max`.
    case ability
    /// The workspace's bounding box or circle, less the planner's clearance.
    case workspace
    /// The executing policy's wheels: `max_velocity` × `wheel_radius`.
    case channelLimit = "channel_limit"
    /// The wheels' `envelopes.planner.max_velocity` × `wheel_radius`.
    case plannerEnvelope = "planner_envelope"
    /// The thermostat sensor's `valid_range`.
    case sensorRange = "sensor_range"
    /// The heater's over-temperature interlock less the thermostat's band.
    case interlock

    /// In words, for messages.
    public var text: String {
        switch self {
        case .action: "the action's range"
        case .ability: "the ability's own bound"
        case .workspace: "the workspace less the clearance"
        case .channelLimit: "the wheels' max_velocity"
        case .plannerEnvelope: "the wheels' planner envelope"
        case .sensorRange: "the sensor's valid_range"
        case .interlock: "the heater's interlock less the band"
        }
    }
}

public struct Bound: Sendable, Equatable {
    public var value: Double
    public var source: BoundSource
    public init(_ value: Double, _ source: BoundSource) {
        self.value = value
        self.source = source
    }
}

/// A closed interval whose ends remember where they come from.
public struct NumericBounds: Sendable, Equatable {
    public var lower: Bound
    public var upper: Bound

    public init(lower: Bound, upper: Bound) {
        self.lower = lower
        self.upper = upper
    }

    public var isEmpty: Bool { lower.value > upper.value }
    /// Finite values within both ends (NaN is never inside).
    public func contains(_ value: Double) -> Bool { value.isFinite && value >= lower.value && value <= upper.value }

    /// Keeps the tighter end; on a tie the newer source wins (it is the more specific limit, and
    /// the one a refusal should name).
    mutating func narrow(lower candidate: Double, _ source: BoundSource) {
        if candidate.isFinite, candidate >= lower.value { lower = Bound(candidate, source) }
    }

    mutating func narrow(upper candidate: Double, _ source: BoundSource) {
        if candidate.isFinite, candidate <= upper.value { upper = Bound(candidate, source) }
    }
}

public struct ResolvedArgument: Sendable, Equatable {
    public enum Shape: Sendable, Equatable {
        case number(NumericBounds)
        /// Each point's coordinates, and how many points a step may give.
        case points(x: NumericBounds, y: NumericBounds, maxCount: Int)
    }

    public var spec: AbilityArgument
    public var description: String
    public var shape: Shape

    public var name: String { spec.name }
}

public struct ResolvedAbility: Sendable, Equatable {
    public var name: String
    public var action: AbilityAction
    public var description: String
    /// The executing policy's name; nil for the built-in actions.
    public var policy: String?
    /// In the action's order.
    public var arguments: [ResolvedArgument]
    public var timeoutS: Double?
    public var noProgress: NoProgressSettings?
    public var preconditions: [AbilityPrecondition]
    /// `goto`, `patrol`: the speed the policy drives when a step gives none (its `speed`, m/s).
    public var defaultSpeed: Double?

    public func argument(named name: String) -> ResolvedArgument? { arguments.first { $0.name == name } }
}

/// The configuration's abilities, resolved, in file order.
public struct AbilityCatalog: Sendable, Equatable {
    public var abilities: [ResolvedAbility]

    public init(abilities: [ResolvedAbility]) { self.abilities = abilities }

    public var names: [String] { abilities.map(\.name) }
    public func ability(named name: String) -> ResolvedAbility? { abilities.first { $0.name == name } }
    /// The first ability doing `action` (what the built-in planner uses).
    public func first(doing action: AbilityAction) -> ResolvedAbility? { abilities.first { $0.action == action } }
}

public struct AbilityResolution: Sendable {
    /// A bound that leaves no value, or a policy default outside it: at `keyPath` of the file.
    public struct Problem: Sendable, Equatable, CustomStringConvertible {
        public var keyPath: String
        public var message: String
        public var allowed: String?
        public init(keyPath: String, message: String, allowed: String? = nil) {
            self.keyPath = keyPath
            self.message = message
            self.allowed = allowed
        }
        public var description: String { "\(keyPath): \(message)" + (allowed.map { " (allowed: \($0))" } ?? "") }
    }

    public var catalog: AbilityCatalog
    public var problems: [Problem]
}

extension RobotConfiguration {
    /// How far inside the workspace's edge a plan's points must be (m): `planner.clearance`, or
    /// the workspace's `warn_margin`.
    public var planningClearance: Double { planner.clearance ?? workspace?.warnMargin ?? 0 }

    /// The default speed of a `waypoints` policy that does not set one (m/s; the kind's default).
    public static let waypointsDefaultSpeed = 0.3
    /// The default band of a `thermostat` policy that does not set one (°C; the kind's default).
    public static let thermostatDefaultBand = 0.5

    /// Every ability with its effective bounds. Problems are what `check` reports after decoding:
    /// a bound that leaves no value, a policy whose own speed a plan could not be given.
    public func resolveAbilities() -> AbilityResolution {
        var problems: [AbilityResolution.Problem] = []
        var resolved: [ResolvedAbility] = []
        for (index, ability) in abilities.enumerated() {
            let path = "abilities[\(index)]"
            let policy = ability.policy.flatMap { name in policies.first { $0.name == name } }
            var arguments: [ResolvedArgument] = []
            for spec in ability.action.arguments {
                let settings = ability.arguments[spec.name]
                var bounds = NumericBounds(lower: Bound(spec.range.lowerBound, .action), upper: Bound(spec.range.upperBound, .action))
                if let min = settings?.min { bounds.narrow(lower: min, .ability) }
                if let max = settings?.max { bounds.narrow(upper: max, .ability) }
                let shape: ResolvedArgument.Shape
                switch spec.role {
                case .x, .y:
                    narrowToWorkspace(&bounds, axis: spec.role == .x ? 0 : 1)
                    shape = .number(bounds)
                case .points:
                    var x = bounds, y = bounds
                    narrowToWorkspace(&x, axis: 0)
                    narrowToWorkspace(&y, axis: 1)
                    shape = .points(x: x, y: y, maxCount: settings?.maxPoints ?? AbilityArgument.defaultMaxPoints)
                case .speed:
                    narrowToWheels(&bounds, policy: policy)
                    shape = .number(bounds)
                case .temperature:
                    narrowToThermostat(&bounds, policy: policy)
                    shape = .number(bounds)
                case .duration:
                    shape = .number(bounds)
                }
                let argumentPath = settings == nil ? path : "\(path).arguments.\(spec.name)"
                switch shape {
                case .number(let b):
                    if let problem = Self.emptiness(b, name: spec.name, unit: spec.unit, path: argumentPath) { problems.append(problem) }
                case .points(let x, let y, _):
                    for (axis, b) in [("x", x), ("y", y)] {
                        if let problem = Self.emptiness(b, name: "\(spec.name) \(axis)", unit: spec.unit, path: argumentPath) {
                            problems.append(problem)
                        }
                    }
                }
                arguments.append(ResolvedArgument(spec: spec, description: settings?.description ?? spec.summary, shape: shape))
            }
            var defaultSpeed: Double?
            if ability.action.moves, let policy {
                let speed = policy.settings["speed"].flatMap { if case .number(let d) = $0 { d } else { nil } } ?? Self.waypointsDefaultSpeed
                defaultSpeed = speed
                if let argument = arguments.first(where: { $0.spec.role == .speed }), case .number(let b) = argument.shape,
                   !b.isEmpty, !b.contains(speed) {
                    let limit = speed > b.upper.value ? b.upper : b.lower
                    problems.append(.init(keyPath: "\(path).policy",
                                          message: "policy `\(policy.name)` drives at \(format(speed)) m/s when a step gives no speed, \(speed > limit.value ? "above" : "below") \(format(limit.value)) m/s (\(limit.source.text)): such a step could never be accepted",
                                          allowed: "the policy's `speed` within \(format(b.lower.value))…\(format(b.upper.value)) m/s"))
                }
            }
            resolved.append(ResolvedAbility(name: ability.name, action: ability.action,
                                            description: ability.description ?? ability.action.summary, policy: ability.policy,
                                            arguments: arguments, timeoutS: ability.timeoutS, noProgress: ability.noProgress,
                                            preconditions: ability.preconditions, defaultSpeed: defaultSpeed))
        }
        return AbilityResolution(catalog: AbilityCatalog(abilities: resolved), problems: problems)
    }

    private static func emptiness(_ b: NumericBounds, name: String, unit: String, path: String) -> AbilityResolution.Problem? {
        guard b.isEmpty else { return nil }
        return .init(keyPath: path,
                     message: "no value of `\(name)` can pass: at least \(format(b.lower.value)) \(unit) (\(b.lower.source.text)) but at most \(format(b.upper.value)) \(unit) (\(b.upper.source.text))",
                     allowed: "bounds that overlap")
    }

    /// The workspace's extent along one axis (bounding box of the polygon, the circle, both:
    /// their intersection), less the clearance on each side.
    private func narrowToWorkspace(_ bounds: inout NumericBounds, axis: Int) {
        guard let workspace else { return }
        let clearance = planningClearance
        if let polygon = workspace.polygon {
            let values = polygon.compactMap { $0.count > axis ? $0[axis] : nil }
            if let low = values.min(), let high = values.max() {
                bounds.narrow(lower: low + clearance, .workspace)
                bounds.narrow(upper: high - clearance, .workspace)
            }
        }
        if let radius = workspace.radius {
            let center = (workspace.center?.count ?? 0) > axis ? workspace.center?[axis] ?? 0 : 0
            bounds.narrow(lower: center - radius + clearance, .workspace)
            bounds.narrow(upper: center + radius - clearance, .workspace)
        }
    }

    /// A linear speed v drives both wheels at v / wheel_radius: each wheel's limit and planner
    /// envelope bound v. (A turn adds to one wheel; the guard limits that, as every command.)
    private func narrowToWheels(_ bounds: inout NumericBounds, policy: PolicySettings?) {
        guard let policy, let radius = odometry?.wheelRadius, radius > 0 else { return }
        for name in policy.channels {
            guard let channel = channels.first(where: { $0.name == name }) else { continue }
            if let max = channel.limits.maxVelocity { bounds.narrow(upper: max * radius, .channelLimit) }
            if let max = channel.envelopes?["planner"]?.maxVelocity { bounds.narrow(upper: max * radius, .plannerEnvelope) }
        }
    }

    /// A setpoint the thermostat's sensor cannot report, or one the heater's over-temperature
    /// interlock would trip on while holding it (the heater runs up to setpoint + band), is no
    /// setpoint.
    private func narrowToThermostat(_ bounds: inout NumericBounds, policy: PolicySettings?) {
        guard let policy, case .string(let sensorName)? = policy.settings["sensor"],
              let sensor = sensors.first(where: { $0.name == sensorName }) else { return }
        if let range = sensor.validRange, range.count >= 2 {
            bounds.narrow(lower: range[0], .sensorRange)
            bounds.narrow(upper: range[1], .sensorRange)
        }
        let band: Double = if case .number(let b)? = policy.settings["band"] { b } else { Self.thermostatDefaultBand }
        guard let heater = policy.channels.first else { return }
        for interlock in sensor.interlocks ?? [] where interlock.channels.contains(heater) {
            if let max = interlock.max { bounds.narrow(upper: max - band, .interlock) }
        }
    }
}
