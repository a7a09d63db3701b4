import RobotConfig
import Synchronization
import Transports

/// `mqtt`: a number from an MQTT topic (the payload itself, or a field of a JSON payload) feeding
/// one sensor: Zigbee2MQTT, Tasmota, Shelly devices, the simulator's rig.
enum MQTTInputKind: InputKind {
    static let spec = KindSpec(kind: "mqtt", summary: "a number from an MQTT topic (payload or JSON field) feeding a sensor", fields: [
        FieldSpec("topic", .string, required: true, help: "topic filter (+ and # allowed)"),
        FieldSpec("field", .string, help: "JSON field path in the payload (a.b.c); none: the payload is the number"),
        FieldSpec("qos", .integer(0...2), help: "default 1"),
        FieldSpec("feeds", .string, required: true, help: "the sensor it feeds", refersTo: .sensor),
    ])

    static func make(_ settings: InputSettings, context: InputBuildContext) throws -> InputEndpoint {
        let s = context.settings(of: settings)
        let route = MQTTSensorInput.Route(filter: try s.string("topic"), fieldPath: try s.optionalString("field"),
                                          qos: try s.integer("qos", default: 1), source: try context.sensorSource(try s.string("feeds")))
        let input = MQTTSensorInput(routes: [route])
        return .mqtt(.init(subscriptions: [(route.filter, route.qos)], handle: { input.handle($0) },
                           rejected: { Int(input.notANumber.load(ordering: .relaxed)) }))
    }
}
