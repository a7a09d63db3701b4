import Codecs
import Foundation
import TestSupport
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

/// `robotd echo` as a newcomer meets it, the built binary run as a subprocess: causes in words,
/// a failed exit when the input never opened, the summary on Ctrl-C.
@Suite("robotd echo: causes in words, exit status, Ctrl-C")
struct EchoNewcomerTests {
    @Test func when_the_broker_port_is_closed_expect_connection_refused_in_words_and_a_failed_exit() throws {
        let port = try ClosedPort()
        let echo = try Subprocess(builtProduct("robotd"), ["echo", "mqtt", "--broker", "127.0.0.1:\(port.number)", "--timeout", "2", "t"])
        let status = echo.wait(seconds: 30)
        #expect(status == 1)
        #expect(echo.stderr.contains("cannot connect to 127.0.0.1:\(port.number): connection refused"))
        #expect(echo.stderr.contains("robotd echo: nothing received (timed out after 2 s): cannot connect to 127.0.0.1:\(port.number): connection refused"))
        #expect(echo.stderr.contains(#""kind":"summary""#))
        #expect(!echo.stderr.contains("(14)"))  // libmosquitto's MOSQ_ERR_ERRNO, as it used to be printed
    }

    @Test func when_the_path_is_a_regular_file_expect_not_a_serial_device_and_a_failed_exit() throws {
        let directory = try temporaryDirectory("echo-not-a-tty")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/not-a-tty"
        _ = FileManager.default.createFile(atPath: file, contents: Data("hello\n".utf8))
        let echo = try Subprocess(builtProduct("robotd"), ["echo", "serial", file, "--codec", "kv", "--timeout", "1"])
        #expect(echo.wait(seconds: 30) == 1)
        #expect(echo.stderr.contains("cannot open \(file): not a serial device (a regular file)"))
        #expect(echo.stderr.contains("robotd echo: nothing received (timed out after 1 s): cannot open \(file): not a serial device"))
        #expect(!echo.stderr.contains("Invalid argument"))
    }

    @Test func when_the_path_does_not_exist_or_is_not_a_tty_expect_the_cause_in_words() throws {
        for (path, words) in [("/nonexistent/ttyUSB9", "no such file"), ("/dev/null", "not a serial device")] {
            let echo = try Subprocess(builtProduct("robotd"), ["echo", "serial", path, "--codec", "kv", "--timeout", "1"])
            #expect(echo.wait(seconds: 30) == 1)
            #expect(echo.stderr.contains("cannot open \(path): \(words)"), "\(echo.stderr)")
        }
    }

    @Test(arguments: [SIGINT, SIGTERM])
    func when_a_signal_ends_the_echo_expect_its_summary_and_a_clean_exit(signal: Int32) throws {
        var name = [CChar](repeating: 0, count: 128)
        let master = posix_openpt_for_tests(&name)
        try #require(master >= 0)
        defer { close(master) }
        let slave = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let echo = try Subprocess(builtProduct("robotd"), ["echo", "serial", slave, "--codec", "kv"])
        try #require(echo.waitFor("connected to \(slave)", inStandardError: true))
        _ = "temp=21.5\n".withCString { write(master, $0, strlen($0)) }
        try #require(echo.waitFor(#""temp":21.5"#))
        echo.signal(signal)
        #expect(echo.wait(seconds: 15) == 0)
        #expect(echo.stderr.contains(#""kind":"summary","lines":1,"rejected_lines":0"#))
    }
}

/// A 127.0.0.1 port that refuses connections: bound (so nothing else takes it) but not listening.
final class ClosedPort {
    let fd: Int32
    let number: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0 else { close(fd); throw POSIXError(.EADDRINUSE) }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        self.fd = fd
        number = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(fd) }
}
