import Actuators
import RobotConfig
import SafetyGuard
import Transports

/// Builds a configuration's actuator back ends through their kinds (this opens devices). Channel
/// ids are the configuration's channel order, as the runtime's guard has them.
public struct BackendFactory: ActuatorBuildContext {
    public let configuration: RobotConfiguration
    /// The robot's MQTT connection, for `mqtt` back ends (nil: none configured).
    public let publisher: (any MQTTPublishing)?

    public init(configuration: RobotConfiguration, publisher: (any MQTTPublishing)?) {
        self.configuration = configuration
        self.publisher = publisher
    }

    public func channel(_ name: String, for actuator: ActuatorSettings) throws -> (id: ChannelID, settings: ChannelSettings) {
        guard let i = configuration.channels.firstIndex(where: { $0.name == name }) else {
            throw KindError("actuator \(actuator.name): no channel named \(name)")
        }
        return (ChannelID(index: i), configuration.channels[i])
    }

    public func mqttPublisher(for actuator: ActuatorSettings) throws -> any MQTTPublishing {
        guard let publisher else { throw KindError("actuator \(actuator.name): an mqtt back end needs the `mqtt` section (a broker)") }
        return publisher
    }

    public func settings(of actuator: ActuatorSettings) -> SettingsReader {
        SettingsReader(owner: "actuator \(actuator.name)", actuator.settings)
    }

    /// Every back end, in configuration order; `override` may supply one instead (a simulator in
    /// lockstep tests).
    public func build(override: (ActuatorSettings) throws -> BuiltBackend? = { _ in nil }) throws -> [BuiltBackend] {
        try configuration.actuators.map { actuator in
            if let built = try override(actuator) { return built }
            guard let kind = RobotKinds.actuator(actuator.kind) else {
                throw KindError("actuator \(actuator.name): unknown kind \(actuator.kind) (kinds: \(RobotKinds.actuators.map { $0.spec.kind }.joined(separator: ", ")))")
            }
            return try kind.make(actuator, context: self)
        }
    }
}
