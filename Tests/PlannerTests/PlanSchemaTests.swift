import Foundation
import Planner
import RobotConfig
import Testing

/// The plan's JSON Schema comes from the abilities, with the bounds that are enforced.
@Suite("Plan schema")
struct PlanSchemaTests {
    /// The alternative for `ability` among the step's `anyOf`.
    func step(_ schema: JSONValue, _ ability: String) -> JSONValue? {
        guard case .array(let alternatives)? = schema["properties"]?["steps"]?["items"]?["anyOf"] else { return nil }
        return alternatives.first { $0["properties"]?["ability"]?["enum"] == .array([.string(ability)]) }
    }

    func argument(_ schema: JSONValue, _ ability: String, _ name: String) -> JSONValue? {
        step(schema, ability)?["properties"]?["arguments"]?["properties"]?[name]
    }

    /// Every object schema (one with `properties`) forbids other keys.
    func objectsAllowExtraKeys(_ value: JSONValue) -> [String] {
        switch value {
        case .object(let entries):
            var found: [String] = []
            if entries["properties"] != nil, entries["additionalProperties"] != .bool(false) { found.append(value.text) }
            for child in entries.values { found += objectsAllowExtraKeys(child) }
            return found
        case .array(let items): return items.flatMap(objectsAllowExtraKeys)
        default: return []
        }
    }

    @Test func one_alternative_per_ability_with_its_name_as_enum_and_no_extra_keys() throws {
        let schema = try context(roverYAML()).planSchema
        #expect(schema["type"] == .string("object") && schema["required"] == .array([.string("steps")]))
        #expect(schema["properties"]?["steps"]?["maxItems"] == .number(4))
        for name in ["goto", "patrol", "stop", "wait"] { #expect(step(schema, name) != nil, "\(name)") }
        #expect(step(schema, "fly") == nil)
        #expect(objectsAllowExtraKeys(schema).isEmpty)
        #expect(step(schema, "goto")?["properties"]?["arguments"]?["required"] == .array([.string("x"), .string("y")]))
        #expect(step(schema, "stop")?["properties"]?["arguments"]?["properties"] == .object([:]))
    }

    @Test func numeric_bounds_are_the_tightest_of_ability_guard_limits_and_workspace() throws {
        let rover = try context(roverYAML()).planSchema
        // The workspace's bounding box less the clearance (warn_margin 0.3).
        #expect(argument(rover, "goto", "x")?["minimum"] == .number(-4.7) && argument(rover, "goto", "x")?["maximum"] == .number(4.7))
        #expect(argument(rover, "goto", "y")?["maximum"] == .number(3.7))
        #expect(argument(rover, "patrol", "points")?["maxItems"] == .number(8))
        #expect(argument(rover, "patrol", "points")?["items"]?["properties"]?["y"]?["minimum"] == .number(-3.7))
        // The planner envelope: 8 rad/s × 0.05 m.
        #expect(argument(rover, "goto", "speed")?["maximum"] == .number(8 * 0.05))
        #expect(argument(rover, "goto", "speed")?["description"] == .string("forward speed (default: the policy's) (m/s)"))
        // An ability's own bound, tighter than the workspace.
        let narrow = try context(roverYAML(abilities: [
            "  - {name: goto, policy: route, timeout_s: 60, no_progress: none, arguments: {x: {min: 0, max: 2, description: metres east}}}",
        ])).planSchema
        #expect(argument(narrow, "goto", "x") == .object(["type": .string("number"), "minimum": .number(0), "maximum": .number(2),
                                                          "description": .string("metres east (m)")]))
        // A radius workspace: the circle's extent.
        let round = try context(roverYAML(workspace: "workspace: {radius: 3, center: [1, 0], warn_margin: 0.5, stop_margin: 0.3, stop_category: 1}")).planSchema
        #expect(argument(round, "goto", "x")?["minimum"] == .number(-1.5) && argument(round, "goto", "x")?["maximum"] == .number(3.5))
        // The rig: the heater's interlock (60 °C) less the band (1 °C); the ability's 120 minutes.
        let rig = try context(try rigYAML()).planSchema
        #expect(argument(rig, "set_temperature", "temperature")?["maximum"] == .number(59))
        #expect(argument(rig, "set_temperature", "temperature")?["minimum"] == .number(-40))
        #expect(argument(rig, "hold", "minutes")?["maximum"] == .number(120))
    }

    @Test func a_configuration_without_abilities_gives_no_planning_context() throws {
        let yaml = roverYAML(abilities: [], planner: "")
            .replacingOccurrences(of: "abilities:\n", with: "")
        #expect(throws: PlanningContext.SetupError.self) { try PlanningContext(configuration: try configuration(yaml)) }
    }

    @Test func the_same_configuration_gives_the_same_bytes() throws {
        let a = try context(roverYAML()).planSchema.text
        let b = try context(roverYAML()).planSchema.text
        #expect(a == b)
        #expect(a.hasPrefix(#"{"$schema":"https://json-schema.org/draft/2020-12/schema","additionalProperties":false,"description":"#))
        // Keys sorted at every level.
        #expect(a.contains(#"{"additionalProperties":false,"description":"drive to the point (x, y)","properties":{"ability":{"enum":["goto"],"type":"string"},"arguments":"#))
        // And it is JSON any parser reads.
        #expect((try? JSONSerialization.jsonObject(with: Data(a.utf8))) != nil)
    }
}
