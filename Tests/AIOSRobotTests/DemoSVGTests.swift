import Foundation
import TestSupport
import Testing
import Transports
#if canImport(FoundationXML)
import FoundationXML
#endif

/// `robotd demo --svg FILE` as a user runs it: the picture of the run written at the end.
@Suite("robotd demo --svg", .serialized)
struct DemoSVGTests {
    func robotd(_ arguments: [String]) throws -> (status: Int32, stderr: String) {
        let robotd = builtProduct("robotd")
        try #require(FileManager.default.isExecutableFile(atPath: robotd), "robotd is not built next to the tests")
        let run = try Subprocess(robotd, arguments)
        let status = try #require(run.wait(seconds: 120), "robotd did not end: \(run.stderr)")
        return (status, run.stderr)
    }

    @Test func when_the_demo_runs_with_svg_expect_a_well_formed_picture_with_the_path() throws {
        let folder = try temporaryDirectory("robotd-svg")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let file = folder + "/run.svg"
        let (status, stderr) = try robotd(["demo", "--seconds", "3", "--svg", file])
        #expect(status == 0)
        #expect(stderr.contains("svg: \(file)"))
        let data = try Data(contentsOf: URL(fileURLWithPath: file))
        let summary = SVGSummary(data)
        #expect(summary.errors.isEmpty, "not well-formed: \(summary.errors)")
        #expect(summary.root == "svg" && summary.version == "1.1")
        // About 20 samples a second of the rover's ground truth, as one or more polylines.
        #expect(summary.pathPoints.count >= 30)
        // It drove (the simulator's rover starts released): the subtitle says how far, and the path
        // moves across the picture.
        let driven = summary.text.components(separatedBy: " m driven").first?.split(separator: "\n").last
            .flatMap { Double($0.trimmingCharacters(in: .whitespaces)) }
        #expect((driven ?? 0) > 0.3)
        let xs = summary.pathPoints.map(\.x)
        #expect((xs.max() ?? 0) - (xs.min() ?? 0) > 1)
        #expect(summary.text.contains("simulated rover") && summary.text.contains("seed 1"))
    }

    @Test func when_svg_is_asked_into_a_missing_folder_expect_a_refusal_before_running() throws {
        let missing = try robotd(["demo", "--seconds", "30", "--svg", "/nonexistent-folder-robotd/run.svg"])
        #expect(missing.status != 0 && missing.stderr.contains("does not exist"))
    }

    /// `robotd sim ARGS --svg FILE` without --json: its exit status, progress lines and picture.
    private func simWithPicture(_ arguments: [String]) throws -> (status: Int32?, progress: [String], svg: SVGSummary, stderr: String) {
        let folder = try temporaryDirectory("robotd-svg")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let file = folder + "/run.svg"
        let run = try Subprocess(builtProduct("robotd"), ["sim"] + arguments + ["--svg", file])
        let status = run.wait(seconds: 90)
        // The progress lines come before the summary ("summary: …" and its indented lines).
        let progress = run.stdout.split(separator: "\n").map(String.init).prefix { !$0.hasPrefix("summary:") }
        let data = (try? Data(contentsOf: URL(fileURLWithPath: file))) ?? Data()
        return (status, Array(progress), SVGSummary(data), run.stderr)
    }

