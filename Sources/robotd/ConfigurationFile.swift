import AIOSRobot
import ArgumentParser
import RobotConfig

/// Reads a robot's configuration file for the commands that run one: the same check as
/// `robotd check` (every problem printed with its place); a file with an error never starts.
enum ConfigurationFile {
    static func load(_ path: String) throws -> RobotConfiguration {
        let report = RobotFileCheck.load(path: path)
        for problem in report.problems { stderrLine(problem.description) }
        guard let configuration = report.configuration else {
            stderrLine(report.summary)
            throw ExitCode.failure
        }
        return configuration
    }
}
