import Codecs
import Foundation
import RobotSim
import Synchronization
import TestSupport
import Testing
import Transports

/// `robotd-sim` as a user runs it, an outside peer: it announces its paths (or broker and
/// topics), a host reads real frames or readings there, and it cleans up on SIGTERM.
@Suite("robotd-sim: the simulator as its own program", .serialized)
struct RobotdSimCommandTests {
    func readyLine(_ sim: Subprocess) throws -> [String: Any] {
        try #require(sim.waitFor(#"{"kind":"ready""#, seconds: 20), "no ready line; stderr: \(sim.stderr)")
        return try #require(sim.jsonLines.first { $0["kind"] as? String == "ready" })
    }

    /// Opens the announced port the way robotd does (termios, raw) and decodes frames with the
    /// shared decoder; returns the valid frames' types seen within `seconds`.
    func frameTypes(at path: String, seconds: Double) throws -> [UInt8] {
        let port = try TermiosSerialPort(path: path, settings: SerialSettings())
        defer { port.close() }
        var decoder = FrameDecoder()
        var types: [UInt8] = []
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
        defer { buffer.deallocate() }
        let begin = Date()
        while Date().timeIntervalSince(begin) < seconds && types.count < 50 {
            let n = try port.read(into: buffer, timeoutMilliseconds: 20)
            decoder.feed(UnsafeRawBufferPointer(rebasing: buffer[0..<n])) { types.append($0.type) }
        }
        return types
    }

