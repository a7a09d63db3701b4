import AIOSRobot
import ArgumentParser
import Foundation
import Glibc
import Transports

struct Echo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Open one input and print what it decodes, one JSON object per line (SI units).",
        discussion: """
        Each subcommand ends after --count lines, after --timeout seconds or on Ctrl-C (SIGINT/SIGTERM), \
        and then prints a summary line (what was decoded and rejected) on standard error. If the input \
        never opened (no such device, connection refused, …) it says why and exits with status 1.

        Example:
          robotd echo serial /dev/ttyUSB0 --codec nmea --count 5
          robotd echo evdev /dev/input/event3 --timeout 10
          robotd echo mqtt --broker 127.0.0.1:1883 'sensors/+/temperature'
        """,
        subcommands: [SerialEchoCommand.self, EvdevEchoCommand.self, MQTTEchoCommand.self])
}

struct EchoLimits: ParsableArguments {
    @Option(help: "Stop after this many decoded lines.")
    var count: Int?

    @Option(help: "Stop after this many seconds.")
    var timeout: Double?

    func validate() throws {
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
        if let timeout, !(timeout > 0) { throw ValidationError("--timeout must be positive") }
    }
}

/// Runs one echo to its end: the count, the time-out, the input's own end, or SIGINT/SIGTERM
/// (each ends with the summary line). Exits with status 1, saying why, when the input never
/// opened and the time-out (or its own end) came first.
private func runEcho(_ limits: EchoLimits, start: (EchoSession) throws -> EchoInput) throws {
    let session = EchoSession(count: limits.count) { FileHandle.standardOutput.write(Data(($0 + "\n").utf8)) }
    let signals = SignalWatch { _ in session.finish() }
    let echo: EchoInput
    do { echo = try start(session) } catch {
        signals.cancel()
        throw error
    }
    let ended = session.wait(timeout: limits.timeout)
    signals.cancel()
    echo.stop()
    stderrLine(echo.summary())
    let interrupted = signals.received != 0
    if session.lines == 0, let why = echo.neverOpened() {
        let end = interrupted ? "interrupted" : ended ? "ended" : "timed out after \(limits.timeout.map { String(format: "%g", $0) } ?? "?") s"
        stderrLine("robotd echo: nothing received (\(end)): \(why)")
        // Ctrl-C is the user's own choice of end; a time-out or an input that ended unopened is a failure.
        if !interrupted { throw ExitCode.failure }
    }
}

struct SerialEchoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serial", abstract: "A serial device: NMEA, robotd frames or key=value lines.",
        discussion: """
        Example:
          # a GPS receiver
          robotd echo serial /dev/ttyUSB0 --codec nmea --baud 9600
          # a USB-serial adapter found by its serial number (robotd ports)
          robotd echo serial usb-serial:A10K3XYZ --codec kv
          # the simulated rover of robotd-sim
          robotd echo serial /tmp/robotd-sim/rover --codec frame --count 10
        """)

    @Argument(help: "Device path (or a pseudo-terminal), or usb-serial:SERIALNUMBER.")
    var path: String

    @Option(help: "nmea, frame or kv.")
    var codec: String

    @Option(help: "Baud rate.")
    var baud: Int = 115_200

    @OptionGroup var limits: EchoLimits

    func run() throws {
        guard let codec = SerialEcho.Codec(rawValue: codec) else {
            throw ValidationError("--codec must be one of: \(SerialEcho.Codec.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        try runEcho(limits) { session in
            try EchoSession.serial(SerialEndpoint(path), settings: SerialSettings(baud: baud), codec: codec,
                                   session: session, log: stderrLine)
        }
    }
}

struct EvdevEchoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evdev", abstract: "An input device (/dev/input/eventN) or a FIFO/file of input_event records.",
        discussion: """
        Example:
          # a gamepad, grabbed so that no other program sees its keys
          robotd echo evdev /dev/input/event3 --grab
          # the simulated gamepad of robotd-sim
          robotd echo evdev /tmp/robotd-sim/gamepad
        """)

    @Argument(help: "/dev/input/eventN, a FIFO or a recorded file.")
    var path: String

    @Flag(help: "Grab the device exclusively (libevdev_grab).")
    var grab = false

    @OptionGroup var limits: EchoLimits

    func run() throws {
        try runEcho(limits) { session in
            try EchoSession.evdev(path: path, grab: grab, session: session, log: stderrLine)
        }
    }
}

struct Ports: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List serial ports with USB vendor/product id and serial number (libserialport).",
        discussion: """
        Example:
          # path, transport, USB vid:pid, serial number, description
          robotd ports
          robotd ports --json
        """)

    @Flag(help: "One JSON object per port.")
    var json = false

    func run() throws {
        let ports = try SerialPortInfo.list()
        if ports.isEmpty { stderrLine("no serial ports found"); return }
        for port in ports {
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                print(String(decoding: try encoder.encode(port), as: UTF8.self))
            } else {
                let usb = port.usbVendorID.map { String(format: "%04x:%04x", $0, port.usbProductID ?? 0) } ?? "-"
                print("\(port.path)\t\(port.transport)\t\(usb)\tserial=\(port.usbSerial ?? "-")\t\(port.description)")
            }
        }
    }
}

struct MQTTEchoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mqtt", abstract: "MQTT topics (wildcards + and # allowed) through libmosquitto.",
        discussion: """
        Example:
          # the simulated rig of robotd-sim --world iot-rig
          robotd echo mqtt --broker 127.0.0.1:18830 --field value 'sim/rig/+'
          # a broker with TLS and a login
          robotd echo mqtt --broker mqtt.example.net:8883 --ca-file ca.pem \\
            --username u --password-file ~/.robotd-mqtt-password 'plant/+/temp'
          # the password from the environment instead
          ROBOTD_MQTT_PASSWORD=… robotd echo mqtt --username u 'plant/+/temp'
        """)

    @OptionGroup var connection: MQTTConnectionOptions
    @Option(help: "QoS of the subscriptions (0, 1, 2).") var qos: Int = 0
    @Option(help: "Field path of the number in JSON payloads, e.g. sensor.temperature or values[0].") var field: String?

    @Argument(help: "Topics to subscribe to.")
    var topics: [String]

    @OptionGroup var limits: EchoLimits

    func validate() throws {
        guard (0...2).contains(qos) else { throw ValidationError("--qos must be 0, 1 or 2") }
        guard !topics.isEmpty else { throw ValidationError("name at least one topic") }
    }

    func run() throws {
        let options = try connection.options(clientName: "robotd-echo")
        try runEcho(limits) { session in
            try EchoSession.mqtt(options: options, topics: topics, qos: qos, fieldPath: field, session: session, log: stderrLine)
        }
    }
}
