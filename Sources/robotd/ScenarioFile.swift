import ArgumentParser
import Foundation
import RobotConfig
import Yams

/// Reads a scenario file for `robotd sim --scenario`.
enum ScenarioFile {
    static func load(_ path: String) throws -> Scenario {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ValidationError("cannot read \(path)")
        }
        do {
            return try YAMLDecoder().decode(Scenario.self, from: text)
        } catch {
            throw ValidationError("\(path): \(error)")
        }
    }
}
