import Foundation
import Testing
@testable import RunReport

/// A rover run built by hand: straight east along y = 0 from (−4, 0) at 1 m/s, sampled at 20 Hz,
/// latched from 4 s to 6 s, with an obstacle, two waypoints, a collision and a fault.
func roverTrace(cause: String = "estop-input", robot: String = "sim-rover", seconds: Double = 8,
                hz: Double = 20) -> RunTrace {
    let n = Int(seconds * hz) + 1
    let samples = (0..<n).map { i -> PathSample in
        let t = Double(i) / hz
        return PathSample(t: t, x: -4 + t, y: 0, yaw: 0, latched: t >= 4 && t < 6)
    }
    let rover = RoverTrace(
        arena: ArenaShape(minX: -5, minY: -4, maxX: 5, maxY: 4, obstacles: [.init(x: 2, y: 0.5, radius: 0.4)]),
        start: TracePose(x: -4, y: 0, yaw: 0),
        waypoints: [Point2D(x: -2, y: 0.1), Point2D(x: 1, y: 0)],
        samples: samples,
        collisions: [CollisionEvent(t: 7, x: 3, y: 0)])
    return RunTrace(world: .rover, robot: robot, duration: seconds, seed: 42, rover: rover,
                    latches: [LatchEvent(t: 4, x: 0, y: 0, cause: cause, category: 0)],
                    resets: [ResetEvent(t: 6)],
                    faults: [FaultWindow(kind: "serial-unplug", start: 3.5, end: 5)])
}

/// A rig run: heating from 20 °C toward 35 °C, the heater on for [0, 20) and [30, 40), a latch at
/// 45 s (remote stop), a reset at 50 s.
func rigTrace(seconds: Double = 60) -> RunTrace {
    let samples = stride(from: 0.0, through: seconds, by: 0.5).map { t -> RigSample in
        let heater = t < 20 || (t >= 30 && t < 40)
        return RigSample(t: t, temperature: 20 + 15 * (1 - exp(-t / 12)), setpoint: 35, heaterOn: heater,
                         fanDuty: t > 25 ? 0.3 : 0, latched: t >= 45 && t < 50)
    }
    return RunTrace(world: .iotRig, robot: "sim-rig", duration: seconds, seed: 7, rig: RigTrace(band: 0.5, samples: samples),
                    latches: [LatchEvent(t: 45, cause: "remote-stop", category: 0)], resets: [ResetEvent(t: 50)],
                    faults: [FaultWindow(kind: "broker-stop", start: 10, end: 14)])
}

func parsed(_ svg: String) throws -> XMLNode {
    let (root, error) = XMLNode.parse(svg)
    #expect(error == nil, "not well-formed XML: \(error ?? "")")
    return try #require(root)
}

@Suite("RunSVG: the picture of a run")
struct RunSVGTests {
    @Test func when_xml_is_broken_expect_the_checker_to_say_so() {
        // The well-formedness check below must be able to fail.
        #expect(XMLNode.parse("<svg><g></svg>").error != nil)
        #expect(XMLNode.parse("<svg><g>").error != nil)
        #expect(XMLNode.parse("<svg></svg><svg/>").error != nil)
        #expect(XMLNode.parse("<svg a=\"1\" a=\"2\"/>").error != nil)
        #expect(XMLNode.parse("<svg><text>a < b</text></svg>").error != nil)
        #expect(XMLNode.parse("<svg><text>a &lt; b</text></svg>").error == nil)
    }

