import AIOSRobot
import ArgumentParser
import Foundation
import RobotConfig
import Yams

/// Reads a robot's configuration file for the commands that run one.
enum ConfigurationFile {
    static func load(_ path: String) throws -> RobotConfiguration {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ValidationError("cannot read \(path)")
        }
        do {
            return try YAMLDecoder().decode(RobotConfiguration.self, from: text)
        } catch {
            throw ValidationError("\(path): \(error)")
        }
    }
}
