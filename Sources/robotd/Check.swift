import AIOSRobot
import ArgumentParser
import Foundation
import RobotConfig

/// `robotd check --config FILE`: validates a robot's configuration without touching a device and
/// prints every problem at once. `robotd run` and `robotd sim` refuse the same problems.
struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a robot's configuration file without touching any device; print every problem.",
        discussion: """
            Example:
              robotd check --config examples/rover-hardware.yaml

            Each problem is one line, as compilers print them:
              FILE:LINE:COLUMN: error: KEY.PATH: what is wrong (allowed: what would be right)
            then a summary. Exit status 0 when there is no error (warnings allowed), 1 otherwise.
            After the file's own checks the runtime is built dry (no device opened, nothing started),
            so what `robotd run` would refuse is refused here too. The keys: docs/configuration.md.
            """)

    @Option(help: "The configuration file (YAML).")
    var config: String

    @Flag(help: "One JSON object: file, valid, error and warning counts, and the problems.")
    var json = false

    func run() throws {
        // The validator against the runtime's kinds, then a dry build of the runtime.
        let report = RobotFileCheck.load(path: config, lookUpNames: true)
        if json {
            let output = CheckOutput(file: report.file, valid: report.isValid, errors: report.errors.count,
                                     warnings: report.warnings.count, problems: report.problems)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(output), as: UTF8.self))
        } else {
            print(report.description)
        }
        if !report.isValid { throw ExitCode(1) }
    }
}

struct CheckOutput: Encodable {
    var file: String
    var valid: Bool
    var errors: Int
    var warnings: Int
    var problems: [ConfigProblem]
}
