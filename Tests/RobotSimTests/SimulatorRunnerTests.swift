import Codecs
import Foundation
import Synchronization
import TestSupport
import Testing
import Transports
@testable import RobotSim

/// The simulator in real-time mode, seen from outside exactly as robotd sees hardware.
@Suite("Simulator in real time: pty, FIFO and MQTT", .serialized)
struct SimulatorRunnerTests {
    /// The rover's serial link through a pty symlink, opened by the termios path of Transports.
    @Test func when_a_host_opens_the_rover_port_expect_sensor_frames_at_rate_and_motor_frames_obeyed() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var options = SimulatorRunner.Options()
        options.roverLinkPath = dir + "/rover"
        let runner = try SimulatorRunner(options: options)
        try runner.start()
        defer { runner.stop() }

        let port = try TermiosSerialPort(path: dir + "/rover", settings: SerialSettings())
        defer { port.close() }
        var decoder = FrameDecoder()
        var imu = 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
        defer { buffer.deallocate() }
        let begin = Date()
        var out = [UInt8](repeating: 0, count: Frame.maxWireCount)
        var sequence: UInt8 = 0
        while Date().timeIntervalSince(begin) < 1.0 {
            let n = try port.read(into: buffer, timeoutMilliseconds: 20)
            decoder.feed(UnsafeRawBufferPointer(rebasing: buffer[0..<n])) { view in
                if view.type == Frame.MessageType.imuSample.rawValue { imu += 1 }
            }
            for motor in [UInt8(0), 1] {  // both wheels forward at 8 rad/s, refreshed every read
                sequence &+= 1
                let count = out.withUnsafeMutableBytes {
                    MotorCommandMessage(channel: motor, mode: .velocity, deenergize: false, value: 8).encode(sequence: sequence, into: $0)
                } ?? 0
                try out.withUnsafeBytes { try port.write(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
            }
        }
        // 200 Hz for 1 s, the first frames possibly before the port was open: generous bounds.
        #expect(imu > 120 && imu < 260)
        #expect(decoder.framesRejected == 0)
        let s = runner.rover.snapshot()
        #expect(s.firmware.commandsApplied > 20 && s.leftEnergised)
        #expect(s.odometer > 0.2)
    }

    @Test func when_nobody_has_the_port_open_expect_frames_counted_as_unheard_not_queued() throws {
        let runner = try SimulatorRunner(options: SimulatorRunner.Options())
        try runner.start()
        usleep(300_000)
        runner.stop()
        #expect(runner.statistics.roverBytesUnheard > 1000)
        #expect(runner.statistics.ticks > 100)
    }

    /// The gamepad's input_event stream through a FIFO, read by Transports' StreamReader: the
    /// sticks' positions and the e-stop's level first, then the script.
    @Test func when_the_gamepad_script_fires_expect_input_events_through_the_fifo() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var options = SimulatorRunner.Options()
        options.gamepadFIFO = dir + "/gamepad"
        options.gamepadScript = [.init(at: 600_000_000, [.press("BTN_EAST")]), .init(at: 700_000_000, [.release("BTN_EAST")])]
        let runner = try SimulatorRunner(options: options)
        let events = Mutex<[InputEvent]>([])
        let decoder = Mutex(InputEventStreamDecoder())
        let reader = try StreamReader(path: dir + "/gamepad") { bytes, _ in
            decoder.withLock { d in d.feed(bytes) { e in events.withLock { $0.append(e) } } }
        }
        defer { reader.stop() }
        try runner.start()
        defer { runner.stop() }
        #expect(waitUntil(seconds: 5) { events.withLock { $0.filter { $0.codeName == "BTN_EAST" }.count } >= 3 })  // the opening level, the press, the release
        let all = events.withLock { $0 }
        // Between scripted reports, a bare SYN_REPORT every 200 ms says the device is alive.
        let keepAlives = all.indices.filter { i in all[i].codeName == "SYN_REPORT" && (i == 0 || all[i - 1].codeName == "SYN_REPORT") }
        #expect(keepAlives.count >= 2)
        let got = all.indices.filter { !keepAlives.contains($0) }.map { all[$0] }
        // First, the sticks' positions (at rest) and the e-stop key's level (up), as a reader reads
        // a device's when it opens it.
        #expect(got.map(\.codeName) == ["ABS_X", "ABS_Y", "ABS_RX", "ABS_RY", "BTN_EAST", "SYN_REPORT",
                                         "BTN_EAST", "SYN_REPORT", "BTN_EAST", "SYN_REPORT"])
        #expect(got.prefix(5).allSatisfy { $0.value == 0 })
        #expect(got.dropFirst(6).first?.value == 1 && got.dropFirst(6).first?.microseconds == 600_000)
    }

    /// The rig as an MQTT device on a broker the test starts.
    @Test(.enabled(if: MosquittoBroker.isInstalled, "mosquitto is not installed"))
    func when_the_rig_runs_on_a_broker_expect_readings_published_and_heater_commands_obeyed() throws {
        let broker = try MosquittoBroker()
        try broker.start()
        defer { broker.stop() }
        var options = SimulatorRunner.Options()
        options.broker = ("127.0.0.1", broker.port)
        options.rig.sampleHz = 10
        let runner = try SimulatorRunner(options: options)
        try runner.start()
        defer { runner.stop() }
        let readings = Mutex<[Double]>([])
        let client = try MQTTClient(options: MQTTOptions(port: broker.port, clientID: "rig-test")) { message in
            if message.topic == "sim/rig/temperature", let v = try? MQTTPayload.number(message.payload, fieldPath: "value").get() {
                readings.withLock { $0.append(v) }
            }
        }
        try client.subscribe(.init(filter: "sim/rig/temperature"))
        try client.start()
        defer { client.stop() }
        #expect(waitUntil { client.counters.subscribed.load(ordering: .relaxed) >= 1 && runner.rigSubscriptions >= 2 })
        #expect(waitUntil { readings.withLock { $0.count } >= 3 })
        try client.publish(topic: "sim/rig/heater/set", payload: Array("on".utf8), qos: 1)
        #expect(waitUntil { runner.rig?.snapshot().heaterOn == true })
        #expect(runner.rig?.snapshot().counters.heaterCommands == 1)
    }
}
