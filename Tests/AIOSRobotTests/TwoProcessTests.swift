import Foundation
import TestSupport
import Testing

/// robotd-sim and `robotd run --config` as two processes over the real pty and FIFO, as a user
/// runs them in two terminals; judged on the simulator's ground truth (its own output).
@Suite("Two processes: robotd-sim and robotd run over a real pty", .serialized)
struct TwoProcessTests {
    /// The rover example with the simulator's default folder replaced by `folder`.
    static func configuration(in folder: String) throws -> String {
        let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("examples/rover-sim.yaml")
        let text = try String(contentsOf: example, encoding: .utf8).replacingOccurrences(of: "/tmp/robotd-sim/", with: folder + "/")
        let path = folder + "/rover.yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The serial adapter pulled for 2 s: robotd latches `connection-lost` (the wheels stop: ground
    /// truth), refuses nothing it should not, and after the link is back a reset lets it drive again.
    @Test func when_robotd_run_drives_robotd_sim_and_the_cable_is_pulled_expect_a_safe_stop_then_driving_after_a_reset() throws {
        let folder = try temporaryDirectory()
        let sim = try Subprocess(builtProduct("robotd-sim"), ["--world", "rover", "--directory", folder, "--seconds", "40",
                                                             "--fault", "serial-unplug@6+2", "--reset-at", "11"])
        defer { sim.signal(SIGTERM); _ = sim.wait(seconds: 10) }
        #expect(sim.waitFor("\"kind\":\"ready\""), "\(sim.stderr)")
        let run = try Subprocess(builtProduct("robotd"), ["run", "--config", try Self.configuration(in: folder), "--seconds", "15"])
        #expect(run.wait(seconds: 40) == 0, "\(run.stderr)")
        let summary = try #require(run.jsonLines.last { $0["kind"] as? String == "summary" }, "\(run.stdout)")
        let latches = (summary["latches"] as? [[String: Any]] ?? []).compactMap { $0["cause"] as? String }
        #expect(latches.contains("connection-lost"), "latches \(latches)")
        #expect(summary["latched"] as? Bool == false && (summary["resets"] as? Int ?? 0) >= 1, "\(summary)")
        // Ground truth from the simulator's own lines: it drove, stopped while unplugged, drove again.
        let states = sim.jsonLines.filter { $0["kind"] as? String == "rover" }.compactMap { $0["state"] as? [String: Any] }
        func at(_ t: Double) -> [String: Any]? { states.first { ($0["time_s"] as? Double ?? 0) >= t } }
        let before = try #require(at(5)), unplugged = try #require(at(7.5)), after = try #require(at(14))
        #expect(abs(before["speed_mps"] as? Double ?? 0) > 0.05 || abs(before["yaw_rate"] as? Double ?? 0) > 0.05)
        #expect(unplugged["energised"] as? Bool == false && abs(unplugged["speed_mps"] as? Double ?? 1) < 0.05, "\(unplugged)")
        #expect(after["energised"] as? Bool == true && (after["odometer_m"] as? Double ?? 0) > (unplugged["odometer_m"] as? Double ?? 0) + 0.2)
        #expect(states.allSatisfy { $0["collisions"] as? Int == 0 })
    }
}
