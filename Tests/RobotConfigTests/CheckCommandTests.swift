import Foundation
import Testing
import TestSupport

/// `robotd check` as a user runs it: the built binary, its output and exit status.
@Suite("robotd check command")
struct CheckCommandTests {
    func run(_ arguments: [String], command: String = "check") throws -> (status: Int32, output: String) {
        let products = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let robotd = products.appendingPathComponent("robotd").path
        try #require(FileManager.default.isExecutableFile(atPath: robotd), "robotd is not built next to the tests")
        let run = try Subprocess(robotd, [command] + arguments)
        let status = try #require(run.wait(seconds: 120), "robotd \(command) did not end: \(run.stderr)")
        return (status, run.stdout + run.stderr)
    }

    /// The hardware example with lines replaced; returns the file's path and, for each
    /// replacement, the line and column of its `marker`.
    func brokenHardwareExample(_ name: String, _ edits: [(find: String, replace: String, marker: String)]) throws
        -> (path: String, places: [(line: Int, column: Int)]) {
        var lines = try String(contentsOf: repositoryRoot.appendingPathComponent("examples/rover-hardware.yaml"), encoding: .utf8)
            .components(separatedBy: "\n")
        var places: [(Int, Int)] = []
        for edit in edits {
            let index = try #require(lines.firstIndex { $0.contains(edit.find) }, "no line with \(edit.find)")
            lines[index] = edit.replace
            let marker = try #require(edit.replace.range(of: edit.marker))
            places.append((index + 1, edit.replace.unicodeScalars.distance(from: edit.replace.startIndex, to: marker.lowerBound) + 1))
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("robotd-check-\(name)-\(getpid()).yaml").path
        try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return (path, places)
    }

    @Test func an_example_exits_0_and_says_ok() throws {
        let path = repositoryRoot.appendingPathComponent("examples/rover-hardware.yaml").path
        let (status, output) = try run(["--config", path])
        #expect(status == 0, "\(output)")
        #expect(output.contains("\(path): ok"))
    }

    @Test func a_broken_file_exits_1_with_each_problem_at_its_line_and_column() throws {
        let (path, places) = try brokenHardwareExample("broken", [
            ("max_velocity: 8.0", "      max_velocity: fast", "fast"),
            ("category: 1                  # ramp down", "  category: 2", "2"),
        ])
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (status, output) = try run(["--config", path])
        #expect(status == 1)
        #expect(output.contains("\(path):\(places[0].line):\(places[0].column): error: channels[0].limits.max_velocity: expected a number > 0, got the string `fast`"), "\(output)")
        #expect(output.contains("\(path):\(places[1].line):\(places[1].column): error: estop.category: `2` is out of range"), "\(output)")
        #expect(output.contains("2 errors, 0 warnings: refused"))
    }

    /// `robotd run` reads the file as `check` does: a broken one never starts the daemon, exits 1,
    /// and says each problem at its line and column.
    @Test func robotd_run_on_a_broken_file_exits_1_with_each_problem_at_its_line_and_column() throws {
        let (path, places) = try brokenHardwareExample("run", [
            ("max_velocity: 8.0", "      max_velocity: fast", "fast"),
            ("category: 1                  # ramp down", "  category: 2", "2"),
        ])
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (status, output) = try run(["--config", path, "--seconds", "5"], command: "run")
        #expect(status == 1, "\(output)")
        #expect(output.contains("\(path):\(places[0].line):\(places[0].column): error: channels[0].limits.max_velocity:"), "\(output)")
        #expect(output.contains("\(path):\(places[1].line):\(places[1].column): error: estop.category:"), "\(output)")
        #expect(output.contains("2 errors, 0 warnings: refused"), "\(output)")
        // Nothing ran: no status line, no summary, no dispatch thread.
        #expect(!output.contains("\"kind\":") && !output.contains("dispatch thread"), "\(output)")
    }

    @Test func what_only_the_runtime_knows_is_refused_at_the_entry_it_names() throws {
        // The schema cannot know the gamepad's axis names; the dry build of the runtime does.
        let (path, places) = try brokenHardwareExample("axis", [
            ("  - name: teleop", "  - name: teleop", "name"),
            ("angular_axis: angular", "    angular_axis: twist", "twist"),
        ])
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (status, output) = try run(["--config", path])
        #expect(status == 1)
        #expect(output.contains("\(path):\(places[0].line):\(places[0].column): error: policies[0]: policy teleop: input gamepad has no axis named twist"),
                "\(output)")
    }

    /// `serial_frames`' `write` (direct or writer) is validated like every key of a kind.
    @Test func a_serial_frames_write_mode_is_checked() throws {
        let lines = try String(contentsOf: repositoryRoot.appendingPathComponent("examples/rover-hardware.yaml"), encoding: .utf8)
            .components(separatedBy: "\n")
        let kind = try #require(lines.firstIndex { $0.contains("kind: serial_frames") })
        for (mode, valid) in [("writer", true), ("direct", true), ("sideways", false)] {
            var edited = lines
            edited.insert("    write: \(mode)", at: kind + 1)
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("robotd-check-write-\(mode)-\(getpid()).yaml").path
            try edited.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: path) }
            let (status, output) = try run(["--config", path])
            if valid {
                #expect(status == 0, "write: \(mode): \(output)")
            } else {
                #expect(status == 1)
                #expect(output.contains("\(path):\(kind + 2):12: error: actuators[0].write:"), "\(output)")
                #expect(output.contains("direct") && output.contains("writer"), "\(output)")
            }
        }
    }

    @Test func json_output_carries_the_counts_and_every_problem() throws {
        let (path, places) = try brokenHardwareExample("json", [("stop_category: 1", "    stop_category: 5", "5")])
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (status, output) = try run(["--config", path, "--json"])
        #expect(status == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any], "\(output)")
        #expect(object["valid"] as? Bool == false)
        #expect(object["errors"] as? Int == 1)
        #expect(object["warnings"] as? Int == 0)
        let problems = try #require(object["problems"] as? [[String: Any]])
        #expect(problems.map { $0["key_path"] as? String } == ["sensors[0].stop_category"])
        #expect(problems.first?["line"] as? Int == places[0].line)
        #expect(problems.first?["column"] as? Int == places[0].column)
        #expect(problems.first?["allowed"] as? String == "0, 1 or 2")
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
