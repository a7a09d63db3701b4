import RTScheduler
import Synchronization

/// A guard's identity and latch epoch, shared with the one actuator set bound to that guard.
///
/// Every `ApprovedCommand` carries the id of the guard that approved it and the epoch (the number
/// of latches and resets so far) at approval. Where the bytes leave — the actuator writer, when it dequeues —
/// `admit` refuses an approval of another guard, one approved before the latest latch, or one past
/// its validity. So a second, permissive guard cannot drive the actuators, and a stored approval
/// cannot be replayed after a stop.
public final class GuardSeal: Sendable {
    private let latches = Atomic<UInt64>(0)

    init() {}

    /// Unique among live seals (the object's address); the actuator set keeps its seal alive.
    public var id: UInt { UInt(bitPattern: ObjectIdentifier(self)) }

    /// Latches and resets so far. Written by the guard's thread, read by writer threads.
    public var epoch: UInt64 { latches.load(ordering: .acquiring) }

    func advanceEpoch() -> UInt64 { latches.add(1, ordering: .acquiringAndReleasing).newValue }

    /// Why an approval may not leave for an actuator.
    public enum Refusal: String, BitwiseCopyable, Sendable, Codable, CaseIterable {
        case foreignGuard = "foreign-guard"
        case beforeLatch = "before-latch"
        case expired
    }

    /// Nil when `command` may be written now. Real-time safe: no allocation, no lock.
    @inlinable
    public func admit(_ command: ApprovedCommand, now: Instant) -> Refusal? {
        if command.guardID != id { return .foreignGuard }
        if command.epoch != epoch { return .beforeLatch }
        if now > command.validUntil { return .expired }
        return nil
    }
}
