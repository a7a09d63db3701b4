import Foundation
import RobotConfig

/// The offline planner: simple goals in plain words, turned into a plan with no model.
///
///     go to 2,3            goto 2 3            drive to (-1.5, 2) at 0.2 m/s
///     patrol the corners   patrol 1,1 3,1 3,2
///     hold 24 °C for 30 minutes                set temperature 22
///     wait 5 s             stop
///
/// Several goals joined by `then` (or `;`) make several steps. Each goal uses the first ability
/// of its action in the configuration. Its plans are answers like any back end's: they pass
/// through `PlanValidator` before anything runs (a goal outside the workspace is planned, then
/// refused there, with the validator's reasons).
public struct BuiltinPlanner: Sendable {
    public let context: PlanningContext

    public init(context: PlanningContext) { self.context = context }

    public enum Outcome: Sendable, Equatable {
        case plan(Plan)
        /// The goal is not one the built-in planner understands, or the configuration has no
        /// ability for it: why, in words.
        case cannotPlan(String)

        public var plan: Plan? { if case .plan(let p) = self { p } else { nil } }
    }

    /// What it understands, for "cannot plan" messages.
    public static let understood = "go to X,Y [at S m/s]; patrol the corners; patrol X,Y X,Y …; set temperature T; hold T °C for N minutes; wait N s; stop; several joined by `then`"

    /// `world` gives the pose: a patrol of the corners starts at the nearest one.
    public func plan(goal: String, world: WorldState) -> Outcome {
        let clauses = Self.clauses(goal)
        guard !clauses.isEmpty else { return .cannotPlan("cannot plan an empty goal; the built-in planner understands: \(Self.understood)") }
        var steps: [PlanStep] = []
        for clause in clauses {
            switch step(clause, world: world) {
            case .success(let step): steps.append(step)
            case .failure(let failure): return .cannotPlan(failure.text)
            }
        }
        return .plan(Plan(steps: steps))
    }

    struct Failure: Error {
        var text: String
    }

    static func clauses(_ goal: String) -> [String] {
        var text = goal.lowercased().replacingOccurrences(of: "\n", with: ";")
        for separator in [", and then ", " and then ", ", then ", " then "] { text = text.replacingOccurrences(of: separator, with: ";") }
        return text.split(separator: ";").map { clause in
            var c = clause.trimmingCharacters(in: .whitespaces)
            while let last = c.last, ".!".contains(last) { c.removeLast() }
            return c.trimmingCharacters(in: .whitespaces)
        }.filter { !$0.isEmpty }
    }