    @Test func when_a_rover_run_is_drawn_expect_a_well_formed_svg_with_every_path_point() throws {
        let trace = roverTrace()
        let svg = RunSVG.render(trace)
        #expect(svg.hasPrefix("<?xml version=\"1.0\" encoding=\"UTF-8\""))
        let root = try parsed(svg)
        #expect(root.name == "svg")
        #expect(root.attributes["version"] == "1.1")
        #expect(root.attributes["xmlns"] == "http://www.w3.org/2000/svg" || svg.contains("xmlns=\"http://www.w3.org/2000/svg\""))
        // No external assets: nothing refers outside the file.
        #expect(!svg.contains("href"))

        let driving = root.withClass("path-driving"), latched = root.withClass("path-latched")
        #expect(driving.count == 2)  // before and after the latch
        #expect(latched.count == 1)
        let samples = try #require(trace.rover?.samples)
        // Each stretch repeats the next one's first point (a continuous line): 2 joins.
        let points = (driving + latched).flatMap(polylinePoints)
        #expect(points.count == samples.count + 2)
        // The drawing keeps the geometry: eastward along one line, so x rises and y stays.
        let first = polylinePoints(driving[0])
        #expect(zip(first, first.dropFirst()).allSatisfy { $0.1.x > $0.0.x && abs($0.1.y - $0.0.y) < 0.01 })
        // 1 m of arena is the same number of pixels across as the sample spacing says.
        let spacing = first[1].x - first[0].x
        let metre = spacing * 20
        let obstacle = try #require(root.withClass("obstacles").first?.elements("circle").first)
        #expect(abs((Double(obstacle.attributes["r"] ?? "") ?? 0) - 0.4 * metre) < 0.05)

        let latch = try #require(root.withClass("latch").first)
        #expect(latch.allText.contains("estop-input"))
        #expect(latch.elements("polygon").count == 1)  // the marker
        #expect(root.withClass("collision").first?.allText.contains("collision 7.0 s") == true)
        #expect(root.withClass("reset").first?.allText.contains("reset 6.0 s") == true)
        #expect(root.withClass("start").first?.elements("polygon").count == 1)  // the arrow head
        #expect(root.withClass("waypoint-number").map(\.text) == ["1", "2"])
        #expect(root.withClass("fault-window").first?.elements("rect").isEmpty == false)
        let title = try #require(root.withClass("title").first?.text)
        #expect(title.contains("sim-rover") && title.contains("8.0 s") && title.contains("seed 42"))
    }

    @Test func when_labels_hold_markup_characters_expect_them_escaped() throws {
        let trace = roverTrace(cause: "a<b & \"c\">d", robot: "robot <1> & co")
        let svg = RunSVG.render(trace)
        #expect(svg.contains("a&lt;b &amp; &quot;c&quot;&gt;d"))
        #expect(!svg.contains("a<b"))
        #expect(!svg.contains("robot <1>"))
        let root = try parsed(svg)
        // Parsed back, the words are the original ones.
        #expect(root.withClass("latch-label").first?.text.hasPrefix("a<b & \"c\">d") == true)
        #expect(root.withClass("title").first?.text.hasPrefix("robot <1> & co") == true)
    }

    @Test func when_text_holds_characters_xml_cannot_carry_expect_a_well_formed_file_still() throws {
        let svg = RunSVG.render(roverTrace(cause: "bad\u{01}byte\u{FFFE}"))
        let root = try parsed(svg)
        #expect(root.withClass("latch-label").first?.text.contains("bad\u{FFFD}byte") == true)
    }

    @Test func when_a_run_is_long_expect_the_path_thinned_but_the_latch_change_kept() throws {
        // An hour at 20 Hz: 72 001 samples.
        let trace = roverTrace(seconds: 3600)
        let svg = RunSVG.render(trace)
        let root = try parsed(svg)
        let points = (root.withClass("path-driving") + root.withClass("path-latched")).flatMap(polylinePoints)
        #expect(points.count <= 2100)
        #expect(points.count >= 1000)
        #expect(root.withClass("path-latched").count == 1)
        #expect(svg.utf8.count < 200_000)
    }

    @Test func when_samples_hold_non_finite_values_expect_them_left_out() throws {
        var trace = roverTrace()
        trace.rover?.samples[10].x = .nan
        trace.rover?.samples[11].y = .infinity
        let root = try parsed(RunSVG.render(trace))
        let points = root.withClass("path-driving").flatMap(polylinePoints)
        #expect(points.allSatisfy { $0.x.isFinite && $0.y.isFinite })
        #expect(!RunSVG.render(trace).contains("nan"))
    }

