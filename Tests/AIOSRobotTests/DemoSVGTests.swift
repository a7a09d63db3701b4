import Foundation
import TestSupport
import Testing
#if canImport(FoundationXML)
import FoundationXML
#endif

/// `robotd demo --svg FILE` as a user runs it: the picture of the run written at the end.
@Suite("robotd demo --svg", .serialized)
struct DemoSVGTests {
    func robotd(_ arguments: [String]) throws -> (status: Int32, stderr: String) {
        let products = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let robotd = products.appendingPathComponent("robotd").path
        try #require(FileManager.default.isExecutableFile(atPath: robotd), "robotd is not built next to the tests")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: robotd)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        let err = Pipe()
        process.standardError = err
        try process.run()
        let data = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
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

    @Test func when_svg_is_asked_on_hardware_or_into_a_missing_folder_expect_a_refusal_before_running() throws {
        let hardware = try robotd(["demo", "--rover", "/dev/null", "--no-estop-device", "--seconds", "1", "--svg", "/tmp/x.svg"])
        #expect(hardware.status != 0 && hardware.stderr.contains("ground truth"))
        let missing = try robotd(["demo", "--seconds", "30", "--svg", "/nonexistent-folder-robotd/run.svg"])
        #expect(missing.status != 0 && missing.stderr.contains("does not exist"))
    }
}

/// What the test needs from the file: parse errors (XMLParser on Linux returns true after some of
/// them, so each reported one counts, and tags are balanced by hand), the root, the path's points.
private final class SVGSummary: NSObject, XMLParserDelegate {
    var errors: [String] = []
    var root: String?
    var version: String?
    var pathPoints: [(x: Double, y: Double)] = []
    var text = ""
    private var open: [String] = []

    init(_ data: Data) {
        super.init()
        let parser = XMLParser(data: data)
        parser.delegate = self
        if !parser.parse() && errors.isEmpty { errors.append("parse failed") }
        if !open.isEmpty { errors.append("unclosed \(open)") }
    }

    func parser(_ parser: XMLParser, parseErrorOccurred parseError: Error) { errors.append("\(parseError)") }

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        if root == nil {
            root = name
            version = attributes["version"]
        }
        open.append(name)
        text += "\n"  // one element's text per line
        if name == "polyline", attributes["class"]?.hasPrefix("path-") == true {
            for pair in (attributes["points"] ?? "").split(separator: " ") {
                let xy = pair.split(separator: ",")
                if xy.count == 2, let x = Double(xy[0]), let y = Double(xy[1]) { pathPoints.append((x, y)) }
            }
        }
    }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        if open.last != name { errors.append("</\(name)> closes <\(open.last ?? "nothing")>") }
        _ = open.popLast()
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }
}
