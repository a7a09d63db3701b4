import Foundation

/// Reads a robot's YAML file and reports every problem at once, each with its line, column and key
/// path; decodes the configuration only when there is no error.
///
///     let report = ConfigurationLoader.load(path: "robot.yaml", catalog: RobotKinds.catalog)
///     guard let configuration = report.configuration else { print(report); exit(1) }
///
/// Three passes over Yams' node tree, which keeps every node's place: the schema
/// (`ConfigurationSchema` and the catalog's kinds), the semantic checks (names, contradictions,
/// settings that could fail open), then decoding into `RobotConfiguration`. Nothing touches a
/// device; the network only with `lookUpNames` (`robotd check`: host names a warning compares are
/// looked up, each waited for 2 s at most), never when a run loads its file.
public enum ConfigurationLoader {
    /// Reads and checks the file at `path`. A file that cannot be read is one problem at 0:0.
    public static func load(path: String, catalog: KindCatalog, lookUpNames: Bool = false) -> ConfigurationReport {
        let text: String
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            guard let decoded = String(data: data, encoding: .utf8) else {
                return unreadable(path, "the file is not UTF-8 text")
            }
            text = decoded
        } catch {
            let reason = (error as NSError).localizedFailureReason ?? (error as NSError).localizedDescription
            return unreadable(path, "cannot read the file: \(reason)")
        }
        return load(text: text, file: path, catalog: catalog, lookUpNames: lookUpNames)
    }

    /// Checks YAML text; `file` names it in the problems.
    public static func load(text: String, file: String, catalog: KindCatalog, lookUpNames: Bool = false) -> ConfigurationReport {
        var diagnostics = Diagnostics(file: file)
        guard let root = YAMLReader.read(text, into: &diagnostics) else {
            return ConfigurationReport(file: file, problems: diagnostics.sorted, configuration: nil)
        }
        var places: [String: SourcePosition] = [:]
        index(root, path: "", into: &places)
        var schema = SchemaValidator(catalog: catalog, diagnostics: diagnostics)
        schema.validateRoot(root)
        var semantics = SemanticChecker(root: root, catalog: catalog, diagnostics: schema.diagnostics, lookUpNames: lookUpNames)
        semantics.check()
        diagnostics = semantics.diagnostics
        guard !diagnostics.hasErrors else {
            return ConfigurationReport(file: file, problems: diagnostics.sorted, configuration: nil, places: places)
        }
        var configuration = decode(root, diagnostics: &diagnostics)
        // The abilities' bounds come from the whole decoded file (workspace, wheels, interlocks).
        for problem in configuration?.resolveAbilities().problems ?? [] {
            diagnostics.error(places[problem.keyPath] ?? root.position, problem.keyPath, problem.message, allowed: problem.allowed)
        }
        if diagnostics.hasErrors { configuration = nil }
        return ConfigurationReport(file: file, problems: diagnostics.sorted, configuration: configuration, places: places)
    }

    private static func index(_ node: Located, path: String, into places: inout [String: SourcePosition]) {
        places[path] = node.position
        switch node {
        case .map(let map):
            for e in map.entries { index(e.value, path: KeyPath.child(path, e.key), into: &places) }
        case .list(let list):
            for (i, item) in list.items.enumerated() { index(item, path: KeyPath.item(path, i), into: &places) }
        case .scalar:
            break
        }
    }

    private static func unreadable(_ path: String, _ message: String) -> ConfigurationReport {
        ConfigurationReport(file: path, problems: [ConfigProblem(severity: .error, file: path, line: 0, column: 0,
                                                                 keyPath: "", message: message)],
                            configuration: nil)
    }

    /// node → `ConfigValue` → JSON → the model's `Codable` types, whose `CodingKeys` are the names.
    /// After the passes above this should not fail; if it does, the validator missed something,
    /// and the user gets a problem (at the closest place the coding path leads to), not a crash.
    private static func decode(_ root: Located, diagnostics: inout Diagnostics) -> RobotConfiguration? {
        do {
            guard let value = root.configValue else {
                diagnostics.error(.start, "", "a value is missing (null) somewhere the checks did not catch")
                return nil
            }
            var configuration = try JSONDecoder().decode(RobotConfiguration.self, from: JSONEncoder().encode(value))
            // JSON objects have no order: give each kind its own keys back in file order.
            for (i, item) in root["inputs"]?.items.enumerated().map({ $0 }) ?? [] where i < configuration.inputs.count {
                configuration.inputs[i].settings = kindSettings(item, commonKeys: InputSettings.commonKeys)
            }
            for (i, item) in root["policies"]?.items.enumerated().map({ $0 }) ?? [] where i < configuration.policies.count {
                configuration.policies[i].settings = kindSettings(item, commonKeys: PolicySettings.commonKeys)
            }
            for (i, item) in root["actuators"]?.items.enumerated().map({ $0 }) ?? [] where i < configuration.actuators.count {
                configuration.actuators[i].settings = kindSettings(item, commonKeys: ActuatorSettings.commonKeys)
            }
            return configuration
        } catch let error as DecodingError {
            let (path, message) = describe(error)
            diagnostics.error(place(of: path, in: root), keyPath(path), "cannot decode: \(message)")
            return nil
        } catch {
            diagnostics.error(.start, "", "cannot decode: \(error)")
            return nil
        }
    }

    private static func kindSettings(_ item: Located, commonKeys: Set<String>) -> ConfigValue {
        guard let map = item.map else { return .emptyMap }
        return .map(map.entries.filter { !commonKeys.contains($0.key) }.compactMap { e in
            e.value.configValue.map { ConfigValue.Entry(key: e.key, value: $0) }
        })
    }

    private static func describe(_ error: DecodingError) -> ([any CodingKey], String) {
        switch error {
        case .typeMismatch(let type, let context): (context.codingPath, "expected \(type): \(context.debugDescription)")
        case .valueNotFound(let type, let context): (context.codingPath, "no value of type \(type): \(context.debugDescription)")
        case .keyNotFound(let key, let context): (context.codingPath + [key], "missing: \(context.debugDescription)")
        case .dataCorrupted(let context): (context.codingPath, context.debugDescription)
        @unknown default: ([], "\(error)")
        }
    }

    private static func keyPath(_ codingPath: [any CodingKey]) -> String {
        codingPath.reduce("") { path, key in
            key.intValue.map { KeyPath.item(path, $0) } ?? KeyPath.child(path, key.stringValue)
        }
    }

    /// The deepest node of the coding path that exists in the file.
    private static func place(of codingPath: [any CodingKey], in root: Located) -> SourcePosition {
        var node = root
        for key in codingPath {
            let next: Located?
            if let index = key.intValue {
                let items = node.items
                next = index < items.count ? items[index] : nil
            } else {
                next = node[key.stringValue]
            }
            guard let next else { break }
            node = next
        }
        return node.position
    }
}
