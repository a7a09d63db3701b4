import SafetyGuard
import Synchronization

/// A back end that records what it is given, for tests and dry runs. It can be told to fail or
/// to lose its link.
public final class RecordingBackend: ActuatorBackend {
    public enum Entry: Sendable, Equatable {
        case command(ApprovedCommand)
        case safeState
    }

    public let name: String
    public let channels: [ChannelID]
    private let log = Mutex<[Entry]>([])
    private let failWrites = Atomic<Bool>(false)
    private let connected = Atomic<Bool>(true)

    public init(name: String, channels: [ChannelID]) {
        self.name = name
        self.channels = channels
    }

    public var isConnected: Bool { connected.load(ordering: .relaxed) }
    public var entries: [Entry] { log.withLock { $0 } }

    public func setFailing(_ failing: Bool) { failWrites.store(failing, ordering: .relaxed) }
    public func setConnected(_ up: Bool) { connected.store(up, ordering: .relaxed) }

    public func write(_ command: ApprovedCommand) throws {
        if failWrites.load(ordering: .relaxed) { throw ActuatorError(.writeFailed, backend: name, errno: 5, detail: "injected") }
        log.withLock { $0.append(.command(command)) }
    }

    public func applySafeState() throws {
        log.withLock { $0.append(.safeState) }
    }
}
