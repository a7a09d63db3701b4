import ArgumentParser
import RobotConfig

/// Reads a scenario file for `robotd sim --scenario`: every problem printed with its place; a
/// scenario with an error never runs.
enum ScenarioFile {
    static func load(_ path: String) throws -> Scenario {
        let report = ScenarioLoader.load(path: path)
        for problem in report.problems { stderrLine(problem.description) }
        guard let scenario = report.scenario else { throw ExitCode.failure }
        return scenario
    }
}