    @Test func when_a_rig_run_is_drawn_expect_heater_bands_setpoint_fan_and_markers() throws {
        let trace = rigTrace()
        let root = try parsed(RunSVG.render(trace))
        let bands = try #require(root.withClass("heater-on").first).elements("rect")
        #expect(bands.count == 2)  // [0, 20) and [30, 40)
        // The first band spans a third of the second's start: 0…20 s against 30…40 s.
        let x0 = Double(bands[0].attributes["x"] ?? "") ?? 0, w0 = Double(bands[0].attributes["width"] ?? "") ?? 0
        let x1 = Double(bands[1].attributes["x"] ?? "") ?? 0, w1 = Double(bands[1].attributes["width"] ?? "") ?? 0
        #expect(abs(w0 - 2 * w1) < 0.1)
        #expect(abs((x1 - x0) - 1.5 * w0) < 0.1)
        // Held values as steps through their changes: a constant setpoint is one segment, the fan
        // 0 until 25.5 s and 0.3 after it a step of four points.
        #expect(polylinePoints(try #require(root.withClass("setpoint-line").first)).count == 2)
        #expect(root.withClass("setpoint-band").count == 1)
        let fan = polylinePoints(try #require(root.withClass("fan-duty").first))
        #expect(fan.count == 4)
        #expect(fan.count == 4 && fan[1].x == fan[2].x && fan[0].y == fan[1].y && fan[2].y < fan[1].y)
        #expect(root.withClass("temperature").count == 2 && root.withClass("temperature-latched").count == 1)
        #expect(root.withClass("latch").first?.allText.contains("remote-stop 45.0 s") == true)
        #expect(root.withClass("reset").first?.allText.contains("reset 50.0 s") == true)
        #expect(root.withClass("fault-window").first?.allText.contains("broker-stop") == true)
        #expect(root.withClass("latched-time").first?.elements("rect").count == 1)
    }

    @Test func when_a_rig_run_is_long_expect_a_small_file() throws {
        // An hour at the rig's 10 Hz: 36 001 samples.
        var trace = rigTrace(seconds: 3600)
        trace.rig?.samples = stride(from: 0.0, through: 3600, by: 0.1).map {
            RigSample(t: $0, temperature: 35 + sin($0 / 30), setpoint: 35, heaterOn: $0 < 3600 && Int($0 / 60) % 2 == 0, fanDuty: 0, latched: false)
        }
        let svg = RunSVG.render(trace)
        let root = try parsed(svg)
        #expect(polylinePoints(try #require(root.withClass("temperature").first)).count <= 2100)
        #expect(root.withClass("heater-on").first?.elements("rect").count == 30)
        #expect(svg.utf8.count < 200_000)
    }

    @Test func when_a_trace_has_no_data_expect_a_valid_svg_that_says_so() throws {
        let rover = try parsed(RunSVG.render(RunTrace(world: .rover, robot: "x", duration: 0)))
        #expect(rover.allText.contains("no rover data"))
        let rig = try parsed(RunSVG.render(RunTrace(world: .iotRig, robot: "x", duration: 5)))
        #expect(rig.allText.contains("no rig data"))
    }

    @Test func when_numbers_are_formatted_expect_plain_decimals() {
        #expect(SVGCanvas.num(12.5) == "12.5")
        #expect(SVGCanvas.num(3) == "3")
        #expect(SVGCanvas.num(-0.001) == "0")
        #expect(SVGCanvas.num(-0.25) == "-0.25")
        #expect(SVGCanvas.fixed(12, decimals: 1) == "12.0")
        #expect(SVGCanvas.fixed(0.05, decimals: 2) == "0.05")
        #expect(SVGCanvas.fixed(-3.14159, decimals: 3) == "-3.142")
        #expect(SVGCanvas.fixed(.nan) == "?")
        #expect(SVGCanvas.fixed(1e300, decimals: 0) == "1000000000000")
    }

    @Test func when_a_trace_is_encoded_expect_snake_case_keys_and_a_round_trip() throws {
        let trace = rigTrace(seconds: 2)
        let data = try JSONEncoder().encode(trace)
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains("\"heater_on\"") && text.contains("\"fan_duty\""))
        #expect(try JSONDecoder().decode(RunTrace.self, from: data) == trace)
        let rover = roverTrace(seconds: 1)
        let roverText = String(decoding: try JSONEncoder().encode(rover), as: UTF8.self)
        #expect(roverText.contains("\"body_radius\"") && roverText.contains("\"min_x\""))
    }

    @Test func when_an_event_has_no_position_expect_it_from_the_path() {
        let rover = roverTrace().rover
        let p = rover?.position(at: 2.025)
        #expect(abs((p?.x ?? 0) - (-1.975)) < 1e-9)
        #expect(rover?.position(at: 30) == nil)  // beyond the samples
    }
}

@Suite("RunSVG: latches close together")
struct LatchClusterTests {
    @Test func when_one_fault_latches_twice_within_milliseconds_expect_one_marker_naming_both() throws {
        var trace = roverTrace()
        trace.latches = [LatchEvent(t: 4.926, x: 0, y: 0, cause: "connection-lost", category: 1),
                         LatchEvent(t: 4.940, x: 0, y: 0, cause: "actuator-failure", category: 0),
                         LatchEvent(t: 6.5, x: 0.5, y: 0, cause: "estop-input", category: 0)]
        let root = try parsed(RunSVG.render(trace))
        let labels = root.withClass("latch-label").map(\.text)
        #expect(labels == ["connection-lost + actuator-failure 4.9 s", "estop-input 6.5 s"])
        // Each latch keeps its own line in the marker's tooltip.
        let tooltip = root.withClass("latch").first?.elements("title").first?.text ?? ""
        #expect(tooltip.contains("4.93 s: connection-lost, stop category 1") && tooltip.contains("4.94 s: actuator-failure, stop category 0"))
    }
}
