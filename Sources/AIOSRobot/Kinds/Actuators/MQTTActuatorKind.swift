import Actuators
import RobotConfig
import SafetyGuard
import Transports

/// `mqtt`: one topic per channel with a payload template (`{value}`, `{channel}`), like
/// Zigbee2MQTT or Tasmota devices; discrete states may be named (`states: ["OFF", "ON"]`).
/// Commands are never retained: a stale command must not reach a device that reconnects later.
enum MQTTActuatorKind: ActuatorKind {
    static let spec = KindSpec(kind: "mqtt", summary: "one MQTT topic per channel with a payload template (never retained)", fields: [
        FieldSpec("channels", .dictionary(.object([
            FieldSpec("topic", .string, required: true, help: "the device's command topic"),
            FieldSpec("payload", .string, help: "template: {value} and {channel} are replaced; default {value}"),
            FieldSpec("states", .list(.string), help: "names of discrete states by index (0 first): e.g. [\"OFF\", \"ON\"]"),
            FieldSpec("qos", .integer(0...2), help: "default 0: the policy re-sends every period, a queued old command must not replay"),
        ])), required: true, help: "channel → {topic, payload, states, qos}",
                  refersTo: NameReference(.channel, inKeys: true)),
    ])

    static func make(_ settings: ActuatorSettings, context: ActuatorBuildContext) throws -> BuiltBackend {
        let s = context.settings(of: settings)
        let routes = try s.entries("channels").map { entry in
            let c = s.nested("channels.\(entry.key)", entry.value)
            let (id, channel) = try context.channel(entry.key, for: settings)
            let states = try c.list("states").map { item throws(KindError) -> String in
                guard case .string(let name) = item else { throw KindError("\(c.owner): states must be strings") }
                return name
            }
            return MQTTBackend.Route(channel: id, name: entry.key, topic: try c.string("topic"),
                                     template: try c.string("payload", default: "{value}"), stateNames: states,
                                     safeValue: channel.safeCommandValue, qos: try c.integer("qos", default: 0), retain: false)
        }
        return BuiltBackend(backend: MQTTBackend(name: settings.name, routes: routes, client: try context.mqttPublisher(for: settings)))
    }
}
