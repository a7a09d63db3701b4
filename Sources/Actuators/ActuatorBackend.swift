import Platform
import RTScheduler
import SafetyGuard

/// Why an actuator write or safe-state application failed.
public struct ActuatorError: Error, CustomStringConvertible, Equatable {
    public enum Code: String, Sendable {
        case writeFailed = "write-failed"
        case disconnected
        /// The actuator is not active: commands are accepted only while active.
        case notActive = "not-active"
        case unknownChannel = "unknown-channel"
        case encodingFailed = "encoding-failed"
        /// The device took no bytes for the stall time-out (a full port or pipe nobody drains).
        case stalled
        /// The back end cannot do this without blocking (e.g. no file descriptor for an emergency write).
        case unsupported
    }
    public var code: Code
    public var backend: String
    /// errno of the underlying call, when there is one.
    public var errno: Int32?
    public var detail: String

    public init(_ code: Code, backend: String, errno: Int32? = nil, detail: String = "") {
        self.code = code
        self.backend = backend
        self.errno = errno
        self.detail = detail
    }

    public var description: String {
        // The cause in words ("disconnected: input/output error (device unplugged?)"), as everywhere.
        "\(backend): \(code.rawValue)" + (errno.map { ": \(SystemErrorWords.text($0))" } ?? "") + (detail.isEmpty ? "" : " (\(detail))")
    }
}

/// Permission to touch a device, handed to a back end by `ActuatorSet` only after the lifecycle and
/// the guard's seal (`GuardSeal.admit`) allowed the write. The initialiser is `internal` — not
/// `package`, which every target of this package would see — so code outside this module cannot
/// drive a back end around the set's checks (`ActuatorsTests/DeviceTokenTypeTests`).
public struct DeviceWriteToken: Sendable {
    /// The minting set's seal and clock: a back end whose command may leave later than `write`
    /// returns (MQTT: after the topic's outstanding message is confirmed) checks the approval
    /// again then. nil: a token a test made.
    let seal: SealClock?

    init(seal: SealClock? = nil) { self.seal = seal }
}

/// A guard's seal with the clock that decides its approvals' validity: the actuator set's, for the
/// checks a back end makes after `write` returned (`DeviceWriteToken.seal`).
final class SealClock: Sendable {
    let seal: GuardSeal
    let clock: any SchedulerClock

    init(seal: GuardSeal, clock: any SchedulerClock) {
        self.seal = seal
        self.clock = clock
    }
}

/// A way to reach hardware (or the simulator). The only code that writes to actuators; it
/// accepts nothing but `ApprovedCommand`, which only SafetyGuard can create, and only with a
/// `DeviceWriteToken`, which only the actuator set can create.
public protocol ActuatorBackend: AnyObject, Sendable {
    var name: String { get }
    /// Guard channels this back end drives.
    var channels: [ChannelID] { get }
    /// False once the link is known to be down (EOF, EIO, broker gone). Real-time safe (an atomic read).
    var isConnected: Bool { get }
    func write(_ command: ApprovedCommand, token: DeviceWriteToken) throws
    /// Drives every channel of this back end to its declared safe state (de-energised).
    func applySafeState(token: DeviceWriteToken) throws
    /// Drives one channel to its safe value, de-energised. Default: the whole back end's safe state.
    func applySafeState(channel: ChannelID, token: DeviceWriteToken) throws
}

extension ActuatorBackend {
    public func applySafeState(channel: ChannelID, token: DeviceWriteToken) throws { try applySafeState(token: token) }
}

/// A back end whose link wants a keep-alive (the serial protocol's heartbeat frame), sent by the
/// writer after `ActuatorSet.heartbeat()`.
public protocol HeartbeatSending: ActuatorBackend {
    func sendHeartbeat(token: DeviceWriteToken) throws
}

/// A back end that can reach its safe state from any thread without taking a lock that its writer
/// or the dispatch thread may hold, and without blocking (`ActuatorSet.emergencySafeState()`).
public protocol EmergencyStopping: ActuatorBackend {
    /// One non-blocking attempt; throws when it did not (entirely) get out.
    func emergencySafeState(token: DeviceWriteToken) throws
}

/// What one direct attempt did (`DirectWriting.tryWrite`).
public enum DirectWriteAttempt: Sendable, Equatable {
    /// The whole frame is on the device.
    case written
    /// Nothing went out (a lock busy, the device full, the link down, a fragment to resynchronise):
    /// the caller hands the command to the writer thread.
    case notSent
    /// Part of the frame went out; the rest waits in the back end until the writer thread finishes
    /// it (`finishPartialWrite`) or drops it (`abandonPartialWrite`). Nothing else may be written
    /// through the back end before either.
    case partial
}

/// A back end whose commands can leave from the dispatch thread itself when that costs no wait:
/// one attempt that takes no lock another thread may hold for long (try-locks only), makes at most
/// one non-blocking write(2) and allocates nothing (`ActuatorSet`'s direct lanes). Whatever the
/// attempt could not do, the set hands to the back end's writer thread.
public protocol DirectWriting: ActuatorBackend {
    /// One attempt at the command's frame. Caller holds the set's device lock of this back end.
    func tryWrite(_ command: ApprovedCommand, token: DeviceWriteToken) -> DirectWriteAttempt
    /// One attempt at a channel's safe value (de-energised), the same way.
    func trySafeValue(channel: ChannelID, token: DeviceWriteToken) -> DirectWriteAttempt
    /// Writer thread: sends the rest of the frame a `.partial` attempt left, with the bounded wait
    /// of an ordinary write. Nothing pending: nothing to do.
    func finishPartialWrite(token: DeviceWriteToken) throws
    /// Drops the rest of a partly written frame without a wait: the next frame then starts with a
    /// delimiter, so the receiver discards the fragment (its CRC fails) instead of gluing it on.
    func abandonPartialWrite()
}
