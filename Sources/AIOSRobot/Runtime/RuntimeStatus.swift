import RTScheduler
import SafetyGuard

/// What the control path last published (lock-free for readers: `LatestValue` needs a bitwise
/// copyable value, hence fixed capacities). Channels and sensors beyond the capacities are not
/// shown here (they are controlled and guarded all the same).
public struct RuntimeStatus: Sendable, BitwiseCopyable {
    public static let channelCapacity = 16
    public static let sensorCapacity = 16

    public var verdicts = VerdictCounts()
    public var latched = false
    public var latchCause: FaultKind?
    /// Stop causes present now (they refuse a reset).
    public var causes: StopCauses = []
    public var inRecovery = false
    /// Held, not latched: motion by the workspace edge or a sensor not yet reporting, every
    /// channel by an e-stop whose level is unknown — the kinds in `holdCauses`.
    public var holding = false
    public var holdCauses: StopCauses = []
    public var resets = 0
    public var refusedResets = 0
    public var lastRefusal: StopCauses = []
    public var deadlineFaults = 0
    public var stalls = 0
    public var reactivations = 0
    public var remoteStops = 0
    /// Remote reset requests that named a latch number other than the current one (ignored):
    /// sent for an earlier stop state, or duplicates of a request already answered.
    public var staleResetsIgnored = 0
    /// The latch number a remote reset request must name (`reset N`): it advances at every new
    /// stop state — a latch, an escalation, a remote stop, a stop cause appearing, a release — and
    /// whenever a remote request naming it is answered (docs/mqtt.md, "Inbound topics and security").
    public var latchSequence: UInt64 = 0
    /// Every input link and the broker up (and not silent), as the guard's last tick found them;
    /// false until its first tick: links not looked at yet are not up (a `robotd run` summary
    /// printed before that tick said `links_up: true` with the broker unreachable).
    public var linksUp = false
    /// The odometry pose (NaN without one).
    public var pose = World.Pose(x: .nan, y: .nan, yaw: .nan)
    /// Per channel (configuration order): what the winning policy asked for last (NaN: nothing
    /// yet), what the guard holds now, the measured value (wheel speeds from odometry; NaN: none),
    /// and which policy (configuration index) commanded it last (-1: none).
    public var wanted = InlineArray<16, Double>(repeating: .nan)
    public var approved = InlineArray<16, Double>(repeating: .nan)
    public var measured = InlineArray<16, Double>(repeating: .nan)
    public var commandedBy = InlineArray<16, Int8>(repeating: -1)
    /// Fresh sensor values as the last policy step saw them (NaN: unknown).
    public var sensors = InlineArray<16, Double>(repeating: .nan)
    /// Times a filter changed the winning output (e.g. obstacle_stop removed forward motion).
    public var filtered = 0
    /// Discrete states confirmed while a switch had to wait (minimum on/off time, switch rate).
    public var discreteRefreshes = 0

    public init() {}
}
