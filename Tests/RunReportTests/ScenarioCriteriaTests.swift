import Foundation
import Testing
@testable import RunReport

/// East along y = 0 from x = 0 at 1 m/s for 10 s, sampled at 20 Hz: at t the rover is at (t, 0).
func straightRun(waypoints: [Point2D], collisions: [CollisionEvent] = []) -> RunTrace {
    let samples = (0...200).map { i -> PathSample in
        let t = Double(i) / 20
        return PathSample(t: t, x: t, y: 0, yaw: 0, latched: false)
    }
    let rover = RoverTrace(arena: ArenaShape(minX: -1, minY: -3, maxX: 11, maxY: 3), start: TracePose(x: 0, y: 0, yaw: 0),
                           waypoints: waypoints, samples: samples, collisions: collisions)
    return RunTrace(world: .rover, robot: "r", duration: 10, rover: rover)
}

/// 60 s at 35 °C setpoint: heating up over the first 30 s, then ±0.4 °C around it.
func settledRig() -> RunTrace {
    let samples = stride(from: 0.0, through: 60, by: 1).map { t -> RigSample in
        let temperature = t < 30 ? 20 + t / 2 : 35 + 0.4 * sin(t)
        return RigSample(t: t, temperature: temperature, setpoint: 35, heaterOn: true, fanDuty: 0, latched: false)
    }
    return RunTrace(world: .iotRig, robot: "rig", duration: 60, rig: RigTrace(band: 0.5, samples: samples))
}

func result(_ c: ScenarioCriterion, _ trace: RunTrace, misses: Int = 0) -> CriterionResult {
    ScenarioCriteria([c]).evaluate(trace, criticalMisses: misses)[0]
}

@Suite("Scenario criteria on ground truth")
struct ScenarioCriteriaTests {
    @Test func no_collision() {
        let clean = result(.noCollision, straightRun(waypoints: []))
        #expect(clean.passed && clean.reason == "no collision in 10.0 s")
        let hit = result(.noCollision, straightRun(waypoints: [], collisions: [.init(t: 3, x: 1, y: 2), .init(t: 8, x: 4, y: 0)]))
        #expect(!hit.passed)
        #expect(hit.reason == "2 collisions: first at 3.0 s at (1.00, 2.00) m")
        let rig = result(.noCollision, settledRig())
        #expect(!rig.passed && rig.reason.hasPrefix("no rover in this trace"))
    }

    @Test func reach_waypoint_in_order_and_in_time() {
        // 1: passed 0.1 m off at 2 s; 2: 0.41 m off the line at 5 s; 3: 0.3 m off at 8 s.
        let trace = straightRun(waypoints: [Point2D(x: 2, y: 0.1), Point2D(x: 5, y: 0.41), Point2D(x: 8, y: 0.3)])

        let first = result(.reachWaypoint(waypoint: 1, within: 5), trace)
        #expect(first.passed)
        // Enters the 0.2 m circle √(0.2² − 0.1²) ≈ 0.17 m before x = 2.
        #expect(first.reason == "waypoint 1 within 0.20 m at 1.8 s (limit 5.0 s)")

        let second = result(.reachWaypoint(waypoint: 2, within: 10), trace)
        #expect(!second.passed)
        #expect(second.reason == "waypoint 2 never within 0.20 m after waypoint 1: closest 0.41 m at 5.0 s")

        // 3 is close enough at 0.5 m, but 2 must come first.
        let third = result(.reachWaypoint(waypoint: 3, within: 10, tolerance: 0.5), trace)
        #expect(third.passed)
        #expect(third.reason == "waypoint 3 within 0.50 m at 7.6 s (limit 10.0 s)")
        let blocked = result(.reachWaypoint(waypoint: 3, within: 10), trace)
        #expect(!blocked.passed)
        #expect(blocked.reason == "waypoint 2 never within 0.20 m after waypoint 1 (needed before waypoint 3): closest 0.41 m at 5.0 s")

        let late = result(.reachWaypoint(waypoint: 3, within: 6, tolerance: 0.5), trace)
        #expect(!late.passed)
        #expect(late.reason == "waypoint 3 within 0.50 m only at 7.6 s, after the limit of 6.0 s")

        let missing = result(.reachWaypoint(waypoint: 4, within: 10), trace)
        #expect(!missing.passed && missing.reason == "waypoint 4 not defined: the trace has 3 waypoints")
    }

