import RTScheduler

/// One non-pass decision of the guard, fixed-size so recording it never allocates.
public struct AuditRecord: BitwiseCopyable, Sendable, Equatable {
    public enum Kind: String, BitwiseCopyable, Sendable, Codable {
        case clamped, rejected
        /// A command refused because the e-stop is latched.
        case refusedWhileStopped = "refused-while-stopped"
        case fault, latched, reset, hold, holdReleased = "hold-released", warn
        case watchdog
        case deenergized
        /// A reset refused: `causes` lists what is still present.
        case resetRefused = "reset-refused"
        /// A reset into the workspace recovery hold.
        case resetIntoRecovery = "reset-into-recovery"
        case recoveryEnded = "recovery-ended"
        /// A cause went away (the level cleared); a reset is still needed.
        case causeCleared = "cause-cleared"
        /// A sensor value that counts as no sample (not finite, out of range).
        case sampleRejected = "sample-rejected"
        /// A value interlock locked (or released) the channels it names.
        case interlocked
        /// A motion command passed in the workspace recovery hold (or hold) because it moves back toward the workspace.
        case recoveryCommand = "recovery-command"
    }
    public var at: Instant
    public var kind: Kind
    public var channel: Int
    public var origin: CommandOrigin?
    public var sourceTag: UInt32
    public var requested: Double
    public var approved: Double
    public var clampReasons: ClampReasons
    public var rejectReason: RejectReason?
    public var fault: FaultKind?
    public var category: StopCategory?
    /// Stop causes present (for refused resets: the reasons).
    public var causes: StopCauses

    init(at: Instant, kind: Kind, channel: Int = -1, origin: CommandOrigin? = nil, sourceTag: UInt32 = 0,
         requested: Double = .nan, approved: Double = .nan, clampReasons: ClampReasons = [],
         rejectReason: RejectReason? = nil, fault: FaultKind? = nil, category: StopCategory? = nil,
         causes: StopCauses = []) {
        self.at = at
        self.kind = kind
        self.channel = channel
        self.origin = origin
        self.sourceTag = sourceTag
        self.requested = requested
        self.approved = approved
        self.clampReasons = clampReasons
        self.rejectReason = rejectReason
        self.fault = fault
        self.category = category
        self.causes = causes
    }

    public static func == (a: AuditRecord, b: AuditRecord) -> Bool {
        a.at == b.at && a.kind == b.kind && a.channel == b.channel && a.origin == b.origin && a.sourceTag == b.sourceTag
            && (a.requested == b.requested || (a.requested.isNaN && b.requested.isNaN))
            && (a.approved == b.approved || (a.approved.isNaN && b.approved.isNaN))
            && a.clampReasons == b.clampReasons && a.rejectReason == b.rejectReason && a.fault == b.fault
            && a.category == b.category && a.causes == b.causes
    }
}

/// The guard's audit trail: appended on the check path, drained by telemetry.
public typealias AuditLog = OverwritingRing<AuditRecord>
