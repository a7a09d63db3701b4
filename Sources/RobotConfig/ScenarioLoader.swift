import Foundation

/// Reads a scenario file (`robotd sim --scenario`) as a robot's configuration is read: every
/// problem at once, with line, column and key path, before anything runs.
public enum ScenarioLoader {
    public struct Report: Sendable, CustomStringConvertible {
        public var problems: [ConfigProblem]
        /// nil whenever there is an error.
        public var scenario: Scenario?
        public var description: String { problems.map(\.description).joined(separator: "\n") }
    }

    public static func load(path: String) -> Report {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            return Report(problems: [ConfigProblem(severity: .error, file: path, line: 0, column: 0, keyPath: "",
                                                   message: "cannot read the file")], scenario: nil)
        }
        return load(text: text, file: path)
    }

    public static func load(text: String, file: String) -> Report {
        var diagnostics = Diagnostics(file: file)
        guard let root = YAMLReader.read(text, into: &diagnostics) else { return Report(problems: diagnostics.sorted, scenario: nil) }
        var schema = SchemaValidator(catalog: KindCatalog(policies: [], inputs: [], actuators: []), diagnostics: diagnostics)
        schema.validateDocument(root, fields: Scenario.fields, what: "scenario key")
        diagnostics = schema.diagnostics
        guard !diagnostics.hasErrors else { return Report(problems: diagnostics.sorted, scenario: nil) }
        do {
            guard let value = root.configValue else {
                diagnostics.error(.start, "", "a value is missing (null)")
                return Report(problems: diagnostics.sorted, scenario: nil)
            }
            let scenario = try JSONDecoder().decode(Scenario.self, from: JSONEncoder().encode(value))
            return Report(problems: diagnostics.sorted, scenario: scenario)
        } catch {
            diagnostics.error(.start, "", "cannot decode: \(error)")
            return Report(problems: diagnostics.sorted, scenario: nil)
        }
    }
}
