import Foundation
import Testing

/// `robotd check` as a user runs it: the built binary, its output and exit status.
@Suite("robotd check command")
struct CheckCommandTests {
    func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let products = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let robotd = products.appendingPathComponent("robotd").path
        try #require(FileManager.default.isExecutableFile(atPath: robotd), "robotd is not built next to the tests")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: robotd)
        process.arguments = ["check"] + arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test func an_example_exits_0_and_says_ok() throws {
        let path = repositoryRoot.appendingPathComponent("examples/rover-hardware.yaml").path
        let (status, output) = try run(["--config", path])
        #expect(status == 0, "\(output)")
        #expect(output.contains("\(path): ok"))
    }

    @Test func a_broken_file_exits_1_with_each_problem_at_its_line_and_column() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("robotd-check-\(getpid()).yaml").path
        try base(replacing: [8: "      max_velocity: fast"], removing: [2]).write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (status, output) = try run(["--config", path])
        #expect(status == 1)
        #expect(output.contains("\(path):1:1: error: estop: missing"), "\(output)")
        #expect(output.contains("\(path):7:21: error: channels[0].limits.max_velocity: expected a number > 0, got the string `fast`"), "\(output)")
        #expect(output.contains("2 errors, 0 warnings: refused"))
    }

    @Test func json_output_carries_the_counts_and_every_problem() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("robotd-check-json-\(getpid()).yaml").path
        try base(replacing: [11: "    stop_category: 5"]).write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (status, output) = try run(["--config", path, "--json"])
        #expect(status == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any], "\(output)")
        #expect(object["valid"] as? Bool == false)
        #expect(object["errors"] as? Int == 1)
        #expect(object["warnings"] as? Int == 1)
        let problems = try #require(object["problems"] as? [[String: Any]])
        #expect(problems.map { $0["key_path"] as? String } == ["estop", "channels[0].stop_category"])
        #expect(problems.last?["line"] as? Int == 11)
        #expect(problems.last?["column"] as? Int == 20)
    }

    @Test func a_missing_file_exits_1_and_says_so() throws {
        let (status, output) = try run(["--config", "/nonexistent/robot.yaml"])
        #expect(status == 1)
        #expect(output.contains("/nonexistent/robot.yaml:0:0: error: cannot read the file"))
    }

    @Test func help_shows_an_example() throws {
        let (status, output) = try run(["--help"])
        #expect(status == 0)
        #expect(output.contains("robotd check --config examples/rover-hardware.yaml"))
    }
}
