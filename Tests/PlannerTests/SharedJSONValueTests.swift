import Foundation
import Planner
import PlannerBackends
import Testing

/// One JSON tree for the planner and its back ends: the schema the planner generates is the value
/// a back end sends, with no conversion between two look-alike types.
@Suite("Shared JSON value")
struct SharedJSONValueTests {
    @Test func when_the_planner_schema_goes_to_a_back_end_expect_the_same_value_and_integers_as_integers() throws {
        // Both modules imported, the name unqualified: one type, not an ambiguity.
        let schema: JSONValue = try context(roverYAML()).planSchema
        let same: PlannerBackends.JSONValue = schema
        let planners: Planner.JSONValue = same
        #expect(planners == schema)
        // The text a request carries (PlanRequest.schema) parses back to the very value.
        let parsed = try JSONValue(parsing: schema.text)
        #expect(parsed == schema)
        // Whole numbers are written without a fraction, as a server's schema parser expects.
        #expect(schema.text.contains(#""maxItems":4"#))
        #expect(!schema.text.contains(#""maxItems":4.0"#))
        // What is not JSON, or holds a number no Double can, is a back end's configuration error.
        #expect(throws: PlanBackendError.self) { try JSONValue(parsing: "{not json") }
        #expect(throws: PlanBackendError.configuration("the schema has a number no Double can hold at properties.x.maximum")) {
            try JSONValue(parsing: #"{"properties":{"x":{"maximum":1e999}}}"#)
        }
    }
}
