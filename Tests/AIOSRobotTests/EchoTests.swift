import Codecs
import Foundation
import Testing
import Transports
@testable import AIOSRobot

@Suite("robotd echo")
struct EchoTests {
    @Test func when_frames_arrive_expect_one_json_line_each_in_si_units_and_a_summary_of_rejects() {
        var echo = SerialEcho(source: "serial:test", codec: .frame)
        var bytes = Frame.encode(.imuSample, sequence: 1) {
            IMUSampleMessage(deviceTimeMicros: 10, accel: [0, 0, 9.5], gyro: [0.5, 0, 0], temperature: 25).write(into: $0)
        }
        bytes += [0x13, 0x37, 0x00]  // a corrupt frame
        bytes += Frame.encode(.range, sequence: 2) { RangeMessage(deviceTimeMicros: 11, range: 2.5).write(into: $0) }
        var lines: [String] = []
        bytes.withUnsafeBytes { echo.feed($0, arrival: 42) { lines.append($0) } }
        #expect(lines == [
            #"{"source":"serial:test","arrival_ns":42,"kind":"imu","seq":1,"device_time_us":10,"accel_m_s2":[0,0,9.5],"gyro_rad_s":[0.5,0,0],"temperature_c":25}"#,
            #"{"source":"serial:test","arrival_ns":42,"kind":"range","seq":2,"device_time_us":11,"range_m":2.5,"status":0}"#,
        ])
        #expect(echo.summary.contains(#""frames":2,"rejected_frames":1"#))
    }

    @Test func when_json_strings_need_escaping_expect_valid_json() throws {
        var j = JSONLine()
        j.add("name", "a\"b\\c\nd\u{1}")
        j.add("nan", Double.nan)
        let object = try JSONSerialization.jsonObject(with: Data(j.text.utf8)) as? [String: Any]
        #expect(object?["name"] as? String == "a\"b\\c\nd\u{1}")
        #expect(object?["nan"] is NSNull)
    }

    /// The real command on a pseudo-terminal (the termios path): `robotd echo serial PTY --codec kv`.
    @Test func when_robotd_echo_reads_a_pty_expect_json_lines_and_it_stops_at_count() throws {
        let products = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let robotd = products.appendingPathComponent("robotd").path
        try #require(FileManager.default.isExecutableFile(atPath: robotd), "robotd is not built next to the tests")
        var name = [CChar](repeating: 0, count: 128)
        let master = posix_openpt_for_tests(&name)
        try #require(master >= 0)
        defer { close(master) }
        let slave = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: robotd)
        process.arguments = ["echo", "serial", slave, "--codec", "kv", "--count", "2", "--timeout", "10"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = Pipe()
        try process.run()
        usleep(300_000)
        for line in ["temp=21.5 hum=40\n", "not a pair\n", "temp=21.6 hum=41\n"] {
            _ = line.withCString { write(master, $0, strlen($0)) }
        }
        process.waitUntilExit()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let lines = text.split(separator: "\n")
        #expect(process.terminationStatus == 0)
        #expect(lines.count == 2)
        #expect(lines.first?.contains(#""kind":"kv","temp":21.5,"hum":40"#) == true)
    }
}

import CTransport
func posix_openpt_for_tests(_ name: inout [CChar]) -> Int32 { tr_open_pty(&name, name.count) }

@Suite("robotd echo mqtt", .enabled(if: MosquittoBroker.isInstalled, "mosquitto is not installed"))
struct MQTTEchoTests {
    /// `robotd echo mqtt` against a broker the test starts, with mosquitto_pub as an independent
    /// publisher.
    @Test func when_messages_arrive_expect_values_from_bare_and_json_payloads() throws {
        let broker = try MosquittoBroker()
        try broker.start()
        defer { broker.stop() }
        // Retained messages, published before robotd starts: no race with its subscription.
        for (topic, payload) in [("rig/bench/temp", #"{"t":21.5}"#), ("rig/shed/temp", "not json")] {
            let pub = Process()
            pub.executableURL = URL(fileURLWithPath: "/usr/bin/mosquitto_pub")
            pub.arguments = ["-h", "127.0.0.1", "-p", "\(broker.port)", "-t", topic, "-m", payload, "-q", "1", "-r"]
            try pub.run()
            pub.waitUntilExit()
            #expect(pub.terminationStatus == 0)
        }
        let products = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let process = Process()
        process.executableURL = products.appendingPathComponent("robotd")
        process.arguments = ["echo", "mqtt", "--broker", "127.0.0.1:\(broker.port)", "--field", "t", "--count", "2",
                             "--timeout", "15", "rig/+/temp"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = Pipe()
        try process.run()
        process.waitUntilExit()
        let lines = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines.contains { $0.contains(#""topic":"rig/bench/temp","value":21.5"#) && $0.contains(#""retained":true"#) })
        #expect(lines.contains { $0.contains(#""topic":"rig/shed/temp","value":null,"error":"notJSON""#) })
    }
}
