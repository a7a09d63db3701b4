import Actuators
import RTScheduler
import SafetyGuard
import Synchronization

/// The state a runtime's handlers share (guard, policy, status): one lock, taken by the handlers on
/// the dispatch thread and briefly by whoever reads the status. A class so that `@Sendable`
/// handlers can capture it.
final class SharedState<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: sending Value) { mutex = Mutex(value) }
    func withLock<R>(_ body: (inout Value) -> R) -> R { mutex.withLock { body(&$0) } }
}

/// A runtime's control state: its guard and the status its handlers publish.
protocol RuntimeControl: Sendable {
    associatedtype Status: BitwiseCopyable & Sendable
    var guardian: SafetyGuard { get }
    var status: Status { get set }
    /// Copies what the status shows of the guard (latched, causes…) before it is published.
    mutating func refreshStatus()
}

extension SharedState where Value: RuntimeControl {
    /// Runs `body` under the control lock and publishes the status it left (the lock makes the
    /// publisher the single writer `LatestValue` needs).
    func update<R>(_ cell: LatestValue<Value.Status>, _ body: (inout Value) -> R) -> R {
        withLock { c in
            let result = body(&c)
            c.refreshStatus()
            cell.store(c.status)
            return result
        }
    }
}

/// A back end to bring back (payload of a runtime's reactivation source).
final class BackendName: Sendable {
    let name: String
    init(_ name: String) { self.name = name }
}

/// Builds a runtime's actuator set from its guard's seal and checks that it is bound to it.
func boundActuators(_ guardian: SafetyGuard, _ make: (GuardSeal) throws -> ActuatorSet) throws -> ActuatorSet {
    let actuators = try make(guardian.seal)
    guard actuators.seal === guardian.seal else {
        throw ActuatorError(.unknownChannel, backend: "actuator set", detail: "not bound to this runtime's guard")
    }
    return actuators
}

extension SafetyGuard {
    /// Tells the guard which channels the actuator writers put in their safe state on their own
    /// (seal refusals, overtaken writes) — unless it has commanded them since. Dispatch thread.
    mutating func applySafeStateNotices(from actuators: ActuatorSet, at now: Instant) {
        var notices = actuators.takeSafeStateNotices()
        while notices != 0 {
            let channel = ChannelID(index: notices.trailingZeroBitCount)
            notices &= notices &- 1
            noteSafeStateApplied(to: channel, at: now, replacing: actuators.safeStateNoticeReplaced(channel))
        }
    }
}