    /// The rover latched by its gamepad at 3 s and reset at 5 s: one progress line a second in the
    /// documented shape, running, then latched for the e-stop, then running again; the picture marks
    /// the latch and the reset where they happened, the path drawn latched between them.
    @Test func when_the_rover_runs_with_a_latch_and_svg_expect_progress_lines_and_the_latch_marker_in_the_picture() throws {
        let (status, progress, svg, stderr) = try simWithPicture(["--world", "rover", "--seconds", "7", "--estop-at", "3", "--reset-at", "5"])
        #expect(status == 0, "\(stderr)")
        #expect(svg.errors.isEmpty, "not well-formed: \(svg.errors)")
        // Progress: one line per second (1…6 s), each in the documented shape.
        // "   3.0 s  rover ( 0.41, -0.12)   12° 0.25 m/s · wander · deadlines 1200 met, 0 missed · guard 3 clamped, …"
        let roverProgress = #/ *(\d+\.\d) s  rover \( *-?\d+\.\d\d, *-?\d+\.\d\d\) +-?\d+° +-?\d+\.\d\d m/s · [^ ]+( · goal .*)? · deadlines (\d+) met, (\d+) missed · guard \d+ clamped, \d+ rejected, \d+ filtered · (.+)/#
        #expect(progress.count >= 5 && progress.count <= 7, "\(progress)")
        var states: [(t: Double, met: Int, state: String)] = []
        for line in progress {
            guard let m = line.wholeMatch(of: roverProgress) else {
                Issue.record("not a rover progress line: \(line)")
                continue
            }
            states.append((Double(m.1) ?? -1, Int(m.3) ?? -1, String(m.5)))
            #expect(Int(m.4) ?? 99 < max(5, (Int(m.3) ?? 0) / 20), "misses: \(line)")
        }
        #expect(zip(states, states.dropFirst()).allSatisfy { $1.t > $0.t && $1.met > $0.met }, "\(progress)")
        // The guard's state, each change once: running, latched by the gamepad, running after the reset.
        let phases = states.map { $0.state.hasPrefix("LATCHED (estop-input") ? "LATCHED (estop-input)" : $0.state }
            .reduce(into: [String]()) { if $0.last != $1 { $0.append($1) } }
        #expect(phases == ["running", "LATCHED (estop-input)", "running"], "\(progress)")
        // The picture: one latch marker (a diamond) labelled with its cause and time, one reset.
        let latch = svg.content("latch")
        #expect(latch.count == 1 && latch.elements.filter { $0.name == "polygon" }.count == 1)
        func seconds(_ label: String, after prefix: String) -> Double? {
            let text = label.trimmingCharacters(in: .whitespacesAndNewlines)
            guard text.hasPrefix(prefix) else { return nil }
            return Double(text.dropFirst(prefix.count).split(separator: " ").first ?? "")
        }
        let label = svg.content("latch-label").text
        #expect(seconds(label, after: "estop-input ").map { $0 >= 2 && $0 <= 4 } == true, "\(label)")
        let reset = svg.content("reset").elements.filter { $0.name == "text" }.count
        #expect(reset == 1 && svg.content("reset").text.contains("reset "), "\(svg.content("reset").text)")
        #expect(svg.content("path-latched").count >= 1 && svg.content("path-driving").count >= 2)
    }

    /// The rig heating toward its setpoint, an operator's remote stop at 3 s and reset at 5 s:
    /// progress lines with the chamber's temperature; the picture has the temperature line, the
    /// setpoint and its band, and a heater band that ends where the latch begins.
    @Test(.enabled(if: MosquittoBroker.isInstalled, "mosquitto is not installed"))
    func when_the_rig_runs_with_svg_expect_temperature_against_setpoint_with_heater_bands() throws {
        let (status, progress, svg, stderr) = try simWithPicture(["--world", "iot-rig", "--seconds", "8",
                                                                  "--remote-stop-at", "3", "--remote-reset-at", "5"])
        #expect(status == 0, "\(stderr)")
        #expect(svg.errors.isEmpty, "not well-formed: \(svg.errors)")
        #expect(progress.count >= 6 && progress.count <= 8, "\(progress)")
        // "   3.0 s  chamber 21.12 °C (setpoint 35.0) heater on  fan 0.00 · deadlines 40 met, 0 missed · guard …"
        let rigProgress = #/ *(\d+\.\d) s  chamber +-?\d+\.\d\d °C \(setpoint (\d+\.\d)\) heater (on |off) fan \d\.\d\d( · goal .*)? · deadlines (\d+) met, (\d+) missed · guard \d+ clamped, \d+ rejected, \d+ filtered · (.+)/#
        var heater: [(t: Double, on: Bool, state: String)] = []
        for line in progress {
            guard let m = line.wholeMatch(of: rigProgress) else {
                Issue.record("not a rig progress line: \(line)")
                continue
            }
            #expect(m.2 == "35.0")  // examples/iot-rig-sim.yaml's setpoint
            heater.append((Double(m.1) ?? -1, m.3 == "on ", String(m.7)))
        }
        #expect(heater.contains { $0.t < 3 && $0.on }, "\(progress)")
        let stopped = heater.filter { $0.t > 3.5 && $0.t < 5 }
        #expect(!stopped.isEmpty && stopped.allSatisfy { !$0.on && $0.state.hasPrefix("LATCHED (remote-stop") }, "\(progress)")
        // The picture: temperature (ground truth) against the constant setpoint and its band.
        #expect(svg.content("temperature").elements.contains { $0.name == "polyline" })
        #expect(svg.points(of: "setpoint-line").count == 2)
        #expect(svg.content("setpoint-band").count == 1)
        #expect(svg.content("subtitle").text.contains("setpoint 35.0 °C"), "\(svg.content("subtitle").text)")
        // Heater bands: the first runs from the start to the latch (the safe state turned it off).
        let bands = svg.content("heater-on").elements.filter { $0.name == "rect" }
        let latched = try #require(svg.content("latched-time").elements.first { $0.name == "rect" })
        let first = try #require(bands.first)
        let latchStart = latched.number("x"), latchWidth = latched.number("width")
        #expect(latchWidth > 0)
        #expect(abs(first.number("x") + first.number("width") - latchStart) < 0.25 * latchWidth,
                "heater band \(first.attributes), latched \(latched.attributes)")
        #expect(svg.content("latch-label").text.contains("remote-stop"))
    }
}

