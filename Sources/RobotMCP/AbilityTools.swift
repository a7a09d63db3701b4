import AIOSRobot
import Foundation
import MCP
import Planner
import RobotConfig

/// The MCP tools of one robot: one per ability of its published vocabulary, and `remote_stop`.
/// Each tool's input schema is built here from the typed arguments (numbers with their bounds,
/// lists of points), never taken as given: a payload can narrow or widen a bound, not add a field
/// or a kind of value.
///
/// A tool's description and schema carry no text of the robot's: whoever can write the retained
/// `abilities` topic writes the payload, and an MCP client puts tool descriptions in its model's
/// prompt. They are this server's own words plus fields it checked — a name of
/// `[a-z][a-z0-9_]*`, an action, its arguments (name, kind, unit) and preconditions from robotd's
/// own fixed vocabulary, numbers. An ability whose fields are not those is left out, said why.
/// The free texts (the descriptions a configuration's author writes) are in the `abilities`
/// resource, labelled as the robot's data.
public enum AbilityTools {
    /// The remote stop's tool: always there, even without abilities. (Not `stop`: that is the
    /// name of an ability — a plan step that stands still — on many robots.)
    public static let remoteStop = "remote_stop"
    /// What an ability or argument name may be (as `robotd check` requires of abilities).
    static let nameLimit = 64
    /// A text of the client's quoted back in an error (a tool or resource it named).
    static let quotedLimit = 200

    /// An ability the server offers, as it understood the payload.
    public struct Offered: Sendable, Equatable {
        public var tool: Tool
        public var ability: String
    }

    /// The tools for `vocabulary`, and what of it was left out and why.
    public static func tools(_ vocabulary: AbilitiesPayload, robot: String) -> (offered: [Offered], skipped: [String]) {
        var offered: [Offered] = []
        var skipped: [String] = []
        for ability in vocabulary.abilities {
            guard isName(ability.name) else {
                skipped.append("an ability whose name is not [a-z][a-z0-9_]* (at most \(nameLimit) characters)")
                continue
            }
            guard ability.name != remoteStop else {
                skipped.append("ability \(ability.name): the name of the remote stop's tool")
                continue
            }
            guard !offered.contains(where: { $0.ability == ability.name }) else {
                skipped.append("ability \(ability.name): declared twice")
                continue
            }
            switch checked(ability) {
            case .success(let known):
                offered.append(Offered(tool: Tool(name: ability.name, title: ability.name, description: description(known, robot: robot),
                                                  inputSchema: inputSchema(known.arguments),
                                                  annotations: .init(title: ability.name, readOnlyHint: false, destructiveHint: false,
                                                                     idempotentHint: false, openWorldHint: true)),
                                       ability: ability.name))
            case .failure(let problem):
                skipped.append("ability \(ability.name): \(problem.text)")
            }
        }
        return (offered, skipped)
    }

    public static func stopTool(robot: String, topic: String) -> Tool {
        Tool(name: remoteStop, title: "remote stop",
             description: """
                 Latch robot \(robot)'s remote stop: publishes on \(topic) (QoS 1). The robot stops (the stop category its \
                 configuration gives the remote stop) and stays stopped until a person resets it — nothing here can reset it. \
                 Use it when the robot must not move. The robot acts on it only with `estop.remote` in its configuration and \
                 the broker's write right on that topic for this login; the answer says whether the robot's `state` showed \
                 the latch. It is no emergency stop: a hard-wired e-stop does not need the network.
                 """,
             inputSchema: .object(["type": .string("object"), "properties": .object([:]), "additionalProperties": .bool(false)]),
             annotations: .init(title: "remote stop", readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: true))
    }

    /// An ability as the server will describe it: every field checked against robotd's own
    /// vocabulary, the texts this server's.
    struct Known: Sendable {
        var name: String
        var action: AbilityAction
        var preconditions: [AbilityPrecondition]
        var arguments: [KnownArgument]
    }

    struct KnownArgument: Sendable {
        /// The action's own argument: its name, kind, unit and summary (robotd's words).
        var spec: AbilityArgument
        var required: Bool
        var bounds: AbilitiesPayload.Bounds?
        var x: AbilitiesPayload.Bounds?
        var y: AbilitiesPayload.Bounds?
        var maxPoints: Int?
    }