    @Test func when_the_rover_runs_expect_a_live_port_at_the_announced_path_and_cleanup_on_sigterm() throws {
        let directory = try temporaryDirectory("robotd-sim-rover")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // Left by a run that was killed: a dangling link and an old FIFO, both replaced.
        #expect(symlink("/nonexistent/pts/99", directory + "/rover") == 0)
        #expect(mkfifo(directory + "/gamepad", 0o600) == 0)
        let sim = try Subprocess(builtProduct("robotd-sim"), ["--world", "rover", "--directory", directory, "--status-every", "0.5"])
        let ready = try readyLine(sim)
        #expect(ready["rover"] as? String == directory + "/rover")
        #expect(ready["gamepad"] as? String == directory + "/gamepad")
        let pty = try #require(ready["pty"] as? String)
        #expect(pty.hasPrefix("/dev/pts/"))
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: directory + "/rover")) == pty)
        #expect(sim.stderr.contains("robotd echo serial \(directory)/rover --codec frame"))

        let types = try frameTypes(at: directory + "/rover", seconds: 5)
        #expect(types.contains(Frame.MessageType.imuSample.rawValue))
        #expect(types.contains(Frame.MessageType.range.rawValue) || types.contains(Frame.MessageType.wheelEncoders.rawValue))

        // A second robotd-sim on the same directory is refused, and leaves the first one's paths.
        let second = try Subprocess(builtProduct("robotd-sim"), ["--directory", directory, "--seconds", "1"])
        #expect(second.wait(seconds: 20) == 1)
        #expect(second.stderr.contains("another robotd-sim (pid \(sim.process.processIdentifier)) is using \(directory)"))
        #expect(FileManager.default.fileExists(atPath: directory + "/rover"))

        sim.signal(SIGTERM)
        #expect(sim.wait(seconds: 20) == 0)
        #expect(sim.jsonLines.last?["kind"] as? String == "summary")
        for name in ["rover", "gamepad", "robotd-sim.lock"] {
            var info = stat()
            #expect(lstat(directory + "/" + name, &info) != 0, "\(name) is still there")
        }
    }

    /// Without --directory: the fixed paths the simulator examples name, /tmp/robotd-sim/rover and
    /// /tmp/robotd-sim/gamepad, and the folder gone at exit. Not run while /tmp/robotd-sim exists (a
    /// robotd-sim of the user's, or of another test run): this test must not take over or delete
    /// paths that are not its own; a robotd-sim started meanwhile holds the folder's lock, and then
    /// this one is refused and the test says so and stops.
    /// Under CI (a fresh machine, nothing else running) it always runs, and a taken folder fails.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["CI"] == "true" || !FileManager.default.fileExists(atPath: "/tmp/robotd-sim"),
                   "/tmp/robotd-sim exists: another robotd-sim may be using it"))
    func when_no_directory_is_given_expect_the_fixed_paths_of_the_examples_and_the_folder_removed_at_exit() throws {
        let sim = try Subprocess(builtProduct("robotd-sim"), ["--seconds", "60", "--status-every", "0.5"])
        _ = sim.waitFor(#"{"kind":"ready""#, seconds: 20)
        if sim.stderr.contains("another robotd-sim") {
            if ProcessInfo.processInfo.environment["CI"] == "true" { Issue.record("another robotd-sim holds /tmp/robotd-sim: \(sim.stderr)") }
            print("RobotdSimCommandTests: another robotd-sim took /tmp/robotd-sim meanwhile; the default paths were not tested")
            return
        }
        let ready = try readyLine(sim)
        #expect(ready["rover"] as? String == "/tmp/robotd-sim/rover")
        #expect(ready["gamepad"] as? String == "/tmp/robotd-sim/gamepad")
        let pty = try #require(ready["pty"] as? String)
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: "/tmp/robotd-sim/rover")) == pty)
        var info = stat()
        #expect(lstat("/tmp/robotd-sim/gamepad", &info) == 0 && info.st_mode & S_IFMT == S_IFIFO)
        // The paths are the ones the examples name, so the example drives it as it is.
        #expect(sim.stderr.contains("drive it:  robotd run --config examples/rover-sim.yaml"), "\(sim.stderr)")
        let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("examples/rover-sim.yaml")
        let yaml = try String(contentsOf: example, encoding: .utf8)
        #expect(yaml.contains("path: /tmp/robotd-sim/rover") && yaml.contains("path: /tmp/robotd-sim/gamepad"))
        // A live port: the rover's frames come out of it.
        #expect(try frameTypes(at: "/tmp/robotd-sim/rover", seconds: 3).contains(Frame.MessageType.imuSample.rawValue))
        sim.signal(SIGTERM)
        #expect(sim.wait(seconds: 20) == 0)
        #expect(!FileManager.default.fileExists(atPath: "/tmp/robotd-sim"), "robotd-sim created /tmp/robotd-sim and left it")
    }

    /// --help lists the fault kinds robotd-sim takes — the simulator's, derived from the code — and
    /// each one is accepted; robotd's own policy faults are not listed and are refused with where
    /// they belong.
    @Test func when_help_is_asked_expect_only_the_fault_kinds_it_accepts() throws {
        let help = try Subprocess(builtProduct("robotd-sim"), ["--help"])
        #expect(help.wait(seconds: 20) == 0)
        let flat = help.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        let start = try #require(flat.range(of: "Kinds: "), "\(help.stdout)")
        let listed = flat[start.upperBound...].prefix { $0 != "." }.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(Set(listed) == Set(SimulatorFault.Kind.allCases.map(\.rawValue)), "\(listed)")
        #expect(!help.stdout.contains("policy-"))
        let folder = try temporaryDirectory("robotd-sim-kinds")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        for kind in listed {
            // broker-stop is the rig's: on a broker nobody listens at (robotd-sim retries, then ends).
            let world = kind == "broker-stop" ? ["--world", "iot-rig", "--broker", "127.0.0.1:9"] : ["--directory", folder]
            let run = try Subprocess(builtProduct("robotd-sim"), world + ["--seconds", "0.5", "--fault", "\(kind)@30+1"])
            #expect(run.wait(seconds: 30) == 0, "--fault \(kind)@30+1: \(run.stderr)")
        }
        for kind in ["policy-hang", "policy-spin"] {
            let refused = try Subprocess(builtProduct("robotd-sim"), ["--directory", folder, "--seconds", "0.5", "--fault", "\(kind)@2"])
            #expect(refused.wait(seconds: 20) == 64)
            #expect(refused.stderr.contains("\(kind) is robotd's own policy fault, not the simulator's: use it with `robotd sim`"), "\(refused.stderr)")
        }
    }

    @Test func when_run_for_some_seconds_expect_ground_truth_lines_and_a_summary() throws {
        let directory = try temporaryDirectory("robotd-sim-seconds") + "/new"  // created by robotd-sim, removed by it
        let sim = try Subprocess(builtProduct("robotd-sim"), ["--directory", directory, "--seconds", "3", "--status-every", "0.5"])
        #expect(sim.wait(seconds: 30) == 0)
        let lines = sim.jsonLines
        #expect(lines.first?["kind"] as? String == "ready")
        #expect(lines.filter { $0["kind"] as? String == "rover" }.count >= 4)
        #expect(lines.last?["kind"] as? String == "summary")
        #expect((lines.last?["ticks"] as? Int ?? 0) > 2000)
        #expect(!FileManager.default.fileExists(atPath: directory))
        try? FileManager.default.removeItem(atPath: (directory as NSString).deletingLastPathComponent)
    }

    @Test(.enabled(if: MosquittoBroker.isInstalled, "mosquitto is not installed"))
    func when_the_iot_rig_runs_on_a_given_broker_expect_temperature_readings_on_the_announced_topic() throws {
        let broker = try MosquittoBroker()
        try broker.start()
        defer { broker.stop() }
        let sim = try Subprocess(builtProduct("robotd-sim"), ["--world", "iot-rig", "--broker", "127.0.0.1:\(broker.port)"])
        let ready = try readyLine(sim)
        #expect(ready["broker"] as? String == "127.0.0.1:\(broker.port)")
        #expect(ready["broker_started"] as? Bool == false)
        let topics = try #require(ready["topics"] as? [String: Any])
        let topic = try #require(topics["temperature"] as? String)
        #expect(topic == "sim/rig/temperature")
        try expectReading(port: broker.port, topic: topic)
        sim.signal(SIGTERM)
        #expect(sim.wait(seconds: 20) == 0)
        #expect(sim.jsonLines.last?["kind"] as? String == "summary")
    }

    /// Without --broker it starts its own on the documented port (and stops it at exit). Not run
    /// while something else holds that port (a robotd-sim of the user's).
    @Test(.enabled(if: MosquittoBroker.isInstalled && !MosquittoBroker.accepts(port: 18830), "mosquitto missing or 127.0.0.1:18830 taken"))
    func when_the_iot_rig_runs_without_a_broker_expect_its_own_on_18830_stopped_at_exit() throws {
        let sim = try Subprocess(builtProduct("robotd-sim"), ["--world", "iot-rig"])
        let ready = try readyLine(sim)
        #expect(ready["broker"] as? String == "127.0.0.1:18830")
        #expect(ready["broker_started"] as? Bool == true)
        #expect(sim.stderr.contains("started mosquitto on 127.0.0.1:18830"))
        try expectReading(port: 18830, topic: "sim/rig/temperature")
        sim.signal(SIGINT)
        #expect(sim.wait(seconds: 20) == 0)
        #expect(waitUntil(seconds: 5) { !MosquittoBroker.accepts(port: 18830) })
    }

    /// One temperature message through the project's MQTT client, a number at "value".
    func expectReading(port: Int, topic: String) throws {
        let values = Mutex<[Double]>([])
        let client = try MQTTClient(options: MQTTOptions(port: port, clientID: "robotd-sim-test-\(getpid())")) { message in
            if case .success(let value) = MQTTPayload.number(message.payload, fieldPath: "value") {
                values.withLock { $0.append(value) }
            }
        }
        try client.subscribe(.init(filter: topic))
        try client.start()
        defer { client.stop() }
        #expect(waitUntil(seconds: 10) { !values.withLock { $0 }.isEmpty })
        let first = values.withLock { $0.first }
        #expect(first.map { $0 > 0 && $0 < 90 } == true)  // a chamber between its ambient and its fuse
    }
}
