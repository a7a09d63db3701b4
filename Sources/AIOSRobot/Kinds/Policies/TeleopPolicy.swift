import RTScheduler
import RobotConfig
import SafetyGuard

/// `teleop`: a gamepad's sticks to wheel speeds while the deadman key is held (teleop_twist_joy's
/// `enable_button`), with the deadman as an enabling device (IEC 60204-1 10.9, ISO 10218):
///
/// - **Enabling needs an edge.** Motion starts only on a deadman press seen after the device was
///   opened (or came back) and after the guard's last reset, with the sticks known and near centre
///   at that moment (the reader's levels: never older than the press). A deadman held through a
///   stop, a reset or a reconnection does nothing until it is released and pressed again; a press
///   with a stick deflected, or at an unknown position, is refused until the next press.
/// - **Release keeps control.** With `on_release: hold` (the default) a released deadman — or a
///   stop, or the device's loss — leaves teleop commanding zero every period, so the arbiter never
///   hands the wheels to a policy below it, until the input's `handback` key is pressed and
///   released with the deadman known released throughout: after lost events (SYN_DROPPED) or the
///   device's (re)opening the deadman is unknown until its next event, and a hand-back then, or
///   one whose press came before, counts for nothing. `on_release: yield` is the weaker choice: a
///   stop for `release_hold_ms`, then no opinion, and the next policy by priority drives by itself.
struct TeleopPolicy: ControlPolicy {
    enum OnRelease: String, Sendable { case hold, yield }

    /// A stick within this fraction of full deflection (after the deadzone) counts as centred.
    static let centreTolerance = 0.1

    let gamepad: Int
    let linearAxis: Int
    let angularAxis: Int
    let maxLinear: Double
    let maxAngular: Double
    let kinematics: DiffDrive
    let onRelease: OnRelease
    let releaseHold: Duration
    var origin: CommandOrigin { .teleop }

    enum Mode: Equatable {
        /// No opinion: the policies below drive.
        case idle
        /// Enabled by the press made at this instant: the sticks drive.
        case driving(press: Instant)
        /// Ended at this instant (`hold`): zero until a hand-back after it.
        case holding(since: Instant)
        /// Ended at this instant (`yield`): zero for the release hold, then idle.
        case yielding(since: Instant)
    }

    private(set) var mode = Mode.idle
    /// The last press looked at as an enable edge (enabled or refused): each press is one edge.
    private var lastEdge: Instant?

    init(gamepad: Int, linearAxis: Int, angularAxis: Int, maxLinear: Double, maxAngular: Double, kinematics: DiffDrive,
         onRelease: OnRelease, releaseHold: Duration) {
        self.gamepad = gamepad
        self.linearAxis = linearAxis
        self.angularAxis = angularAxis
        self.maxLinear = maxLinear
        self.maxAngular = maxAngular
        self.kinematics = kinematics
        self.onRelease = onRelease
        self.releaseHold = releaseHold
    }

    mutating func step(_ world: World, now: Instant) -> ChannelValues? {
        let pad = world.gamepads[gamepad]
        // A press counts only if it came after everything that disarms: the device's (re)opening
        // or loss and the guard's last reset; and never while the guard is latched.
        var armedPress: Instant?
        if pad.deadman, !world.latched, let press = pad.deadmanPressedAt,
           pad.connectionChangedAt.map({ press > $0 }) ?? true, world.lastReset.map({ press > $0 }) ?? true {
            armedPress = press
        }
        if case .driving(let press) = mode, armedPress != press {
            // Released, stopped, reset or lost: the drive ends here (at the release, if that was it).
            let ended = !pad.deadman ? (pad.deadmanChangedAt ?? now) : now
            mode = onRelease == .hold ? .holding(since: ended) : .yielding(since: ended)
        }
        if let press = armedPress, press != lastEdge {
            lastEdge = press
            // A stick held deflected as the deadman goes down is the classic runaway: refused, and
            // this press stays refused (release, centre, press again).
            if isCentred(pad) { mode = .driving(press: press) }
        }
        switch mode {
        case .driving:
            // Enabled with both known: one unknown again (a frame lost with the device still held)
            // drives nothing.
            let v = pad.axes[linearAxis].isFinite ? pad.axes[linearAxis] : 0
            let w = pad.axes[angularAxis].isFinite ? pad.axes[angularAxis] : 0
            return kinematics.wheels(linear: max(-1, min(1, v)) * maxLinear, angular: max(-1, min(1, w)) * maxAngular)
        case .holding(let since):
            // The deadman known released now, too: lost events since the hand-back leave it unknown.
            if let handback = pad.handbackAt, handback > since, pad.deadmanReleased {
                mode = .idle
                return nil
            }
            return ChannelValues(count: 2)  // both wheels at rest, fresh every period: teleop keeps the wheels
        case .yielding(let since):
            if now - since < releaseHold { return ChannelValues(count: 2) }
            mode = .idle
            return nil
        case .idle:
            return nil
        }
    }

