import RobotConfig

/// The kinds a configuration may name: one line per kind. `catalog` is what `robotd check`
/// validates against.
public enum RobotKinds {
    static var policies: [any PolicyKind.Type] {
        [
            TeleopKind.self,
            WanderKind.self,
            WaypointsKind.self,
            ObstacleStopKind.self,
            ThermostatKind.self,
        ]
    }

    static var inputs: [any InputKind.Type] {
        [
            SerialInputKind.self,
            EvdevInputKind.self,
            MQTTInputKind.self,
        ]
    }

    static var actuators: [any ActuatorKind.Type] {
        [
            SerialFramesActuatorKind.self,
            MQTTActuatorKind.self,
        ]
    }

    public static var catalog: KindCatalog {
        KindCatalog(policies: policies.map { $0.spec }, inputs: inputs.map { $0.spec }, actuators: actuators.map { $0.spec })
    }

    static func policy(_ kind: String) -> (any PolicyKind.Type)? { policies.first { $0.spec.kind == kind } }
    static func input(_ kind: String) -> (any InputKind.Type)? { inputs.first { $0.spec.kind == kind } }
    static func actuator(_ kind: String) -> (any ActuatorKind.Type)? { actuators.first { $0.spec.kind == kind } }
}
