import Foundation
import Transports
import TestSupport
import Testing

/// `--robot-id` separates instances of one file only through the default topic prefix
/// (`robotd/<id>/`). A file that fixes `mqtt.prefix` or the remote stop's topics would give two
/// instances one reset topic, and one reset request would release both: such a file is refused in
/// words (unless `--prefix` moves the prefix too), by `robotd run` and `robotd sim` alike.
@Suite("--robot-id: a file whose topics would not follow it is refused", .serialized)
struct RobotIdTopicsTests {
    /// examples/iot-rig-sim.yaml with `edit` applied, written to a fresh folder.
    static func rigFile(_ edit: (inout String) -> Void) throws -> String {
        var text = try Examples.text("iot-rig-sim.yaml")
        let before = text
        edit(&text)
        #expect(text != before, "the edit changed nothing")
        let path = try temporaryDirectory("robotd-robot-id") + "/rig.yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func prefix(_ text: inout String) {
        text = text.replacingOccurrences(of: "  keepalive_s: 5", with: "  keepalive_s: 5\n  prefix: lab/rig/")
    }

    static func fixedResetTopic(_ text: inout String) {
        text = text.replacingOccurrences(of: "    reset_users: [operator]", with: "    reset_users: [operator]\n    reset_topic: lab/reset")
    }

    static func commands(_ file: String) -> [[String]] {
        [["run", "--config", file, "--seconds", "1"], ["sim", "--world", "iot-rig", "--config", file, "--seconds", "1", "--priority", "0"]]
    }

    @Test func when_the_file_sets_mqtt_prefix_expect_robot_id_without_prefix_refused_in_words() throws {
        let file = try Self.rigFile(Self.prefix)
        for command in Self.commands(file) {
            let process = try Subprocess(builtProduct("robotd"), command + ["--robot-id", "rig-1"])
            #expect(process.wait(seconds: 20) != 0, "\(command[0])")
            #expect(process.stderr.contains("--robot-id: the configuration sets mqtt.prefix (`lab/rig/`)"), "\(command[0]): \(process.stderr)")
            #expect(process.stderr.contains("one reset request would release them all"), "\(command[0]): \(process.stderr)")
        }
    }

    @Test(arguments: [["--robot-id", "rig-1"], ["--prefix", "lab/rig-1/"], ["--robot-id", "rig-1", "--prefix", "lab/rig-1/"]])
    func when_the_file_fixes_a_remote_topic_expect_robot_id_or_prefix_refused_in_words(flags: [String]) throws {
        let file = try Self.rigFile(Self.fixedResetTopic)
        for command in Self.commands(file) {
            let process = try Subprocess(builtProduct("robotd"), command + flags)
            #expect(process.wait(seconds: 20) != 0, "\(command[0]) \(flags)")
            #expect(process.stderr.contains("the configuration fixes estop.remote.reset_topic (`lab/reset`)"), "\(command[0]) \(flags): \(process.stderr)")
        }
    }

    /// With `--prefix` as well, the instance's topics are its own: the simulated operator's stop
    /// goes to `lab/rig-1/estop` and latches that instance.
    @Test(.enabled(if: MosquittoBroker.isInstalled, "mosquitto is not installed"))
    func when_prefix_is_given_with_robot_id_expect_the_instance_on_its_own_topics() throws {
        let file = try Self.rigFile(Self.prefix)
        let sim = try Subprocess(builtProduct("robotd"), ["sim", "--world", "iot-rig", "--config", file, "--seconds", "4", "--priority", "0",
                                                          "--json", "--robot-id", "rig-1", "--prefix", "lab/rig-1/", "--remote-stop-at", "2"])
        #expect(sim.wait(seconds: 40) == 0, "\(sim.stderr)")
        #expect(sim.stderr.contains("→ lab/rig-1/estop"), "\(sim.stderr)")
        let summary = try #require(sim.jsonLines.last, "\(sim.stdout)")
        #expect(summary["latched"] as? Bool == true && summary["latch_cause"] as? String == "remote-stop", "\(sim.stdout)")
    }

    @Test func when_prefix_has_a_wildcard_expect_a_usage_error() throws {
        let process = try Subprocess(builtProduct("robotd"), ["run", "--config", Examples.folder.appendingPathComponent("iot-rig-sim.yaml").path,
                                                              "--seconds", "1", "--prefix", "lab/+/"])
        #expect(process.wait(seconds: 20) != 0)
        #expect(process.stderr.contains("--prefix: `lab/+/` is not a topic prefix"), "\(process.stderr)")
    }
}
