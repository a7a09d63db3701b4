import RobotConfig

/// The JSON Schema of a plan, generated from the abilities: one alternative per ability, its name
/// a one-word enum, its arguments with their units and effective bounds (the tighter of the
/// ability's, the guard's limits and the workspace), `additionalProperties: false` on every
/// object, at most `max_steps` steps. What a back end is asked to follow; `PlanValidator` enforces
/// the same numbers whatever the back end does with it. `JSONValue.text` writes it with sorted
/// keys: the same configuration gives the same bytes.
public enum PlanSchema {
    public static func schema(for context: PlanningContext) -> JSONValue {
        .object([
            "$schema": .string("https://json-schema.org/draft/2020-12/schema"),
            "title": .string("robotd plan"),
            "description": .string("The steps to reach the goal, in order. Each step calls one ability with its arguments."),
            "type": .string("object"),
            "additionalProperties": .bool(false),
            "required": .array([.string("steps")]),
            "properties": .object([
                "steps": .object([
                    "type": .string("array"),
                    "minItems": .number(1),
                    "maxItems": .number(Double(context.settings.maxSteps)),
                    "items": .object(["anyOf": .array(context.catalog.abilities.map(step))]),
                ]),
            ]),
        ])
    }

    static func step(_ ability: ResolvedAbility) -> JSONValue {
        var properties: [String: JSONValue] = [:]
        for argument in ability.arguments { properties[argument.name] = schema(of: argument) }
        return .object([
            "type": .string("object"),
            "description": .string(ability.description),
            "additionalProperties": .bool(false),
            "required": .array([.string("ability"), .string("arguments")]),
            "properties": .object([
                "ability": .object(["type": .string("string"), "enum": .array([.string(ability.name)])]),
                "arguments": .object([
                    "type": .string("object"),
                    "additionalProperties": .bool(false),
                    "required": .array(ability.arguments.filter(\.spec.required).map { .string($0.name) }),
                    "properties": .object(properties),
                ]),
            ]),
        ])
    }

    static func schema(of argument: ResolvedArgument) -> JSONValue {
        let description = "\(argument.description) (\(argument.spec.unit))"
        switch argument.shape {
        case .number(let bounds):
            return number(bounds, description: description)
        case .points(let x, let y, let maxCount):
            return .object([
                "type": .string("array"),
                "description": .string(description),
                "minItems": .number(1),
                "maxItems": .number(Double(maxCount)),
                "items": .object([
                    "type": .string("object"),
                    "additionalProperties": .bool(false),
                    "required": .array([.string("x"), .string("y")]),
                    "properties": .object(["x": number(x, description: "m"), "y": number(y, description: "m")]),
                ]),
            ])
        }
    }

    static func number(_ bounds: NumericBounds, description: String) -> JSONValue {
        var object: [String: JSONValue] = ["type": .string("number"), "description": .string(description)]
        // An end no limit narrowed (±greatest finite) says nothing: leave it out.
        if bounds.lower.value.isFinite, abs(bounds.lower.value) < 1e300 { object["minimum"] = .number(bounds.lower.value) }
        if bounds.upper.value.isFinite, abs(bounds.upper.value) < 1e300 { object["maximum"] = .number(bounds.upper.value) }
        return .object(object)
    }
}

extension PlanningContext {
    /// `PlanSchema.schema(for: self)`.
    public var planSchema: JSONValue { PlanSchema.schema(for: self) }
}
