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
        "\(backend): \(code.rawValue)" + (errno.map { " (errno \($0))" } ?? "") + (detail.isEmpty ? "" : ": \(detail)")
    }
}

/// A way to reach hardware (or the simulator). The only code that writes to actuators; it
/// accepts nothing but `ApprovedCommand`, which only SafetyGuard can create.
public protocol ActuatorBackend: AnyObject, Sendable {
    var name: String { get }
    /// Guard channels this back end drives.
    var channels: [ChannelID] { get }
    /// False once the link is known to be down (EOF, EIO, broker gone).
    var isConnected: Bool { get }
    func write(_ command: ApprovedCommand) throws
    /// Drives every channel of this back end to its declared safe state (de-energised).
    func applySafeState() throws
}
