import RTScheduler
import RobotConfig
import SafetyGuard
import Synchronization
import Transports

/// An input kind: its configuration keys and how it is built. A new input kind is one file
/// conforming to this plus one line in `RobotKinds.inputs`; it reaches the control path only
/// through the sources its context hands out, and the daemon only through its `InputEndpoint`.
public protocol InputKind {
    static var spec: KindSpec { get }
    static func make(_ settings: InputSettings, context: InputBuildContext) throws -> InputEndpoint
}

/// What the daemon opens for an input, and where the bytes or messages go (reader threads).
public enum InputEndpoint: Sendable {
    case serial(SerialInput)
    case inputDevice(DeviceInput)
    case mqtt(MQTTInput)

    public struct SerialInput: Sendable {
        public var endpoint: SerialEndpoint
        public var settings: SerialSettings
        public var feed: @Sendable (UnsafeRawBufferPointer, Int64) -> Void
        /// The link as the guard sees it (EOF, controller silence).
        public var link: InputLink
        /// Frames rejected by the decoder (bad CRC, COBS…), for status.
        public var rejected: @Sendable () -> Int
    }

    public struct DeviceInput: Sendable {
        public var path: String
        public var grab: Bool
        public var gamepad: GamepadInput
        /// It carries an e-stop key: the daemon runs its reader at the e-stop priority, and its
        /// end (EOF, ENODEV, the FIFO writer gone) is the e-stop device lost.
        public var isEStop: Bool
    }

    public struct MQTTInput: Sendable {
        public var subscriptions: [(filter: String, qos: Int)]
        public var handle: @Sendable (MQTTMessage) -> Void
        /// Messages without a usable value (not a number, no such field), for telemetry; nil: none counted.
        public var rejected: (@Sendable () -> Int)? = nil
    }
}

/// A device link's state for the guard: down after EOF/EIO until reconnected, and silent when no
/// complete frame arrived within `timeout` (a stream has no unplug event). Set by reader threads,
/// read on every guard tick (atomics: no lock).
public final class InputLink: Sendable {
    public let name: String
    public let timeout: Duration?
    private let up = Atomic<Bool>(true)
    /// Arrival of the last complete frame (ns, CLOCK_MONOTONIC); 0: none yet.
    public let lastFrameAt = Atomic<Int64>(0)

    public init(name: String, timeout: Duration?) {
        self.name = name
        self.timeout = timeout
    }

    public func set(up value: Bool) { up.store(value, ordering: .releasing) }
    public var isUp: Bool { up.load(ordering: .acquiring) }
    public func noteFrame(at arrival: Int64) { lastFrameAt.store(arrival, ordering: .releasing) }

    /// Down, or silent past its timeout. Before its first frame a device is given `startup` (the
    /// guard's start-up timeout) to begin talking — motion is held meanwhile, as for a sensor that
    /// has not reported — and silence beyond that is a lost link.
    func isLost(now: Instant, since start: Instant, startup: Duration) -> Bool {
        guard isUp else { return true }
        guard let timeout else { return false }
        let last = lastFrameAt.load(ordering: .acquiring)
        if last == 0 { return now.nanoseconds(since: start) > max(timeout, startup).nanoseconds }
        return now.nanoseconds(since: Instant(nanoseconds: last)) > timeout.nanoseconds
    }
}

/// What an input kind may ask of the runtime while it is built (before the scheduler starts).
public protocol InputBuildContext {
    /// A source whose events feed the named sensor (`.scalar` values, or tagged `.values` the
    /// runtime knows: range, wheel encoders, IMU), with this input's queue, priority and deadline.
    func sensorSource(_ sensor: String) throws -> SourceHandle
    /// The gamepad of this input: its axes and keys reach the policies (`World.gamepads`), its
    /// `estop` key the guard (when the input is listed under `estop.inputs`), its `reset` key the
    /// guard's reset.
    func gamepad(_ mapping: InputMapping) throws -> GamepadInput
    /// A link the guard watches (down, or silent past `timeout`).
    func link(timeout: Duration?) -> InputLink
    func settings(of input: InputSettings) -> SettingsReader
}