    private func step(_ clause: String, world: WorldState) -> Result<PlanStep, Failure> {
        func starts(_ prefixes: [String]) -> String? {
            for prefix in prefixes where clause == prefix || clause.hasPrefix(prefix + " ") || clause.hasPrefix(prefix + "(") {
                return String(clause.dropFirst(prefix.count))
            }
            return nil
        }
        if ["stop", "halt", "stand still", "stop now", "stop here"].contains(clause) {
            return ability(.stop).map { PlanStep(ability: $0.name) }
        }
        if let rest = starts(["wait", "pause"]) {
            return ability(.wait).flatMap { ability in
                duration(rest, defaultUnit: 1, clause: clause, example: "wait 5 s").map { PlanStep(ability: ability.name, arguments: ["seconds": .number($0)]) }
            }
        }
        if let rest = starts(["go to", "goto", "drive to", "move to", "navigate to"]) {
            return ability(.goto).flatMap { ability in
                let (place, speed) = Self.splitSpeed(rest)
                let numbers = Self.numbers(in: place)
                guard numbers.count == 2 else {
                    return .failure(Failure(text: "cannot plan \"\(clause)\": a goto needs two coordinates, x and y in m (\"go to 2,3\")"))
                }
                var arguments: [String: JSONValue] = ["x": .number(numbers[0]), "y": .number(numbers[1])]
                if let speed { arguments["speed"] = .number(speed) }
                return .success(PlanStep(ability: ability.name, arguments: arguments))
            }
        }
        if let rest = starts(["patrol"]) {
            return ability(.patrol).flatMap { ability in
                let (route, speed) = Self.splitSpeed(rest)
                let points: Result<[PlanPoint], Failure>
                if route.contains("corner") {
                    points = corners(ability, world: world)
                } else {
                    let numbers = Self.numbers(in: route)
                    points = numbers.count >= 2 && numbers.count % 2 == 0
                        ? .success(stride(from: 0, to: numbers.count, by: 2).map { PlanPoint(x: numbers[$0], y: numbers[$0 + 1]) })
                        : .failure(Failure(text: "cannot plan \"\(clause)\": patrol the corners, or give points as pairs of numbers (\"patrol 1,1 3,1 3,2\")"))
                }
                return points.map { points in
                    var arguments: [String: JSONValue] = ["points": .array(points.map { .object(["x": .number($0.x), "y": .number($0.y)]) })]
                    if let speed { arguments["speed"] = .number(speed) }
                    return PlanStep(ability: ability.name, arguments: arguments)
                }
            }
        }
        if let rest = starts(["hold", "keep"]) {
            return ability(.hold).flatMap { ability in
                let parts = rest.components(separatedBy: " for ")
                guard parts.count == 2 else {
                    return .failure(Failure(text: "cannot plan \"\(clause)\": hold needs a temperature and a duration (\"hold 24 °C for 30 minutes\")"))
                }
                return temperature(parts[0], clause: clause).flatMap { t in
                    duration(parts[1], defaultUnit: 60, clause: clause, example: "hold 24 °C for 30 minutes").map {
                        PlanStep(ability: ability.name, arguments: ["temperature": .number(t), "minutes": .number($0 / 60)])
                    }
                }
            }
        }
        if let rest = starts(["set temperature to", "set temperature", "set the temperature to", "set the temperature",
                              "set_temperature", "set the thermostat to", "heat to"]) {
            return ability(.setTemperature).flatMap { ability in
                temperature(rest, clause: clause).map { PlanStep(ability: ability.name, arguments: ["temperature": .number($0)]) }
            }
        }
        return .failure(Failure(text: "cannot plan \"\(clause)\": the built-in planner understands: \(Self.understood)"))
    }

    private func ability(_ action: AbilityAction) -> Result<ResolvedAbility, Failure> {
        guard let ability = context.catalog.first(doing: action) else {
            let names = context.catalog.names
            return .failure(Failure(text: "cannot plan this goal: no ability does `\(action.rawValue)` (abilities: \(names.isEmpty ? "none" : names.joined(separator: ", ")))"))
        }
        return .success(ability)
    }

    /// "24 °C", "24c", "24 degrees": one number, Celsius.
    private func temperature(_ text: String, clause: String) -> Result<Double, Failure> {
        let numbers = Self.numbers(in: text)
        let squeezed = text.replacingOccurrences(of: " ", with: "")
        if squeezed.contains("°f") || squeezed.contains("fahrenheit") || squeezed.hasSuffix("f") {
            return .failure(Failure(text: "cannot plan \"\(clause)\": temperatures are in °C"))
        }
        guard numbers.count == 1 else {
            return .failure(Failure(text: "cannot plan \"\(clause)\": give one temperature in °C (\"set temperature 22\")"))
        }
        return .success(numbers[0])
    }

    /// A number and a unit (`5 s`, `30 minutes`, `1.5 h`, `250 ms`) in seconds; a bare number is
    /// in `defaultUnit` seconds.
    private func duration(_ text: String, defaultUnit: Double, clause: String, example: String) -> Result<Double, Failure> {
        let numbers = Self.numbers(in: text)
        guard numbers.count == 1, let value = numbers.first else {
            return .failure(Failure(text: "cannot plan \"\(clause)\": give one duration (\"\(example)\")"))
        }
        let unitWord = text.drop { !$0.isLetter }.prefix { $0.isLetter }
        let scale: Double
        switch unitWord {
        case "": scale = defaultUnit
        case "ms", "millisecond", "milliseconds": scale = 0.001
        case "s", "sec", "secs", "second", "seconds": scale = 1
        case "m", "min", "mins", "minute", "minutes": scale = 60
        case "h", "hr", "hrs", "hour", "hours": scale = 3600
        default:
            return .failure(Failure(text: "cannot plan \"\(clause)\": unknown time unit `\(unitWord)` (s, min or h)"))
        }
        return .success(value * scale)
    }

