import Foundation
import Testing

/// `robotd demo --fault …` as a user runs it: each fault injected in the real-time simulator (or the
/// policy test hook) and the reaction robotd's summary reports, beside the simulator's ground truth
/// (docs/safety.md, the hazard table).
@Suite("robotd demo --fault: each fault and its reaction", .serialized)
struct DemoFaultTests {
    struct Case: Sendable, CustomStringConvertible {
        var arguments: [String]
        var latch: String?        // the first latch's cause, nil: never latched
        var category: Int?
        var warning: String?      // a warning that must be in the summary
        var endsLatched: Bool
        var drivesAtEnd: Bool     // moving again at the end (after a reset)
        var refused: String?      // a refused reset with this cause
        var description: String { arguments.joined(separator: " ") }
    }

    static let cases: [Case] = [
        Case(arguments: ["--seconds", "4", "--fault", "range-dead@0"], latch: "silent-sensor", category: 1, endsLatched: true, drivesAtEnd: false),
        Case(arguments: ["--seconds", "5", "--fault", "range-dead@3"], latch: "stale-sensor", category: 1, endsLatched: true, drivesAtEnd: false),
        // The example has a workspace: odometry feeds it, so the encoders are required (a stop).
        Case(arguments: ["--seconds", "5", "--fault", "encoders-dead@3"], latch: "stale-sensor", category: 1,
             endsLatched: true, drivesAtEnd: false),
        Case(arguments: ["--seconds", "5", "--fault", "imu-dead@3"], warning: "stale-sensor (imu)", endsLatched: false, drivesAtEnd: true),
        Case(arguments: ["--seconds", "9", "--fault", "serial-unplug@3+2", "--reset-at", "4", "--reset-at", "6.5"], latch: "connection-lost",
             category: 1, endsLatched: false, drivesAtEnd: true, refused: "connection-lost"),
        Case(arguments: ["--seconds", "9", "--fault", "controller-silent@3+2", "--reset-at", "6.5"], latch: "connection-lost", category: 1,
             endsLatched: false, drivesAtEnd: true),
        Case(arguments: ["--seconds", "9", "--fault", "gamepad-unplug@3+2", "--reset-at", "6.5"], latch: "estop-device-lost", category: 1,
             endsLatched: false, drivesAtEnd: true),
        Case(arguments: ["--seconds", "9", "--fault", "estop-hold@3+2", "--reset-at", "4", "--reset-at", "6.5"], latch: "estop-input", category: 0,
             endsLatched: false, drivesAtEnd: true, refused: "estop-input"),
        Case(arguments: ["--seconds", "5", "--fault", "policy-hang@2"], latch: "dispatch-stall", category: 0, endsLatched: true, drivesAtEnd: false),
        Case(arguments: ["--seconds", "5", "--fault", "policy-spin@2"], latch: "dispatch-stall", category: 0, endsLatched: true, drivesAtEnd: false),
        Case(arguments: ["--seconds", "5", "--fault", "runaway@3"], latch: "runaway", category: 0, endsLatched: true, drivesAtEnd: false),
    ]

    @Test(arguments: cases)
    func when_a_fault_is_injected_expect_its_reaction_in_the_summary(_ fault: Case) throws {
        let lines = try DemoCommandTests().runDemo(fault.arguments).lines
        let summary = try #require(lines.last)
        #expect(summary["kind"] as? String == "summary")
        let latches = summary["latches"] as? [[String: Any]] ?? []
        if let latch = fault.latch {
            #expect(latches.first?["cause"] as? String == latch, "latches: \(latches)")
            #expect(latches.first?["category"] as? Int == fault.category)
        } else {
            #expect(latches.isEmpty, "latches: \(latches)")
        }
        if let warning = fault.warning {
            let warnings = (summary["warnings"] as? [[String: Any]] ?? []).compactMap { $0["fault"] as? String }
            #expect(warnings.contains(warning), "warnings: \(warnings)")
        }
        if let refused = fault.refused {
            let causes = (summary["refused_resets"] as? [[String: Any]] ?? []).compactMap { $0["causes"] as? String }
            #expect(causes.contains { $0.contains(refused) }, "refused resets: \(causes)")
        }
        #expect(summary["latched"] as? Bool == fault.endsLatched)
        let sim = try #require(summary["sim"] as? [String: Any])
        #expect(sim["collisions"] as? Int == 0)
        // The simulator's ground truth (the summary is taken after the final safe stop, so the
        // speed of the last status line tells whether it was driving).
        let last = try #require(lines.dropLast().last?["sim"] as? [String: Any])
        let speed = abs(last["speed_mps"] as? Double ?? 0)
        if fault.drivesAtEnd { #expect(speed > 0.05, "speed \(speed)") } else { #expect(speed < 0.05, "speed \(speed)") }
        if fault.latch == "dispatch-stall" { #expect(summary["stalls"] as? Int == 1) }
    }
}