    @Test func reach_waypoint_respects_the_order() {
        // Waypoint 1 lies at the far end: waypoint 2, passed on the way there, does not count
        // until waypoint 1 has been passed, and the path never comes back.
        // Waypoint 1 is entered at x = 8.77 m, within the segment that ends at 8.8 m (8.8 s).
        let trace = straightRun(waypoints: [Point2D(x: 8.97, y: 0), Point2D(x: 3, y: 0)])
        let r = result(.reachWaypoint(waypoint: 2, within: 10), trace)
        #expect(!r.passed)
        #expect(r.reason == "waypoint 2 never within 0.20 m after waypoint 1: closest 5.80 m at 8.8 s")
        // On its own, waypoint 2 was passed at 2.8 s.
        #expect(result(.reachWaypoint(waypoint: 1, within: 10), straightRun(waypoints: [Point2D(x: 3, y: 0)])).reason
                == "waypoint 1 within 0.20 m at 2.8 s (limit 10.0 s)")
    }

    @Test func never_latched_except_injected() {
        var trace = straightRun(waypoints: [])
        #expect(result(.neverLatchedExceptInjected(), trace).reason == "never latched")
        trace.faults = [FaultWindow(kind: "serial-unplug", start: 5, end: 7), FaultWindow(kind: "range-dead", start: 9)]
        trace.latches = [LatchEvent(t: 5.3, cause: "connection-lost", category: 0),
                         LatchEvent(t: 7.8, cause: "stale-sensor", category: 1),  // within the 1 s grace
                         LatchEvent(t: 9.6, cause: "stale-sensor", category: 1)]  // an open-ended fault
        let inside = result(.neverLatchedExceptInjected(), trace)
        #expect(inside.passed)
        #expect(inside.reason == "3 latches, each within an injected fault's window (+1.0 s grace)")

        let tight = result(.neverLatchedExceptInjected(grace: 0.5), trace)
        #expect(!tight.passed)
        #expect(tight.reason == "latched at 7.8 s (stale-sensor): outside every injected fault's window (+0.5 s grace)")

        trace.latches.append(LatchEvent(t: 2, cause: "estop-input", category: 0))
        trace.latches.append(LatchEvent(t: 3, cause: "workspace", category: 1))
        let early = result(.neverLatchedExceptInjected(), trace)
        #expect(!early.passed)
        #expect(early.reason == "latched at 2.0 s (estop-input): outside every injected fault's window (+1.0 s grace) (and 1 more)")

        trace.faults = []
        #expect(result(.neverLatchedExceptInjected(), trace).reason.hasSuffix("no fault was injected (and 4 more)"))
    }

    @Test func temperature_within_after_settling() {
        let trace = settledRig()
        let ok = result(.temperatureWithin(celsius: 0.5, afterSettling: 30), trace)
        #expect(ok.passed)
        #expect(ok.reason.hasPrefix("within ±0.5 °C after 30.0 s: worst 0.4 °C off"))

        let tight = result(.temperatureWithin(celsius: 0.3, afterSettling: 30), trace)
        #expect(!tight.passed)
        let beyond = trace.rig?.samples.filter { $0.t >= 30 && abs($0.temperature - 35) > 0.3 }.count ?? 0
        #expect(beyond > 0)
        #expect(tight.reason.hasPrefix("\(beyond) of 31 samples after 30.0 s beyond ±0.3 °C: worst 0.4 °C off ("))

        let unsettled = result(.temperatureWithin(celsius: 0.5, afterSettling: 10), trace)
        #expect(!unsettled.passed)
        #expect(unsettled.reason.hasSuffix("worst 10.0 °C off (25.0 °C at 10.0 s, setpoint 35.0 °C)"))

        let tooLate = result(.temperatureWithin(celsius: 0.5, afterSettling: 100), trace)
        #expect(!tooLate.passed)
        #expect(tooLate.reason == "no rig sample after the 100.0 s settling time (samples end at 60.0 s)")

        var broken = trace
        broken.rig?.samples[40].temperature = .nan
        let nan = result(.temperatureWithin(celsius: 0.5, afterSettling: 30), broken)
        #expect(!nan.passed && nan.reason.hasPrefix("1 of 31 samples"))

        #expect(!result(.temperatureWithin(celsius: 1, afterSettling: 0), straightRun(waypoints: [])).passed)
    }

    @Test func zero_critical_misses() {
        let trace = straightRun(waypoints: [])
        let none = result(.zeroCriticalMisses, trace, misses: 0)
        #expect(none.passed && none.reason == "no critical deadline miss")
        let three = result(.zeroCriticalMisses, trace, misses: 3)
        #expect(!three.passed && three.reason == "3 critical deadline misses")
        #expect(result(.zeroCriticalMisses, trace, misses: 1).reason == "1 critical deadline miss")
    }

    @Test func evaluation_gives_one_result_per_criterion_in_order() {
        let criteria = ScenarioCriteria([.noCollision, .zeroCriticalMisses, .reachWaypoint(waypoint: 1, within: 3)])
        let results = criteria.evaluate(straightRun(waypoints: [Point2D(x: 2, y: 0)]), criticalMisses: 2)
        #expect(results.map(\.criterion) == criteria.criteria)
        #expect(results.map(\.passed) == [true, false, true])
    }

    @Test func criteria_in_json_with_snake_case_and_defaults() throws {
        let json = """
        {"criteria":[{"kind":"no_collision"},{"kind":"reach_waypoint","waypoint":3,"within_s":20},
        {"kind":"never_latched_except_injected"},{"kind":"temperature_within","celsius":1.5,"settling_s":600},
        {"kind":"zero_critical_misses"}]}
        """
        let criteria = try JSONDecoder().decode(ScenarioCriteria.self, from: Data(json.utf8))
        #expect(criteria.criteria == [.noCollision, .reachWaypoint(waypoint: 3, within: 20, tolerance: 0.2),
                                      .neverLatchedExceptInjected(grace: 1), .temperatureWithin(celsius: 1.5, afterSettling: 600),
                                      .zeroCriticalMisses])
        let again = try JSONDecoder().decode(ScenarioCriteria.self, from: JSONEncoder().encode(criteria))
        #expect(again == criteria)
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(ScenarioCriterion.self, from: Data(#"{"kind":"fly"}"#.utf8))
        }
        let result = CriterionResult(criterion: .zeroCriticalMisses, passed: true, reason: "no critical deadline miss")
        #expect(String(decoding: try JSONEncoder().encode(result), as: UTF8.self).contains("\"zero_critical_misses\""))
    }
}