    /// The ability's action, preconditions and arguments when each is robotd's own (the action
    /// fixes its arguments' names, kinds and units); the first that is not, otherwise.
    static func checked(_ ability: AbilitiesPayload.Ability) -> Result<Known, Problem> {
        guard let action = AbilityAction(rawValue: ability.action) else {
            return .failure(Problem(text: "an action this server does not know (\(AbilityAction.allCases.map(\.rawValue).joined(separator: ", ")) are)"))
        }
        var preconditions: [AbilityPrecondition] = []
        for word in ability.preconditions {
            guard let known = AbilityPrecondition(rawValue: word) else {
                return .failure(Problem(text: "a precondition this server does not know (\(AbilityPrecondition.allCases.map(\.rawValue).joined(separator: ", ")) are)"))
            }
            preconditions.append(known)
        }
        var arguments: [KnownArgument] = []
        for a in ability.arguments {
            guard isName(a.name), !arguments.contains(where: { $0.spec.name == a.name }) else {
                return .failure(Problem(text: "an argument named twice or not a name"))
            }
            guard let spec = action.argument(named: a.name) else {
                return .failure(Problem(text: "argument \(a.name): not one of action \(action.rawValue)'s"))
            }
            guard a.type == spec.kind.rawValue, a.unit == spec.unit else {
                return .failure(Problem(text: "argument \(a.name): not of action \(action.rawValue)'s kind \(spec.kind.rawValue) in \(spec.unit)"))
            }
            var known = KnownArgument(spec: spec, required: a.required, bounds: a.bounds)
            if spec.kind == .points {
                guard let x = a.x, let y = a.y, let count = a.maxPoints, AbilityArgument.maxPointsRange.contains(count) else {
                    return .failure(Problem(text: "argument \(a.name): points without their bounds or count"))
                }
                (known.x, known.y, known.maxPoints) = (x, y, count)
            }
            arguments.append(known)
        }
        return .success(Known(name: ability.name, action: action, preconditions: preconditions, arguments: arguments))
    }

    /// Fixed text and checked fields only (the type's comment says why).
    static func description(_ ability: Known, robot: String) -> String {
        let arguments = ability.arguments.map { a -> String in
            var words = "\(a.spec.name) (\(a.spec.unit)"
            if !a.required { words += ", optional" }
            if let b = a.bounds { words += ", " + range(b) }
            if let x = a.x, let y = a.y {
                words += ", at most \(a.maxPoints ?? 1) points, x " + range(x) + ", y " + range(y)
            }
            return words + ")"
        }
        var text = "Give robot \(robot) a one-step plan: its ability `\(ability.name)`, robotd's action `\(ability.action.rawValue)` "
        text += "(\(ability.action.summary))"
        text += arguments.isEmpty ? ", no arguments. " : ", with " + arguments.joined(separator: ", ") + ". "
        text += "The robot validates it as every plan — the ability, each argument within its bounds and the workspace"
        text += ability.preconditions.isEmpty ? "" : ", the preconditions " + ability.preconditions.map(\.rawValue).joined(separator: ", ")
        text += " — and refuses it otherwise, saying why; an accepted plan is executed by the robot's policies and every command "
        text += "is checked by its safety guard. A call the robot takes as a goal (the answer's outcome accepted or rejected) "
        text += "cancels at once the plan running, even when the validator then rejects the call; a call refused or ignored "
        text += "as a goal (not_authorised, rate_limited, latched, duplicate) changes nothing, a running plan goes on. "
        text += "The robot's own description of this ability is data in the resource robotd://\(robot)/abilities, not here."
        return text
    }

    /// For a person or a model to read (6 significant digits: 0.6, not 0.6000000000000001); the
    /// schema keeps the exact bounds.
    private static func range(_ b: AbilitiesPayload.Bounds) -> String {
        let low = b.minimum.flatMap { $0.isFinite ? String(format: "%g", $0) : nil } ?? "…"
        let high = b.maximum.flatMap { $0.isFinite ? String(format: "%g", $0) : nil } ?? "…"
        return "\(low) to \(high)"
    }

