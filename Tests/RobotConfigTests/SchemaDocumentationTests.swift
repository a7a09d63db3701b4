import Foundation
import AIOSRobot
import RobotConfig
import Testing

/// The schema, the model and docs/configuration.md describe the same keys.
@Suite("Schema, model and documentation agree")
struct SchemaDocumentationTests {
    func keys(_ fields: [FieldSpec]) -> Set<String> {
        var all: Set<String> = []
        for field in fields {
            all.insert(field.key)
            all.formUnion(keys(in: field.type))
        }
        return all
    }

    func keys(in type: FieldSpec.ValueType) -> Set<String> {
        switch type {
        case .object(let fields): keys(fields)
        case .list(let item, _), .dictionary(let item): keys(in: item)
        case .either(let alternatives): alternatives.reduce(into: []) { $0.formUnion(keys(in: $1)) }
        default: []
        }
    }

    @Test func every_key_of_the_schema_and_of_the_kinds_is_documented() throws {
        let doc = try String(contentsOf: repositoryRoot.appendingPathComponent("docs/configuration.md"), encoding: .utf8)
        let catalog = RobotKinds.catalog
        let kindFields = (catalog.inputs + catalog.policies + catalog.actuators).flatMap(\.fields)
        let missing = keys(ConfigurationSchema.root).union(keys(kindFields)).filter { !doc.contains("`\($0)`") }
        #expect(missing.isEmpty, "not in docs/configuration.md: \(missing.sorted())")
        let kinds = (catalog.inputs + catalog.policies + catalog.actuators).map(\.kind).filter { !doc.contains("`\($0)`") }
        #expect(kinds.isEmpty, "kinds not in docs/configuration.md: \(kinds)")
    }

    @Test func the_common_keys_of_the_schema_are_the_models() {
        #expect(Set(ConfigurationSchema.inputCommon.map(\.key)) == InputSettings.commonKeys)
        #expect(Set(ConfigurationSchema.policyCommon.map(\.key)) == PolicySettings.commonKeys)
        #expect(Set(ConfigurationSchema.actuatorCommon.map(\.key)) == ActuatorSettings.commonKeys)
    }

    @Test func no_kind_redefines_a_common_key() {
        let catalog = RobotKinds.catalog
        for (kinds, common) in [(catalog.inputs, InputSettings.commonKeys), (catalog.policies, PolicySettings.commonKeys),
                                (catalog.actuators, ActuatorSettings.commonKeys)] {
            for kind in kinds {
                #expect(Set(kind.fields.map(\.key)).isDisjoint(with: common), "\(kind.kind)")
            }
        }
    }
}
