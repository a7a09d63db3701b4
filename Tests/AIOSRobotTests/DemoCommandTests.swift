import Foundation
import TestSupport
import Testing

/// `robotd sim` (formerly `robotd demo`, still its alias) as a user runs it: the real-time
/// simulator on a pty and a FIFO, robotd's control path on the dispatch thread, the guard, motor
/// frames back to the simulator.
@Suite("robotd sim: robotd driving the bundled simulator", .serialized)
struct DemoCommandTests {
    func runDemo(_ arguments: [String], signal: (after: Double, number: Int32)? = nil) throws -> (status: Int32, lines: [[String: Any]]) {
        let robotd = builtProduct("robotd")
        try #require(FileManager.default.isExecutableFile(atPath: robotd), "robotd is not built next to the tests")
        let run = try Subprocess(robotd, ["sim", "--json"] + arguments)
        if let signal {
            usleep(UInt32(signal.after * 1e6))
            run.signal(signal.number)
        }
        let status = try #require(run.wait(seconds: 120), "robotd sim did not end: \(run.stderr)")
        return (status, run.jsonLines)
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
        #expect(summary["latched"] as? Bool == true)
        #expect((summary["verdicts_stop"] as? Int ?? 0) > 10)
        #expect(sim["rejected_frames"] as? Int == 0)
        // Deadline accounting on a shared VM: generous bounds, behaviour not timing.
        let tasks = summary["tasks"] as? [[String: Any]] ?? []
        let wander = try #require(tasks.first { $0["name"] as? String == "wander" })
        let releases = wander["releases"] as? Int ?? 0
        #expect(releases > 200)
        #expect(Double(wander["misses"] as? Int ?? releases) < Double(releases) * 0.05)
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


    /// `robotd sim` never opens a real device: a configuration naming one (the hardware example's
    /// `usb-serial:` port, a /dev path written into the simulator's example) is refused before
    /// robotd starts, naming the input and the path.
    @Test func when_the_configuration_names_a_hardware_device_expect_a_refusal_before_robotd_starts() throws {
        let folder = try temporaryDirectory("robotd-sim-hardware")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let edited = folder + "/rover.yaml"
        try Examples.text("rover-sim.yaml").replacingOccurrences(of: "/tmp/robotd-sim/gamepad", with: "/dev/input/event0")
            .write(toFile: edited, atomically: true, encoding: .utf8)
        let hardware = Examples.folder.appendingPathComponent("rover-hardware.yaml").path
        for (file, refused) in [(hardware, "input controller: usb-serial:A50285BI is not a simulator path"),
                                (edited, "input gamepad: /dev/input/event0 is not a simulator path")] {
            let run = try Subprocess(builtProduct("robotd"), ["sim", "--config", file, "--seconds", "20"])
            let status = run.wait(seconds: 30)
            #expect(status != nil && status != 0, "\(file): exit \(String(describing: status))")
            #expect(run.stderr.contains(refused) && run.stderr.contains("robotd sim never opens a real device"), "\(run.stderr)")
            // Refused before the daemon: no dispatch thread, no progress line.
            #expect(!run.stderr.contains("dispatch thread: ") && run.stdout.isEmpty, "\(run.stdout)")
        }
    }

    @Test func when_the_estop_is_pressed_and_reset_expect_the_latch_and_its_cause_in_the_summary() throws {
        let (status, lines) = try runDemo(["--seconds", "5", "--estop-at", "2", "--reset-at", "3.5"])
        #expect(status == 0)
        let summary = try #require(lines.last)
        let latches = try #require(summary["latches"] as? [[String: Any]])
        #expect(latches.count == 1 && latches.first?["cause"] as? String == "estop-input")
        #expect((summary["refused_resets"] as? [Any])?.isEmpty == true)
        #expect(summary["resets"] as? Int == 1 && summary["latched"] as? Bool == false)
    }
}
