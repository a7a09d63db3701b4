import RTScheduler

/// A command the guard has approved, possibly clamped. **Only SafetyGuard can create one**: the
/// initialiser is internal to this module, so no other module (a policy, the planner, an actuator
/// back end) can forge one. Actuator back ends accept nothing else — invariant 1 as a type fact,
/// checked by `GateTypeTests`, which runs the compiler on code that tries.
public struct ApprovedCommand: Sendable, Equatable {
    public let channel: ChannelID
    public let value: CommandValue
    public let origin: CommandOrigin
    public let sourceTag: UInt32
    public let issuedAt: Instant
    public let validUntil: Instant
    /// When the guard approved it.
    public let approvedAt: Instant
    /// Category-1 stop finished: the actuator should remove power after applying `value`.
    public let deenergize: Bool
    /// The approving guard's `GuardSeal.id` and its latch epoch at approval (see `GuardSeal.admit`).
    public let guardID: UInt
    public let epoch: UInt64

    /// The guard's approval of `command`, with the (possibly clamped) value it approved.
    init(approving command: Command, value: CommandValue, at instant: Instant, validUntil: Instant, guardID: UInt, epoch: UInt64) {
        self.init(channel: command.channel, value: value, origin: command.origin, sourceTag: command.sourceTag,
                  issuedAt: command.issuedAt, validUntil: validUntil, approvedAt: instant,
                  guardID: guardID, epoch: epoch)
    }

    init(channel: ChannelID, value: CommandValue, origin: CommandOrigin, sourceTag: UInt32,
         issuedAt: Instant, validUntil: Instant, approvedAt: Instant, deenergize: Bool = false,
         guardID: UInt, epoch: UInt64) {
        self.channel = channel
        self.value = value
        self.origin = origin
        self.sourceTag = sourceTag
        self.issuedAt = issuedAt
        self.validUntil = validUntil
        self.approvedAt = approvedAt
        self.deenergize = deenergize
        self.guardID = guardID
        self.epoch = epoch
    }
}
