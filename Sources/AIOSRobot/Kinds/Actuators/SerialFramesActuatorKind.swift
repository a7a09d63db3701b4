import Actuators
import Codecs
import RobotConfig
import SafetyGuard
import Transports

/// `serial_frames`: motor drivers on a serial link speaking robotd's frames
/// (docs/serial-protocol.md); each channel maps to a motor index and a mode. A heartbeat frame
/// goes out every guard tick (the protocol's firmware de-energises when they stop). `write`:
/// `direct` (default) — the dispatch thread writes a command's frame itself when one non-blocking
/// write(2) takes it and nothing has to wait, the writer thread otherwise — or `writer` (every
/// frame through the writer thread). docs/benchmarks.md has the measurement behind the default.
enum SerialFramesActuatorKind: ActuatorKind {
    static let writeDefault = "direct"

    static let spec = KindSpec(kind: "serial_frames", summary: "motor drivers on a serial link speaking robotd frames", fields: [
        FieldSpec("path", .string, required: true, help: "a device, a pty, or usb-serial:SERIAL (may be an input's device too)"),
        FieldSpec("baud", .integer(50...4_000_000), help: "default 115200"),
        FieldSpec("channels", .dictionary(.object([
            FieldSpec("motor", .integer(0...255), required: true, help: "motor index on the wire"),
            FieldSpec("mode", .oneOf(["velocity", "position", "effort", "duty"]), help: "default velocity"),
        ])), required: true, help: "channel → {motor, mode}", refersTo: NameReference(.channel, inKeys: true)),
        FieldSpec("write", .oneOf(["direct", "writer"]),
                  help: "direct (default): the dispatch thread writes a frame itself when that costs no wait; writer: always the writer thread"),
    ])

    static func make(_ settings: ActuatorSettings, context: ActuatorBuildContext) throws -> BuiltBackend {
        let s = context.settings(of: settings)
        let path = try s.string("path")
        let endpoint: SerialEndpoint = path.hasPrefix("usb-serial:") ? .usbSerial(String(path.dropFirst(11))) : .path(path)
        let mappings = try s.entries("channels").map { entry in
            let c = s.nested("channels.\(entry.key)", entry.value)
            let (id, channel) = try context.channel(entry.key, for: settings)
            let motor = try c.integer("motor", default: -1)
            guard let wire = UInt8(exactly: motor) else { throw KindError("\(c.owner): motor must be 0…255") }
            let mode: MotorCommandMessage.Mode = switch try c.string("mode", default: "velocity") {
            case "position": .position
            case "effort": .effort
            case "duty": .duty
            default: .velocity
            }
            return SerialFrameBackend.Mapping(channel: id, motor: wire, mode: mode, safeValue: Float(channel.safeValue))
        }
        let link = try SerialPortWriter(endpoint: endpoint, settings: SerialSettings(baud: try s.integer("baud", default: 115_200)))
        let backend = SerialFrameBackend(name: settings.name, mappings: mappings, writer: link)
        return BuiltBackend(backend: backend, serialLink: link, serialPath: path,
                            directWrite: try s.string("write", default: writeDefault) == "direct")
    }
}

extension RobotKinds {
    /// `serial_frames`' `write` when a file does not say (what `robotd bench e2e` reports as the daemon's).
    public static var serialFramesWriteDefault: String { SerialFramesActuatorKind.writeDefault }
}
