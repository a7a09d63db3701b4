import Glibc
import SafetyGuard
import Synchronization

/// A back end that records what it is given, for tests and dry runs. It can be told to fail or
/// to lose its link.
public final class RecordingBackend: ActuatorBackend, HeartbeatSending {
    public enum Entry: Sendable, Equatable {
        case command(ApprovedCommand)
        case safeState
        /// One channel's safe value (a refused approval replaced).
        case safeValue(ChannelID)
        case heartbeat
    }

    public let name: String
    public let channels: [ChannelID]
    private let log = Mutex<[Entry]>([])
    private let failWrites = Atomic<Bool>(false)
    private let connected = Atomic<Bool>(true)
    private let delayMicroseconds = Atomic<Int>(0)

    public init(name: String, channels: [ChannelID]) {
        self.name = name
        self.channels = channels
    }

    public var isConnected: Bool { connected.load(ordering: .relaxed) }
    public var entries: [Entry] { log.withLock { $0 } }

    public func setFailing(_ failing: Bool) { failWrites.store(failing, ordering: .relaxed) }
    public func setConnected(_ up: Bool) { connected.store(up, ordering: .relaxed) }
    /// Every device write then takes this long (a slow link), on the writer's thread.
    public func setDelay(microseconds: Int) { delayMicroseconds.store(microseconds, ordering: .relaxed) }

    public func write(_ command: ApprovedCommand, token: DeviceWriteToken) throws {
        if failWrites.load(ordering: .relaxed) { throw ActuatorError(.writeFailed, backend: name, errno: 5, detail: "injected") }
        delay()
        log.withLock { $0.append(.command(command)) }
    }

    public func applySafeState(token: DeviceWriteToken) throws {
        log.withLock { $0.append(.safeState) }
    }

    public func applySafeState(channel: ChannelID, token: DeviceWriteToken) throws {
        log.withLock { $0.append(.safeValue(channel)) }
    }

    public func sendHeartbeat(token: DeviceWriteToken) throws {
        log.withLock { $0.append(.heartbeat) }
    }

    private func delay() {
        let us = delayMicroseconds.load(ordering: .relaxed)
        if us > 0 { usleep(UInt32(us)) }
    }
}