    /// Both sticks known and near centre. An unknown position (NaN: not reported since the device
    /// was opened or came back) is no centred stick: it may be jammed forward, and its first
    /// report would drive at once. A real device's axes are read at open, a stream sends them.
    private func isCentred(_ pad: GamepadState) -> Bool {
        let v = pad.axes[linearAxis], w = pad.axes[angularAxis]
        return abs(v) <= Self.centreTolerance && abs(w) <= Self.centreTolerance  // false for NaN
    }
}

enum TeleopKind: PolicyKind {
    static let spec = KindSpec(kind: "teleop", summary: "gamepad sticks to wheel speeds while a deadman key is held", fields: [
        FieldSpec("input", .string, required: true, help: "the evdev input (its `deadman` key enables motion)", refersTo: .input),
        FieldSpec("linear_axis", .string, help: "axis name for forward speed, default `linear`"),
        FieldSpec("angular_axis", .string, help: "axis name for turning, default `angular`"),
        FieldSpec("max_linear", .number(0...10), required: true, help: "m/s at full stick"),
        FieldSpec("max_angular", .number(0...20), required: true, help: "rad/s at full stick"),
        FieldSpec("on_release", .oneOf(["hold", "yield"]),
                  help: "after the deadman's release: `hold` a stop until the input's `handback` key (default), `yield` a stop for release_hold_ms, then the policies below drive by themselves"),
        FieldSpec("release_hold_ms", .number(0...10_000), help: "with `on_release: yield`: a stop for this long after the release, default 500"),
    ])

    static func make(_ settings: PolicySettings, context: PolicyBuildContext) throws -> PolicyBehaviour {
        let s = context.settings(of: settings)
        let odometry = try context.wheels(for: settings)
        let pad = try context.gamepad(try s.string("input"), for: settings)
        let input = context.configuration.inputs.first { $0.name == (try? s.string("input")) }
        let hasDeadman = input.map { SettingsReader(owner: "", $0.settings) }
            .map { (try? $0.list("keys"))?.contains { $0["action"] == .string("deadman") || $0["action"] == .string("enable") } ?? false } ?? false
        guard hasDeadman else { throw KindError("policy \(settings.name): its input needs a key with action `deadman`") }
        guard let onRelease = TeleopPolicy.OnRelease(rawValue: try s.string("on_release", default: "hold")) else {
            throw KindError("policy \(settings.name): on_release must be hold or yield")
        }
        if onRelease == .hold && s.has("release_hold_ms") {
            throw KindError("policy \(settings.name): release_hold_ms is only used with on_release: yield")
        }
        return .source(TeleopPolicy(
            gamepad: pad,
            linearAxis: try context.axis(try s.string("linear_axis", default: "linear"), of: pad, for: settings),
            angularAxis: try context.axis(try s.string("angular_axis", default: "angular"), of: pad, for: settings),
            maxLinear: try s.number("max_linear"), maxAngular: try s.number("max_angular"),
            kinematics: DiffDrive(odometry), onRelease: onRelease,
            releaseHold: .milliseconds(try s.number("release_hold_ms", default: 500))))
    }
}
