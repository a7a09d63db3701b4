import Foundation
import Testing
import TestSupport
import Transports

/// `robotd demo --world iot-rig` as a user runs it: its own broker, the simulated rig on it, the
/// rig runtime on the dispatch thread, a remote stop and a reset published as an operator would.
@Suite("robotd demo --world iot-rig", .serialized, .enabled(if: MosquittoBroker.isInstalled, "mosquitto is not installed"))
struct RigDemoCommandTests {
    @Test func when_the_rig_demo_runs_with_a_remote_stop_and_reset_expect_heat_then_a_latch_then_release_and_a_summary() throws {
        let robotd = builtProduct("robotd")
        try #require(FileManager.default.isExecutableFile(atPath: robotd), "robotd is not built next to the tests")
        let run = try Subprocess(robotd, ["demo", "--world", "iot-rig", "--json", "--seconds", "8", "--remote-stop-at", "3", "--remote-reset-at", "5"])
        #expect(run.wait(seconds: 120) == 0, "\(run.stderr)")
        let lines = run.jsonLines
        let statuses = lines.filter { $0["kind"] as? String == "status" }
        #expect(statuses.count >= 6)
        func t(_ line: [String: Any]) -> Double { line["t_s"] as? Double ?? -1 }
        func sim(_ line: [String: Any]) -> [String: Any] { line["sim"] as? [String: Any] ?? [:] }
        func approved(_ line: [String: Any], _ channel: String) -> Double? {
            (line["channels"] as? [[String: Any]])?.first { $0["name"] as? String == channel }?["approved"] as? Double
        }
        func task(_ line: [String: Any], _ name: String) -> [String: Any] {
            (line["tasks"] as? [[String: Any]])?.first { $0["name"] as? String == name } ?? [:]
        }
        // Heating before the stop: robotd approved it and the simulated relay is on.
        #expect(statuses.contains { t($0) < 3 && approved($0, "heater") == 1 && sim($0)["heater"] as? Bool == true })
        // Between the stop and the reset: latched for the remote stop, the relay off.
        let stopped = statuses.filter { t($0) > 3.5 && t($0) < 5 }
        #expect(!stopped.isEmpty)
        #expect(stopped.allSatisfy {
            $0["latched"] as? Bool == true && $0["latch_cause"] as? String == "remote-stop" && sim($0)["heater"] as? Bool == false
        })
        // Thermostat figures are there (behaviour, not timing, on a shared VM).
        #expect(statuses.allSatisfy { (task($0, "thermostat")["releases"] as? Int ?? 0) >= 1 })
        let summary = try #require(lines.last)
        #expect(summary["kind"] as? String == "summary")
        #expect(summary["latched"] as? Bool == false && summary["resets"] as? Int == 1 && summary["remote_stops"] as? Int == 1)
        let latches = summary["latches"] as? [[String: Any]] ?? []
        #expect(latches.count == 1 && latches.first?["cause"] as? String == "remote-stop")
        #expect((summary["refused_resets"] as? [Any])?.isEmpty == true)
        // The console's request, in the first reset user's name, naming the latch it saw.
        let requests = summary["remote_resets"] as? [[String: Any]] ?? []
        #expect(requests.count == 1 && requests.first?["user"] as? String == "operator" && requests.first?["outcome"] as? String == "released")
        #expect(sim(summary)["heater"] as? Bool == false)  // the safe stop at the end
        #expect(sim(summary)["ignored"] as? Int == 0)
    }

    @Test func when_rig_options_are_given_for_the_rover_expect_a_usage_error() throws {
        let run = try Subprocess(builtProduct("robotd"), ["demo", "--remote-stop-at", "3"])
        let status = run.wait(seconds: 60)
        #expect(status != nil && status != 0)
    }
}
