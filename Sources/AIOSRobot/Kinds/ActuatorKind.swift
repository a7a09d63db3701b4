import Actuators
import RobotConfig
import SafetyGuard
import Transports

/// An actuator kind: its configuration keys and how its back end is built (this opens devices:
/// the daemon builds back ends, `robotd check` never does). A new back end kind is one file
/// conforming to this plus one line in `RobotKinds.actuators`.
public protocol ActuatorKind {
    static var spec: KindSpec { get }
    static func make(_ settings: ActuatorSettings, context: ActuatorBuildContext) throws -> BuiltBackend
}

public struct BuiltBackend: Sendable {
    public var backend: any ActuatorBackend
    /// A serial link that can be reopened when the device comes back (its path names it).
    public var serialLink: SerialPortWriter?
    public var serialPath: String?
    /// The dispatch thread may write this back end's frames itself (`ActuatorSet.WriterOptions.directWrites`).
    public var directWrite: Bool
    public init(backend: any ActuatorBackend, serialLink: SerialPortWriter? = nil, serialPath: String? = nil, directWrite: Bool = false) {
        self.backend = backend
        self.serialLink = serialLink
        self.serialPath = serialPath
        self.directWrite = directWrite
    }
}

public protocol ActuatorBuildContext {
    /// A declared channel: its guard id (configuration order) and settings.
    func channel(_ name: String, for actuator: ActuatorSettings) throws -> (id: ChannelID, settings: ChannelSettings)
    /// The robot's MQTT connection (from `mqtt:`).
    func mqttPublisher(for actuator: ActuatorSettings) throws -> any MQTTPublishing
    func settings(of actuator: ActuatorSettings) -> SettingsReader
}

extension ChannelSettings {
    /// The safe value as a guard command value.
    public var safeCommandValue: CommandValue {
        kind == "discrete" ? .discrete(Int(safeValue)) : .continuous(safeValue)
    }
}
