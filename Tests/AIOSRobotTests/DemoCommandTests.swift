import Foundation
import TestSupport
import Testing

/// `robotd sim` (formerly `robotd demo`, still its alias) as a user runs it: the real-time
/// simulator on a pty and a FIFO, robotd's control path on the dispatch thread, the guard, motor
/// frames back to the simulator.
@Suite("robotd sim: robotd driving the bundled simulator", .serialized)
struct DemoCommandTests {
    func runDemo(_ arguments: [String], signal: (after: Double, number: Int32)? = nil) throws -> (status: Int32, lines: [[String: Any]]) {
        let products = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let robotd = products.appendingPathComponent("robotd").path
        try #require(FileManager.default.isExecutableFile(atPath: robotd), "robotd is not built next to the tests")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: robotd)
        process.arguments = ["sim"] + arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = Pipe()
        try process.run()
        if let signal {
            usleep(UInt32(signal.after * 1e6))
            kill(process.processIdentifier, signal.number)
        }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        return (process.terminationStatus, lines)
    }

    @Test func when_the_demo_runs_with_an_estop_expect_driving_then_a_latched_stop_and_a_summary() throws {
        let (status, lines) = try runDemo(["--seconds", "5", "--estop-at", "3"])
        #expect(status == 0)
        let summary = try #require(lines.last)
        #expect(summary["kind"] as? String == "summary")
        let sim = try #require(summary["sim"] as? [String: Any])
        #expect((sim["odometer_m"] as? Double ?? 0) > 0.5)  // it drove for 3 s
        #expect(sim["collisions"] as? Int == 0)
        #expect(abs(sim["speed_mps"] as? Double ?? 1) < 0.05)  // stopped by the e-stop
        #expect(summary["estop_latched"] as? Bool == true)
        #expect((summary["verdicts_stop"] as? Int ?? 0) > 10)
        #expect(summary["frames_rejected"] as? Int == 0)
        // Deadline accounting on a shared VM: generous bounds, behaviour not timing.
        let releases = summary["drive_releases"] as? Int ?? 0
        #expect(releases > 200)
        #expect(Double(summary["drive_misses"] as? Int ?? releases) < Double(releases) * 0.05)
        #expect(lines.filter { $0["kind"] as? String == "status" }.count >= 4)
    }

    @Test func when_sigterm_arrives_expect_the_simulated_wheels_de_energised_and_a_clean_exit() throws {
        let (status, lines) = try runDemo(["--seconds", "30"], signal: (after: 2.5, number: SIGTERM))
        #expect(status == 0)
        let summary = try #require(lines.last)
        let sim = try #require(summary["sim"] as? [String: Any])
        #expect(sim["energised"] as? Bool == false)
        #expect((sim["deenergise_commands"] as? Int ?? 0) >= 4)  // start-up safe state and the signal's
        #expect((summary["t_s"] as? Double ?? 99) < 10)
    }

    /// The start-up line says in words what the dispatch thread got (not a Swift value's dump).
    @Test func when_the_dispatch_thread_starts_expect_what_was_applied_in_words() throws {
        let run = try Subprocess(builtProduct("robotd"), ["sim", "--seconds", "1"])
        #expect(run.wait(seconds: 30) == 0)
        let line = try #require(run.stderr.split(separator: "\n").first { $0.hasPrefix("dispatch thread: ") }, "\(run.stderr)")
        // SCHED_FIFO 80 as root (everything applied on this machine), SCHED_OTHER otherwise.
        if getuid() == 0 {
            #expect(line.hasPrefix("dispatch thread: SCHED_FIFO 80 on any CPU, memory locked, cpu_dma_latency 0") || line.contains("; not applied: "))
        } else {
            #expect(line == "dispatch thread: SCHED_OTHER on any CPU")
        }
        #expect(!line.contains("RealtimeReport") && !line.contains("notApplied"))
    }

    @Test func when_run_on_hardware_without_an_estop_device_expect_a_refusal_unless_said_so() throws {
        let (status, _) = try runDemo(["--rover", "/dev/null", "--seconds", "1"])
        #expect(status != 0)  // refused before opening anything
    }

    @Test func when_the_estop_is_pressed_and_reset_expect_the_latch_and_its_cause_in_the_summary() throws {
        let (status, lines) = try runDemo(["--seconds", "5", "--estop-at", "2", "--reset-at", "3.5"])
        #expect(status == 0)
        let summary = try #require(lines.last)
        let latches = try #require(summary["latches"] as? [[String: Any]])
        #expect(latches.count == 1 && latches.first?["cause"] as? String == "estop-input")
        #expect((summary["refused_resets"] as? [Any])?.isEmpty == true)
        #expect(summary["resets"] as? Int == 1 && summary["estop_latched"] as? Bool == false)
    }
}