/// What the test needs from the file: parse errors (XMLParser on Linux returns true after some of
/// them, so each reported one counts, and tags are balanced by hand), the root, the path's points,
/// and what each `class` holds (the element itself and everything inside it, and its text).
private final class SVGSummary: NSObject, XMLParserDelegate {
    struct Element {
        let name: String
        let attributes: [String: String]
        func number(_ key: String) -> Double { Double(attributes[key] ?? "") ?? .nan }
    }

    struct Content {
        /// Elements carrying the class.
        var count = 0
        /// Those elements and every element inside them, in document order.
        var elements: [Element] = []
        var text = ""
    }

    var errors: [String] = []
    var root: String?
    var version: String?
    var pathPoints: [(x: Double, y: Double)] = []
    var text = ""
    private var byClass: [String: Content] = [:]
    private var open: [(name: String, cls: String?)] = []

    init(_ data: Data) {
        super.init()
        let parser = XMLParser(data: data)
        parser.delegate = self
        if !parser.parse() && errors.isEmpty { errors.append("parse failed") }
        if !open.isEmpty { errors.append("unclosed \(open.map(\.name))") }
    }

    func content(_ cls: String) -> Content { byClass[cls] ?? Content() }

    /// The points of the first polyline carrying `cls`.
    func points(of cls: String) -> [(x: Double, y: Double)] {
        guard let line = content(cls).elements.first(where: { $0.name == "polyline" }) else { return [] }
        return (line.attributes["points"] ?? "").split(separator: " ").compactMap { pair in
            let xy = pair.split(separator: ",")
            guard xy.count == 2, let x = Double(xy[0]), let y = Double(xy[1]) else { return nil }
            return (x, y)
        }
    }

    func parser(_ parser: XMLParser, parseErrorOccurred parseError: Error) { errors.append("\(parseError)") }

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        if root == nil {
            root = name
            version = attributes["version"]
        }
        let cls = attributes["class"]
        open.append((name, cls))
        for c in Set(open.compactMap(\.cls)) { byClass[c, default: Content()].elements.append(Element(name: name, attributes: attributes)) }
        if let cls { byClass[cls, default: Content()].count += 1 }
        text += "\n"  // one element's text per line
        if name == "polyline", cls?.hasPrefix("path-") == true {
            for pair in (attributes["points"] ?? "").split(separator: " ") {
                let xy = pair.split(separator: ",")
                if xy.count == 2, let x = Double(xy[0]), let y = Double(xy[1]) { pathPoints.append((x, y)) }
            }
        }
    }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        if open.last?.name != name { errors.append("</\(name)> closes <\(open.last?.name ?? "nothing")>") }
        _ = open.popLast()
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        text += string
        for c in Set(open.compactMap(\.cls)) { byClass[c, default: Content()].text += string }
    }
}
