import Codecs
import RTScheduler
import RobotConfig
import Transports

/// `serial`: a serial device (a path, a pty, or `usb-serial:SERIAL`) speaking robotd frames
/// (`frame`), NMEA 0183 (`nmea`) or key=value lines (`kv`); `feeds` maps each message to a sensor.
enum SerialInputKind: InputKind {
    static let spec = KindSpec(kind: "serial", summary: "a serial device: robotd frames, NMEA 0183 or key=value lines", fields: [
        FieldSpec("path", .string, required: true, help: "a device, a pty, or usb-serial:SERIAL (the adapter's serial number)"),
        FieldSpec("baud", .integer(50...4_000_000), help: "default 115200"),
        FieldSpec("framing", .oneOf(["8N1", "8E1", "8O1", "8N2", "7E1", "7O1"]), help: "data bits, parity, stop bits; default 8N1"),
        FieldSpec("codec", .oneOf(["frame", "nmea", "kv"]), required: true, help: "what the device speaks"),
        FieldSpec("feeds", .dictionary(.string), required: true,
                  help: "message → sensor: frame `range`, `wheel_encoders`, `imu`; nmea `heading`, `speed`, `fix_quality`, `hdop`, `satellites`; kv: the line's keys",
                  refersTo: .sensor),
        FieldSpec("link_timeout_ms", .either([.word("none"), .number(1...60_000)]),
                  help: "no complete message this long: the link counts as lost (a stop); required, `none` written out for no time-out"),
    ])

    static let frameMessages = ["range", "wheel_encoders", "imu"]
    static let nmeaMessages = ["heading", "speed", "fix_quality", "hdop", "satellites"]

    static func make(_ settings: InputSettings, context: InputBuildContext) throws -> InputEndpoint {
        let s = context.settings(of: settings)
        let path = try s.string("path")
        let endpoint: SerialEndpoint = path.hasPrefix("usb-serial:") ? .usbSerial(String(path.dropFirst(11))) : .path(path)
        var serial = SerialSettings(baud: try s.integer("baud", default: 115_200))
        let framing = try s.string("framing", default: "8N1")
        guard framing.count == 3, let bits = Int(String(framing.first ?? "8")), let stop = Int(String(framing.last ?? "1")) else {
            throw KindError("input \(settings.name): framing \(framing) is not like 8N1")
        }
        serial.dataBits = bits
        serial.stopBits = stop
        serial.parity = switch Array(framing)[1] { case "E": .even; case "O": .odd; default: .none }
        let feeds = try s.entries("feeds").map { entry throws(KindError) -> (String, String) in
            guard case .string(let sensor) = entry.value else { throw KindError("input \(settings.name): feeds.\(entry.key) must name a sensor") }
            return (entry.key, sensor)
        }
        // `none` (written out; check warns): no time-out, only the device's loss is a lost link.
        let timeout = s.value["link_timeout_ms"] == .string("none") ? nil : try s.optionalNumber("link_timeout_ms")
        let link = context.link(timeout: timeout.map { .milliseconds($0) })
        switch try s.string("codec") {
        case "frame":
            var sources = FrameSensorInput.Sources()
            for (message, sensor) in feeds {
                switch message {
                case "range": sources.range = try context.sensorSource(sensor)
                case "wheel_encoders": sources.wheelEncoders = try context.sensorSource(sensor)
                case "imu": sources.imu = try context.sensorSource(sensor)
                default: throw KindError("input \(settings.name): frame messages are \(frameMessages.joined(separator: ", ")), not \(message)")
                }
            }
            let input = FrameSensorInput(sources: sources, link: link)
            return .serial(.init(endpoint: endpoint, settings: serial, feed: { input.feed($0, arrival: $1) }, link: link,
                                 rejected: { input.framesRejected }))
        case let codec:
            let format: ScalarLineInput.Format = codec == "nmea" ? .nmea : .keyValue
            if format == .nmea, let bad = feeds.first(where: { !nmeaMessages.contains($0.0) }) {
                throw KindError("input \(settings.name): nmea messages are \(nmeaMessages.joined(separator: ", ")), not \(bad.0)")
            }
            let routes = try feeds.map { (message, sensor) in (message, try context.sensorSource(sensor)) }
            let input = ScalarLineInput(format: format, routes: routes, link: link)
            return .serial(.init(endpoint: endpoint, settings: serial, feed: { input.feed($0, arrival: $1) }, link: link,
                                 rejected: { input.rejectedLines }))
        }
    }
}