    /// " 2,3 at 0.2 m/s" → (" 2,3", 0.2).
    static func splitSpeed(_ text: String) -> (String, Double?) {
        guard let range = text.range(of: " at ") else { return (text, nil) }
        let tail = String(text[range.upperBound...])
        let numbers = numbers(in: tail)
        guard numbers.count == 1, tail.contains("m/s") else { return (text, nil) }
        return (String(text[..<range.lowerBound]), numbers[0])
    }

    /// The decimal numbers in a text, signs included: "(-1.5, 2)" → [-1.5, 2]. A `-` is a sign
    /// only where a number may start (not after a digit).
    static func numbers(in text: String) -> [Double] {
        var numbers: [Double] = []
        var current = ""
        var previous: Character = " "
        func flush() {
            if let d = Double(current), d.isFinite { numbers.append(d) }
            current = ""
        }
        for c in text {
            if c.isASCII, c.isNumber {
                current.append(c)
            } else if c == ".", !current.isEmpty, !current.contains(".") {
                current.append(c)
            } else if c == "-" || c == "+", current.isEmpty, !(previous.isASCII && previous.isNumber) {
                current.append(c)
            } else {
                flush()
            }
            previous = c
        }
        flush()
        return numbers
    }

    /// The workspace polygon's corners moved inside by the clearance (plus 1 cm, so rounding never
    /// puts one on the limit), or the corners of the square inscribed in a radius workspace
    /// likewise; starting at the one nearest the robot, back to it at the end.
    private func corners(_ ability: ResolvedAbility, world: WorldState) -> Result<[PlanPoint], Failure> {
        guard let workspace = context.workspace else {
            return .failure(Failure(text: "cannot plan \"patrol the corners\": there is no workspace"))
        }
        let inset = context.clearance + 0.01
        var points: [PlanPoint] = []
        if let polygon = workspace.polygon, polygon.count >= 3 {
            for (i, v) in polygon.enumerated() {
                let previous = polygon[(i + polygon.count - 1) % polygon.count], next = polygon[(i + 1) % polygon.count]
                let u1 = unit(previous.x - v.x, previous.y - v.y), u2 = unit(next.x - v.x, next.y - v.y)
                let bx = u1.x + u2.x, by = u1.y + u2.y
                let length = hypot(bx, by)
                let halfSine = hypot(u1.x - u2.x, u1.y - u2.y) / 2
                // A vertex on a straight edge is no corner.
                guard length > 1e-6, halfSine > 1e-6 else { continue }
                let reach = inset / halfSine
                let inward = PlanPoint(x: v.x + bx / length * reach, y: v.y + by / length * reach)
                let outward = PlanPoint(x: v.x - bx / length * reach, y: v.y - by / length * reach)
                // The bisector points inside at a convex corner, outside at a reflex one.
                let corner = context.admits(x: inward.x, y: inward.y) || !context.admits(x: outward.x, y: outward.y) ? inward : outward
                points.append(corner)
            }
        } else if let radius = workspace.radius {
            let r = radius - inset
            guard r > 0 else { return .failure(Failure(text: "cannot plan \"patrol the corners\": the workspace is smaller than the clearance")) }
            for angle in [0.25, 0.75, 1.25, 1.75] {
                points.append(PlanPoint(x: workspace.center.x + r * cos(angle * .pi), y: workspace.center.y + r * sin(angle * .pi)))
            }
        }
        guard points.count >= 2 else { return .failure(Failure(text: "cannot plan \"patrol the corners\": the workspace has no corners")) }
        if let pose = world.pose, pose.isFinite,
           let nearest = points.indices.min(by: { hypot(points[$0].x - pose.x, points[$0].y - pose.y) < hypot(points[$1].x - pose.x, points[$1].y - pose.y) }) {
            points = Array(points[nearest...] + points[..<nearest])
        }
        if let first = points.first { points.append(first) }
        if let argument = ability.argument(named: "points"), case .points(_, _, let maxCount) = argument.shape, points.count > maxCount {
            return .failure(Failure(text: "cannot plan \"patrol the corners\": it takes \(points.count) points and `\(ability.name)` takes at most \(maxCount) (its max_points)"))
        }
        return .success(points)
    }

    private func unit(_ x: Double, _ y: Double) -> (x: Double, y: Double) {
        let length = hypot(x, y)
        return length > 0 ? (x / length, y / length) : (0, 0)
    }
}
