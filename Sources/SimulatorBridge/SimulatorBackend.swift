import Actuators
import Codecs
import RobotSim
import SafetyGuard
import Transports

/// The simulator as an actuator back end, in lockstep (the test or `robotd sim` decides every
/// instant). It hands the simulated devices exactly what the real back ends would put on the wire:
/// motor-command frames from `SerialFrameBackend` to the rover's firmware, topic and payload from
/// `MQTTBackend` to the rig, so encoding, safe states and error handling are the real ones. In
/// real-time mode the simulator sits behind a pty and a broker, and those back ends are used as
/// they are. No emergency path: the lockstep links have no descriptor (the set falls back to
/// asking the writer, see `ActuatorSet.emergencySafeState`).
public final class SimulatorBackend: ActuatorBackend, HeartbeatSending {
    private let inner: any ActuatorBackend
    private let beat: (any HeartbeatSending)?
    public var name: String { inner.name }
    public var channels: [ChannelID] { inner.channels }
    public var isConnected: Bool { inner.isConnected }

    /// The rover's motor driver: guard channels mapped to motor 0 (left) and 1 (right), velocity mode.
    public init(name: String, rover: RoverSimulation, mappings: [SerialFrameBackend.Mapping]) {
        let serial = SerialFrameBackend(name: name, mappings: mappings, writer: RoverLink(rover))
        inner = serial
        beat = serial
    }

    /// The rig's heater and fan, addressed by topic as over MQTT.
    public init(name: String, rig: RigSimulation, routes: [MQTTBackend.Route]) {
        inner = MQTTBackend(name: name, routes: routes, client: RigLink(rig))
        beat = nil
    }

    public func write(_ command: ApprovedCommand, token: DeviceWriteToken) throws { try inner.write(command, token: token) }
    public func applySafeState(token: DeviceWriteToken) throws { try inner.applySafeState(token: token) }
    public func applySafeState(channel: ChannelID, token: DeviceWriteToken) throws {
        try inner.applySafeState(channel: channel, token: token)
    }
    /// The rover's firmware gets the serial heartbeat frame; the rig (MQTT) has none.
    public func sendHeartbeat(token: DeviceWriteToken) throws {
        try beat?.sendHeartbeat(token: token)
    }
}

/// The serial cable to the simulated rover: bytes go straight into its firmware. A pulled cable
/// (`setLinkUp(false)`) fails the write as a dead tty would (EIO).
final class RoverLink: ByteWriter {
    let rover: RoverSimulation
    init(_ rover: RoverSimulation) { self.rover = rover }
    var isConnected: Bool { rover.isLinkUp }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard rover.isLinkUp else { throw ActuatorError(.disconnected, backend: "simulated rover", errno: 5) }
        rover.receive(bytes)
    }
}

/// The broker between robotd and the simulated rig, collapsed to a function call.
final class RigLink: MQTTPublishing {
    let rig: RigSimulation
    init(_ rig: RigSimulation) { self.rig = rig }
    var isConnected: Bool { true }
    func publish(topic: String, payload: [UInt8], qos: Int, retain: Bool) throws {
        rig.handle(topic: topic, payload: payload)
    }
}