    /// The text in quotes, control characters dropped, quotes and backslashes escaped, clipped.
    static func quoted(_ text: String) -> String {
        var escaped = ""
        for scalar in clip(text, quotedLimit).unicodeScalars {
            switch scalar {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return "\"" + escaped + "\""
    }

    /// At most `limit` characters, without control or format characters (line breaks become spaces).
    static func clip(_ text: String, _ limit: Int) -> String {
        let kept = text.unicodeScalars.compactMap { s -> Unicode.Scalar? in
            switch s.properties.generalCategory {
            case .control, .format, .lineSeparator, .paragraphSeparator: s == "\n" || s == "\t" ? " " : nil
            default: s
            }
        }
        let cleaned = String(String.UnicodeScalarView(kept))
        return cleaned.count <= limit ? cleaned : String(cleaned.prefix(limit - 1)) + "…"
    }

    static func isName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, ("a"..."z").contains(first), name.unicodeScalars.count <= nameLimit else { return false }
        return name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
    }

    struct Problem: Error, Sendable {
        var text: String
    }

    /// The arguments' JSON Schema: an object of exactly these arguments, the required ones listed,
    /// each number with its bounds, each list of points with its count and coordinates' bounds —
    /// the plan schema's `arguments` for the ability, with robotd's own summary of each argument
    /// where the plan schema has the configuration's description.
    static func inputSchema(_ arguments: [KnownArgument]) -> Value {
        var properties: [String: Value] = [:]
        var required: [Value] = []
        for a in arguments {
            let description = "\(a.spec.summary) (\(a.spec.unit))"
            if let x = a.x, let y = a.y, let count = a.maxPoints {
                properties[a.spec.name] = .object([
                    "type": .string("array"),
                    "description": .string(description),
                    "minItems": .int(1),
                    "maxItems": .int(count),
                    "items": .object([
                        "type": .string("object"),
                        "additionalProperties": .bool(false),
                        "required": .array([.string("x"), .string("y")]),
                        "properties": .object(["x": number(x, description: "m"), "y": number(y, description: "m")]),
                    ]),
                ])
            } else {
                properties[a.spec.name] = number(a.bounds ?? .init(), description: description)
            }
            if a.required { required.append(.string(a.spec.name)) }
        }
        return .object([
            "type": .string("object"),
            "additionalProperties": .bool(false),
            "required": .array(required),
            "properties": .object(properties),
        ])
    }

    static func number(_ bounds: AbilitiesPayload.Bounds, description: String) -> Value {
        var object: [String: Value] = ["type": .string("number"), "description": .string(description)]
        if let low = bounds.minimum, low.isFinite { object["minimum"] = value(low) }
        if let high = bounds.maximum, high.isFinite { object["maximum"] = value(high) }
        return .object(object)
    }

    // MARK: Values

    /// A number as JSON writes it: whole numbers as integers.
    static func value(_ d: Double) -> Value {
        d == d.rounded() && abs(d) < 1e15 ? .int(Int(d)) : .double(d)
    }

    /// A tree of the planner's JSON as an MCP value.
    public static func value(_ json: Planner.JSONValue) -> Value {
        switch json {
        case .null: .null
        case .bool(let b): .bool(b)
        case .number(let d): d.isFinite ? value(d) : .null
        case .string(let s): .string(s)
        case .array(let items): .array(items.map(value))
        case .object(let fields): .object(fields.mapValues(value))
        }
    }

    /// A tool call's argument as the planner's JSON: passed on as given (the robot's validator
    /// judges it), binary data as a string it will refuse.
    public static func json(_ value: Value) -> Planner.JSONValue {
        switch value {
        case .null: .null
        case .bool(let b): .bool(b)
        case .int(let i): .number(Double(i))
        case .double(let d): .number(d)
        case .string(let s): .string(s)
        case .data: .string("(binary data)")
        case .array(let items): .array(items.map(json))
        case .object(let fields): .object(fields.mapValues(json))
        }
    }
}
