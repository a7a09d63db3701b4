import Logging
import SafetyGuard
import Synchronization

/// Owns the actuator back ends: routes each approved command to the back end that drives its
/// channel, enforces the lifecycle, and applies safe states on faults and on the way out.
public final class ActuatorSet: Sendable {
    /// What happened to one write.
    public enum WriteOutcome: Sendable, Equatable {
        case written
        /// Not active (or finalized): refused and counted.
        case refused
        case noBackend
        /// The back end failed: its safe state was applied (if it could be) and it went inactive.
        case failed(ActuatorError)
    }

    /// A back end failed or disconnected. The runtime hands it to the guard
    /// (`actuatorFailure` / `connectionLost`), which stops the rest safely.
    public struct Fault: Sendable, Equatable {
        public var backend: String
        public var error: ActuatorError
        public var safeStateApplied: Bool
    }

    private struct Entry {
        let backend: any ActuatorBackend
        var lifecycle = ActuatorLifecycle()
    }

    private let entries: Mutex<[Entry]>
    private let routes: [Int: Int]  // channel index → entry index
    private let logger: Logger
    private let onFault: @Sendable (Fault) -> Void
    public let refused = Atomic<UInt64>(0)
    public let written = Atomic<UInt64>(0)
    public let failures = Atomic<UInt64>(0)

    public init(backends: [any ActuatorBackend], logger: Logger = Logger(label: "robotd.actuators"),
                onFault: @escaping @Sendable (Fault) -> Void = { _ in }) throws {
        var routes: [Int: Int] = [:]
        for (i, backend) in backends.enumerated() {
            for channel in backend.channels {
                if let other = routes[channel.index] {
                    throw ActuatorError(.unknownChannel, backend: backend.name,
                                        detail: "channel \(channel.index) is also driven by \(backends[other].name)")
                }
                routes[channel.index] = i
            }
        }
        self.routes = routes
        self.entries = Mutex(backends.map { Entry(backend: $0) })
        self.logger = logger
        self.onFault = onFault
    }

    /// Configures and activates every back end (each starts from its safe state).
    public func start() {
        entries.withLock { entries in
            for i in entries.indices {
                _ = entries[i].lifecycle.configure()
                perform(entries[i].lifecycle.activate(), on: entries[i].backend)
            }
        }
    }

    /// Writes one guard-approved command. The lock is per set and uncontended on the control
    /// path; back ends say whether their write is real-time safe.
    @discardableResult
    public func write(_ command: ApprovedCommand) -> WriteOutcome {
        guard let index = routes[command.channel.index] else { return .noBackend }
        var fault: Fault?
        let outcome = entries.withLock { entries -> WriteOutcome in
            guard entries[index].lifecycle.acceptsCommands else {
                refused.add(1, ordering: .relaxed)
                return .refused
            }
            let backend = entries[index].backend
            do {
                guard backend.isConnected else { throw ActuatorError(.disconnected, backend: backend.name) }
                try backend.write(command)
                written.add(1, ordering: .relaxed)
                return .written
            } catch {
                failures.add(1, ordering: .relaxed)
                let failure = error as? ActuatorError ?? ActuatorError(.writeFailed, backend: backend.name, detail: "\(error)")
                _ = entries[index].lifecycle.fault()
                let applied = perform(.applySafeState, on: backend)
                fault = Fault(backend: backend.name, error: failure, safeStateApplied: applied)
                return .failed(failure)
            }
        }
        if let fault {
            logger.error("actuator \(fault.backend) failed: \(fault.error); safe state \(fault.safeStateApplied ? "applied" : "could not be applied")")
            onFault(fault)
        }
        return outcome
    }

    /// Brings a back end back after a fault (e.g. reconnected): safe state first, then active.
    public func reactivate(_ name: String) -> Bool {
        entries.withLock { entries in
            guard let i = entries.firstIndex(where: { $0.backend.name == name }), entries[i].backend.isConnected else { return false }
            return perform(entries[i].lifecycle.activate(), on: entries[i].backend)
        }
    }

    /// The step that always runs on the way out (signal, shutdown, crash of a back end): every
    /// back end gets its safe state and is finalized. Errors are logged, never thrown: one
    /// failing back end must not keep the others from their safe state.
    public func safeStop(reason: String) {
        entries.withLock { entries in
            for i in entries.indices {
                _ = entries[i].lifecycle.finalize()
                perform(.applySafeState, on: entries[i].backend)
            }
        }
        logger.notice("actuators in safe state: \(reason)")
    }

    /// The guard channels a back end drives (empty for an unknown name).
    public func channels(of name: String) -> [ChannelID] {
        entries.withLock { $0.first { $0.backend.name == name }?.backend.channels ?? [] }
    }

    public func state(of name: String) -> ActuatorLifecycle.State? {
        entries.withLock { $0.first { $0.backend.name == name }?.lifecycle.state }
    }

    @discardableResult
    private func perform(_ action: ActuatorLifecycle.Action, on backend: any ActuatorBackend) -> Bool {
        guard action == .applySafeState else { return action == .none }
        do {
            try backend.applySafeState()
            return true
        } catch {
            logger.critical("could not apply the safe state of \(backend.name): \(error)")
            return false
        }
    }
}
