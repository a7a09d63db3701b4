import AIOSRobot
import ArgumentParser
import Foundation
import Glibc
import Transports

struct Echo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Open one input and print what it decodes, one JSON object per line (SI units).",
        subcommands: [SerialEchoCommand.self, EvdevEchoCommand.self, MQTTEchoCommand.self])
}

struct EchoLimits: ParsableArguments {
    @Option(help: "Stop after this many decoded lines.")
    var count: Int?

    @Option(help: "Stop after this many seconds.")
    var timeout: Double?
}

func stderrLine(_ text: String) { FileHandle.standardError.write(Data((text + "\n").utf8)) }

struct SerialEchoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serial", abstract: "A serial device: NMEA, robotd frames or key=value lines.")

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
        let session = EchoSession(count: limits.count) { FileHandle.standardOutput.write(Data(($0 + "\n").utf8)) }
        let echo = try EchoSession.serial(SerialEndpoint(path), settings: SerialSettings(baud: baud), codec: codec,
                                          session: session, log: stderrLine)
        session.wait(timeout: limits.timeout)
        echo.stop()
        stderrLine(echo.summary())
    }
}

struct EvdevEchoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "evdev", abstract: "An input device (/dev/input/eventN) or a FIFO/file of input_event records.")

    @Argument(help: "/dev/input/eventN, a FIFO or a recorded file.")
    var path: String

    @Flag(help: "Grab the device exclusively (libevdev_grab).")
    var grab = false

    @OptionGroup var limits: EchoLimits

    func run() throws {
        let session = EchoSession(count: limits.count) { FileHandle.standardOutput.write(Data(($0 + "\n").utf8)) }
        let echo = try EchoSession.evdev(path: path, grab: grab, session: session, log: stderrLine)
        session.wait(timeout: limits.timeout)
        echo.stop()
        stderrLine(echo.summary())
    }
}

struct Ports: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List serial ports with USB vendor/product id and serial number (libserialport).")

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
    static let configuration = CommandConfiguration(commandName: "mqtt", abstract: "MQTT topics (wildcards + and # allowed) through libmosquitto.")

    @Option(help: "Broker as HOST:PORT.")
    var broker: String = "127.0.0.1:1883"

    @Option(help: "User name.") var username: String?
    @Option(help: "Password.") var password: String?
    @Option(help: "CA file (PEM) for TLS.") var caFile: String?
    @Option(help: "QoS of the subscriptions (0, 1, 2).") var qos: Int = 0
    @Option(help: "Field path of the number in JSON payloads, e.g. sensor.temperature or values[0].") var field: String?

    @Argument(help: "Topics to subscribe to.")
    var topics: [String]

    @OptionGroup var limits: EchoLimits

    func validate() throws {
        guard MQTTOptions.parseBroker(broker) != nil else { throw ValidationError("--broker must be HOST:PORT") }
        guard (0...2).contains(qos) else { throw ValidationError("--qos must be 0, 1 or 2") }
        guard !topics.isEmpty else { throw ValidationError("name at least one topic") }
    }

    func run() throws {
        guard let (host, port) = MQTTOptions.parseBroker(broker) else { return }
        let options = MQTTOptions(host: host, port: port, clientID: "robotd-echo-\(getpid())", username: username,
                                  password: password, caFile: caFile)
        let session = EchoSession(count: limits.count) { FileHandle.standardOutput.write(Data(($0 + "\n").utf8)) }
        let echo = try EchoSession.mqtt(options: options, topics: topics, qos: qos, fieldPath: field, session: session, log: stderrLine)
        session.wait(timeout: limits.timeout)
        echo.stop()
        stderrLine(echo.summary())
    }
}
