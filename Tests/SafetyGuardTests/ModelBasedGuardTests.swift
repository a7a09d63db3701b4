import Foundation
import RTScheduler
import Testing
@testable import SafetyGuard

/// Model-based test of the guard's invariants (safety issue §8).
///
/// A seeded random sequence interleaves commands from every origin (continuous and discrete
/// channels; some NaN, out of range, stale, wrong kind, queued from before a reset), sensor samples
/// and silences (never reported, invalid values), e-stop presses and releases with the sticky press
/// counter, the reset key, direct resets, link and deadline faults as levels, operator stops of
/// categories 0/1/2, and time steps with a guard tick every step. Approvals go through a
/// latest-per-channel mailbox to a recording back end whose writer checks `seal.admit` at the
/// instant it delivers (stalls, replays after latches and a second guard's approvals make the
/// seal refuse; a refused approval is replaced by the channel's safe value, de-energised, and the
/// guard is told with `noteSafeStateApplied`, as inline mode can).
///
/// After every step everything is checked against an independent model written here from
/// docs/safety.md and the fail-closed contract — none of the guard's code computes expectations:
/// seal outcomes, stop categories (0 de-energises at once, 1 ramps then de-energises once, 2 holds
/// energised), range and first-derivative rate against the last value that reached the back end,
/// guard-made steps only toward safe, no approval from before the latest latch or past its validity
/// at the back end, reset outcomes against the causes the model knows, and latches and refused
/// resets in the audit. `ROBOTD_MODEL_SEED` (decimal or 0x-hex) runs one seed; `ROBOTD_MODEL_STEPS`
/// sets the steps per seed.
@Suite("SafetyGuard model-based test: random interleavings against an independent model")
struct ModelBasedGuardTests {
    static let ciSeeds: [UInt64] = [0x5EED_0001, 0x5EED_0002, 0x5EED_0003, 0x5EED_0004]
    static let ciStepsPerSeed = 25_000

    @Test func when_random_interleavings_run_expect_every_invariant_to_hold_after_every_step() throws {
        let environment = ProcessInfo.processInfo.environment
        var seeds = Self.ciSeeds
        if let text = environment["ROBOTD_MODEL_SEED"] {
            let parsed = text.hasPrefix("0x") ? UInt64(text.dropFirst(2), radix: 16) : UInt64(text)
            guard let seed = parsed else {
                Issue.record("ROBOTD_MODEL_SEED=\(text) is not a number")
                return
            }
            seeds = [seed]
        }
        let steps = environment["ROBOTD_MODEL_STEPS"].flatMap { Int($0) } ?? Self.ciStepsPerSeed
        let clock = ContinuousClock()
        let started = clock.now
        var total = ModelCounts()
        for seed in seeds {
            let run = try ModelRun(seed: seed)
            run.execute(steps: steps)
            if let failure = run.failure {
                Issue.record("\(failure)")
            }
            total.add(run.counts)
        }
        let elapsed = clock.now - started
        print("ModelBasedGuardTests: \(seeds.count) seed(s) × \(steps) steps in \(elapsed): \(total)")
        // Fixed in the limiter: out of a tighter origin range, the value moves back at the rate limit.
        #expect(total.rateYieldedToOriginRange == 0, "\(total.rateYieldedToOriginRange) approvals jumped to the origin's range edge beyond the rate limit")
        // Every case the model is about must actually have occurred.
        #expect(total.refusedResets > 0, "no refused reset")
        #expect(total.heldThrough > 0, "no reset refused for a reset key held through the release")
        #expect(total.beforeLatch > 0, "no replay refused (before-latch)")
        #expect(total.expired > 0, "no expiry refused")
        #expect(total.foreign > 0, "no foreign-guard refusal")
        #expect(total.latches[0] > 0 && total.latches[1] > 0 && total.latches[2] > 0, "stop categories \(total.latches)")
        #expect(total.clamps > 0, "no clamp")
        #expect(total.rejections > 0, "no rejection")
        #expect(total.released > 0, "no released reset")
        #expect(total.stillStopping > 0, "no reset during a ramp")
        #expect(total.notFresh > 0, "no command refused as issued before a reset")
        #expect(total.ramps[1] > 0 && total.ramps[2] > 0, "completed ramps \(total.ramps)")
    }

    static let featureSeeds: [UInt64] = [0xFEA7_0001, 0xFEA7_0002]
    static let featureStepsPerSeed = 20_000

    /// The second episode kind: workspace ladder and recovery hold, value interlocks, motion monitors.
    @Test func when_random_workspace_interlock_and_monitor_episodes_run_expect_every_invariant_to_hold() throws {
        let environment = ProcessInfo.processInfo.environment
        var seeds = Self.featureSeeds
        if let text = environment["ROBOTD_MODEL_SEED"] {
            guard let seed = text.hasPrefix("0x") ? UInt64(text.dropFirst(2), radix: 16) : UInt64(text) else { return }
            seeds = [seed]
        }
        let steps = environment["ROBOTD_MODEL_STEPS"].flatMap { Int($0) } ?? Self.featureStepsPerSeed
        let clock = ContinuousClock()
        let started = clock.now
        var total = FeatureCounts()
        for seed in seeds {
            let run = try FeatureModelRun(seed: seed)
            run.execute(steps: steps)
            if let failure = run.failure { Issue.record("\(failure)") }
            total.add(run.counts)
        }
        print("ModelBasedGuardTests (features): \(seeds.count) seed(s) × \(steps) steps in \(clock.now - started): \(total)")
        #expect(total.workspaceLatches > 0 && total.beyondStopLatched > 0, "no workspace latch")
        #expect(total.intoRecovery > 0, "no reset into recovery")
        #expect(total.recoveryApprovals > 0, "no wheel command approved in recovery")
        #expect(total.awayRejected > 0, "no command refused as away from the workspace")
        #expect(total.relatchedInRecovery > 0, "no latch again from recovery")
        #expect(total.recoveriesEnded > 0, "no recovery ended inside")
        #expect(total.interlockTrips > 0 && total.interlockedRejections > 0, "no interlock")
        #expect(total.lockedAfterClear > 0, "no command refused while locked after the reading cleared")
        #expect(total.refusedInterlock > 0, "no reset refused for an interlock")
        #expect(total.unlocks > 0 && total.unlockedApprovals > 0, "no unlocking reset followed by an approval")
        #expect(total.monitorTrips > 0, "no runaway trip")
        #expect(total.refusedRunaway > 0, "no reset refused while a wheel keeps turning")
    }
}

struct ModelCounts: CustomStringConvertible {
    var steps = 0
    var checks = 0, approvals = 0, clamps = 0, rejections = 0, stops = 0, notFresh = 0
    var latches = [0, 0, 0]
    var ramps = [0, 0, 0]  // completed category-1/2 stops (index = category)
    var refusedResets = 0, heldThrough = 0, stillStopping = 0, released = 0, notLatched = 0
    var beforeLatch = 0, expired = 0, foreign = 0, written = 0
    var episodes = 0
    /// Known issue: a per-origin range narrower than where the channel is makes the rate limit yield.
    var rateYieldedToOriginRange = 0
    var rateYieldFollowOn = 0

    mutating func add(_ o: ModelCounts) {
        steps += o.steps; checks += o.checks; approvals += o.approvals; clamps += o.clamps
        rejections += o.rejections; stops += o.stops; notFresh += o.notFresh
        for i in 0..<3 { latches[i] += o.latches[i]; ramps[i] += o.ramps[i] }
        refusedResets += o.refusedResets; heldThrough += o.heldThrough; stillStopping += o.stillStopping
        released += o.released; notLatched += o.notLatched
        beforeLatch += o.beforeLatch; expired += o.expired; foreign += o.foreign; written += o.written
        episodes += o.episodes
        rateYieldedToOriginRange += o.rateYieldedToOriginRange
        rateYieldFollowOn += o.rateYieldFollowOn
    }

    var description: String {
        "steps=\(steps) episodes=\(episodes) checks=\(checks) approvals=\(approvals) clamps=\(clamps) rejections=\(rejections) "
            + "refused-while-stopped=\(stops) not-fresh=\(notFresh) latches[cat0,1,2]=\(latches) completed-ramps[cat1,2]=\(ramps[1]),\(ramps[2]) "
            + "resets: refused=\(refusedResets) (held-through=\(heldThrough)) still-stopping=\(stillStopping) released=\(released) not-latched=\(notLatched) "
            + "seal: written=\(written) before-latch=\(beforeLatch) expired=\(expired) foreign-guard=\(foreign) "
            + "known-issue rate-yielded-to-origin-range=\(rateYieldedToOriginRange) (follow-on after a zero-dt yield: \(rateYieldFollowOn))"
    }
}

/// What the model knows of one channel, written from the configuration below (not from the guard).
struct ChannelSpec {
    let continuous: Bool
    let safe: Double
    let isMotion: Bool
    /// Per origin (policy, teleop, planner, guard): range and rate up / down (down: toward zero).
    let range: [ClosedRange<Double>]
    let up: [Double]
    let down: [Double]
    let stopRate: Double
    let maxStep: Double = 0.1
    // Discrete
    let allowed: Set<Int>
    let minOn: Int64, minOff: Int64, maxSwitches: Int
}

/// The actuator writer's recording back end: admits or replaces with the safe value. Kept small so
/// it can be swapped for `ActuatorSet` in inline mode.
struct RecordingSink {
    struct Entry {
        var at: Instant
        var value: CommandValue
        var deenergize: Bool
        var origin: CommandOrigin?  // nil: the writer's own safe value after a refusal
        var approvedAt: Instant
        var refusal: GuardSeal.Refusal?
    }
    var last: [Entry?]
    var entries = 0

    init(channels: Int) { last = Array(repeating: nil, count: channels) }

    /// Delivers `command` now; returns the seal's refusal (then the safe value went out instead).
    mutating func deliver(_ command: ApprovedCommand, seal: GuardSeal, safe: CommandValue, now: Instant) -> GuardSeal.Refusal? {
        entries += 1
        if let refusal = seal.admit(command, now: now) {
            last[command.channel.index] = Entry(at: now, value: safe, deenergize: true, origin: nil, approvedAt: now, refusal: refusal)
            return refusal
        }
        last[command.channel.index] = Entry(at: now, value: command.value, deenergize: command.deenergize,
                                            origin: command.origin, approvedAt: command.approvedAt, refusal: nil)
        return nil
    }
}

/// One approval on its way to the back end, with what the model knew when it was made.
struct Tracked {
    var command: ApprovedCommand
    var foreign: Bool
    var modelEpoch: UInt64
    var replay: Bool
    /// Approved with the rate yielding to the origin's range (the known issue).
    var knownYield = false
}

final class ModelRun {
    static let specs: [ChannelSpec] = [
        // left: velocity ±2, acceleration 4, deceleration 8; teleop ±1.5; planner ±0.5 at 2; watchdog 300 ms.
        ChannelSpec(continuous: true, safe: 0, isMotion: true,
                    range: [-2...2, -1.5...1.5, -0.5...0.5, -2...2], up: [4, 4, 2, 4], down: [8, 8, 2, 8], stopRate: 8,
                    allowed: [], minOn: 0, minOff: 0, maxSwitches: 0),
        // arm: position −1.5…1.5 at 1 (acceleration 4), safe 0.2, stop rate 0.5; planner −0.5…1 at 0.5.
        ChannelSpec(continuous: true, safe: 0.2, isMotion: true,
                    range: [-1.5...1.5, -1.5...1.5, -0.5...1.0, -1.5...1.5], up: [1, 1, 0.5, 1], down: [1, 1, 0.5, 1], stopRate: 0.5,
                    allowed: [], minOn: 0, minOff: 0, maxSwitches: 0),
        // heater: states 0/1, on ≥150 ms, off ≥100 ms, ≤ 8 switches a minute; not motion.
        ChannelSpec(continuous: false, safe: 0, isMotion: false, range: [], up: [], down: [], stopRate: 0,
                    allowed: [0, 1], minOn: 150_000_000, minOff: 100_000_000, maxSwitches: 8),
        // fan: duty 0…1 at 2 /s; not motion.
        ChannelSpec(continuous: true, safe: 0, isMotion: false,
                    range: [0...1, 0...1, 0...1, 0...1], up: [2, 2, 2, 2], down: [2, 2, 2, 2], stopRate: 2,
                    allowed: [], minOn: 0, minOff: 0, maxSwitches: 0),
    ]
    static let sensorMaxAge: Int64 = 100_000_000
    static let startupTimeout: Int64 = 500_000_000
    static let guardValidity: Int64 = 250_000_000
    static let eps = 1e-9

    static func configuration(startLatched: Bool, sensors: Bool = true) -> GuardConfiguration {
        var c = GuardConfiguration(
            channels: [
                ChannelConfiguration(name: "left", limits: .continuous(.velocity(maxVelocity: 2, maxAcceleration: 4, maxDeceleration: 8)),
                                     originLimits: [.teleop: .continuous(.velocity(maxVelocity: 1.5)),
                                                    .planner: .continuous(.velocity(maxVelocity: 0.5, maxAcceleration: 2))],
                                     watchdogTimeout: .milliseconds(300)),
                ChannelConfiguration(name: "arm", limits: .continuous(.position(minPosition: -1.5, maxPosition: 1.5, maxVelocity: 1, maxAcceleration: 4)),
                                     originLimits: [.planner: .continuous(.position(minPosition: -0.5, maxPosition: 1.0, maxVelocity: 0.5))],
                                     safeValue: .continuous(0.2), stopRate: 0.5),
                ChannelConfiguration(name: "heater", limits: .discrete(DiscreteLimits(allowedStates: [0, 1], minOnTime: .milliseconds(150),
                                                                                     minOffTime: .milliseconds(100), maxSwitchesPerMinute: 8)),
                                     isMotion: false),
                ChannelConfiguration(name: "fan", limits: .continuous(.duty(maxRate: 2)), isMotion: false),
            ],
            sensors: sensors ? [RequiredSensor(name: "range", maxAge: .milliseconds(100), reaction: .stop(.one), validRange: 0...10)] : [],
            auditCapacity: 8192)
        c.startupTimeout = .milliseconds(500)
        c.startLatched = startLatched
        return c
    }

    let seed: UInt64
    var rng: SeededGenerator
    var counts = ModelCounts()
    var failure: String?

    // The system under test and its surroundings.
    var guardian: SafetyGuard
    var foreign: SafetyGuard
    var sink: RecordingSink
    var mailbox: [Tracked?]
    var writerStalledUntil = Instant.zero
    var replayStore: [Tracked] = []
    var oldCommands: [Command] = []

    // The world.
    var now = Instant.zero
    var step = 0
    var episode = 0
    var estopHeld = false
    var estopPresses: UInt64 = 0
    var resetKeyDown = false
    var sensorMode = 0  // 0: not started yet, 1: healthy, 2: silent
    var sensorStartsAt = Instant.zero

    // The model.
    struct Model {
        var latched = false
        var category = StopCategory.two
        var cause = FaultKind.operatorRequest
        var stopped = false
        var epoch: UInt64 = 0
        var estopObserved = false
        var pressesObserved: UInt64 = 0
        var estopReleasedAt: Instant?
        var linkDown = false
        var deadline = false
        var sensorSeen: Instant?
        var firstTick: Instant?
        var staleAtTick = false, silentAtTick = false, holdAtTick = false
        var lastReset: Instant?
        var needsFresh: [Bool]
        var keyDownSince: Instant?
        /// The guard's stream: the last value it approved, emitted or was told of, per channel, and when.
        var current: [CommandValue]
        var currentAt: [Instant?]
        var heaterChanges: [Instant] = []
        var heaterLastChange: Instant?
        /// Back end, per latch: the value the guard's ramp started from, and de-energised already.
        var rampStart: [Double]
        /// Known issue: the limiter's value after a rate yield at dt = 0 (it kept the value before).
        var shadow: [Double?]
        var deenergizedInLatch: [Bool]
        // Expected audit for this step.
        var expectedLatches: [(FaultKind, StopCategory)] = []
        var expectedRefused: [StopCauses] = []
        var expectedResets = 0
        // Per guard call.
        var latchEventThisCall = false
        var cat0ThisCall = false

        var blocking: StopCauses {
            var c: StopCauses = []
            if estopObserved { c.insert(StopCauses(.emergencyStopInput)) }
            if linkDown { c.insert(StopCauses(.connectionLost)) }
            if deadline { c.insert(StopCauses(.deadlineFault)) }
            if staleAtTick { c.insert(StopCauses(.staleSensor)) }
            if silentAtTick { c.insert(StopCauses(.silentSensor)) }
            return c
        }
    }
    var model: Model
    // Per-step audit tallies from verdicts.
    var stepRejected = 0, stepClamped = 0, stepStops = 0

    // A short trace for the failure message.
    var trace: [String] = []
    var traceOn = false
    let traceLines = ProcessInfo.processInfo.environment["ROBOTD_MODEL_TRACE"].flatMap { Int($0) } ?? 40

    init(seed: UInt64) throws {
        self.seed = seed
        rng = SeededGenerator(seed: seed)
        guardian = try SafetyGuard(configuration: Self.configuration(startLatched: false))
        foreign = try SafetyGuard(configuration: Self.configuration(startLatched: false, sensors: false))
        sink = RecordingSink(channels: Self.specs.count)
        mailbox = Array(repeating: nil, count: Self.specs.count)
        model = Self.freshModel()
    }

    static func freshModel() -> Model {
        Model(needsFresh: Array(repeating: false, count: specs.count),
              current: specs.map { $0.continuous ? .continuous($0.safe) : .discrete(Int($0.safe)) },
              currentAt: Array(repeating: nil, count: specs.count),
              rampStart: specs.map(\.safe), shadow: Array(repeating: nil, count: specs.count), deenergizedInLatch: Array(repeating: false, count: specs.count))
    }

    static func safeValue(_ ch: Int) -> CommandValue {
        specs[ch].continuous ? .continuous(specs[ch].safe) : .discrete(Int(specs[ch].safe))
    }

    // MARK: randomness

    func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &rng) < p }
    func uniform(_ r: Range<Double>) -> Double { Double.random(in: r, using: &rng) }
    func int(_ r: ClosedRange<Int64>) -> Int64 { Int64.random(in: r, using: &rng) }

    func fail(_ message: String) {
        guard failure == nil else { return }
        failure = "model-based guard test failed: seed=\(seed) (ROBOTD_MODEL_SEED=\(seed)) episode=\(episode) step=\(step) "
            + "t=\(Double(now.nanoseconds) / 1e6) ms: \(message)\nlatch=\(guardian.latch.state) model: latched=\(model.latched) "
            + "cat=\(model.category) stopped=\(model.stopped) epoch=\(model.epoch) blocking=\(model.blocking)\n"
            + "last events:\n" + trace.suffix(traceLines).joined(separator: "\n")
    }

    func note(_ text: @autoclosure () -> String) {
        guard traceOn else { return }
        trace.append("  [\(step)] \(Double(now.nanoseconds) / 1e6)ms \(text())")
        if trace.count > 200 { trace.removeFirst(100) }
    }

    // MARK: episodes

    func newEpisode() throws {
        episode += 1
        counts.episodes += 1
        let startLatched = chance(0.3)
        guardian = try SafetyGuard(configuration: Self.configuration(startLatched: startLatched))
        foreign = try SafetyGuard(configuration: Self.configuration(startLatched: false, sensors: false))
        sink = RecordingSink(channels: Self.specs.count)
        mailbox = Array(repeating: nil, count: Self.specs.count)
        replayStore.removeAll(keepingCapacity: true)
        oldCommands.removeAll(keepingCapacity: true)
        now = .zero
        writerStalledUntil = .zero
        estopHeld = false
        estopPresses = 0
        resetKeyDown = false
        sensorMode = 0
        sensorStartsAt = Instant(nanoseconds: int(0...900) * 1_000_000)  // sometimes after the startup timeout
        model = Self.freshModel()
        if startLatched {
            model.latched = true
            model.category = .zero
            model.cause = .powerOn
            model.stopped = true
            model.epoch = 1
            model.expectedLatches.append((.powerOn, .zero))
            counts.latches[0] += 1
        }
        note("episode \(episode) startLatched=\(startLatched) sensor starts at \(sensorStartsAt)")
    }

    func execute(steps: Int) {
        traceOn = true
        let episodeLength = max(steps / 4, 1)
        for s in 0..<steps {
            step = s
            if s % episodeLength == 0 {
                do { try newEpisode() } catch { fail("could not build a guard: \(error)"); return }
            }
            runStep()
            counts.steps += 1
            if failure != nil { return }
        }
    }

    // MARK: one step

    func runStep() {
        // Time.
        let r = Double.random(in: 0..<1, using: &rng)
        let dt: Int64 = r < 0.02 ? 0 : r < 0.2 ? int(1...5) : r < 0.9 ? int(5...15) : r < 0.98 ? int(15...60) : int(60...250)
        now = now.advanced(byNanoseconds: dt * 1_000_000)
        stepRejected = 0; stepClamped = 0; stepStops = 0

        // The e-stop input thread's level and sticky counter, observed before the tick.
        observeEStop()
        guardTick()

        // Sensor samples.
        sensorActivity()

        // Random actions at this instant, or a little later, between two ticks.
        if chance(0.15) { now = now.advanced(byNanoseconds: int(1...9) * 1_000_000) }
        if model.latched && chance(0.06) { directReset() }
        let actions = Int.random(in: 0...3, using: &rng)
        for _ in 0..<actions {
            randomAction()
            if failure != nil { return }
        }

        // The actuator writer.
        if now >= writerStalledUntil { writerPass() }
        matchAudit()
    }

    func randomAction() {
        let r = Double.random(in: 0..<1, using: &rng)
        switch r {
        case ..<0.55: submitCommand(randomCommand())
        case ..<0.60: if let old = oldCommands.randomElement(using: &rng) { submitCommand(old, resubmitted: true) }
        case ..<0.62: publishForeign()
        case ..<0.66: publishReplay()
        case ..<0.67: if !estopHeld { estopHeld = true; estopPresses += 1; note("estop pressed (held)") }
        case ..<0.70: if estopHeld { estopHeld = false; note("estop released") }
        case ..<0.703: estopPresses += 1; note("estop tapped (press+release between ticks)")
        case ..<0.715:
            if !resetKeyDown { resetKeyDown = true; pressResetKey(down: true) }
        case ..<0.75:
            if resetKeyDown { resetKeyDown = false; pressResetKey(down: false) }
        case ..<0.78: if model.latched || chance(0.1) { directReset() }
        case ..<0.785: setLink(down: true)
        case ..<0.80: if model.linkDown { setLink(down: false) }
        case ..<0.805: deadlineFault()
        case ..<0.82: if model.deadline { clearDeadline() }
        case ..<0.823: operatorStop(.zero)
        case ..<0.826: operatorStop(.one)
        case ..<0.830: operatorStop(.two)
        case ..<0.85: stallWriter()
        default: break
        }
    }

    // MARK: guard calls

    /// Runs one guard call that may emit, then checks what it emitted.
    func emitting(_ what: String, _ body: (inout SafetyGuard, (ApprovedCommand) -> Void) -> Void) -> [ApprovedCommand] {
        var out: [ApprovedCommand] = []
        model.latchEventThisCall = false
        model.cat0ThisCall = false
        body(&guardian) { out.append($0) }
        note("\(what) → emitted \(out.map { "\($0.channel.index)=\($0.value)\($0.deenergize ? "↓" : "")@e\($0.epoch)" })")
        return out
    }

    /// A latch request as the spec says: latches from running, escalates to a more severe category.
    func modelRequest(_ kind: FaultKind, _ category: StopCategory) {
        if model.latched && model.category <= category { return }
        let fromRunning = !model.latched
        model.latched = true
        model.category = category
        model.cause = kind
        model.stopped = category == .zero
        model.epoch += 1
        model.expectedLatches.append((kind, category))
        model.latchEventThisCall = true
        if category == .zero { model.cat0ThisCall = true }
        counts.latches[category.rawValue] += 1
        for ch in Self.specs.indices {
            if fromRunning { model.deenergizedInLatch[ch] = false }
            if Self.specs[ch].continuous, case .continuous(let v) = model.current[ch] {
                // The ramp starts at the guard's last value; the back end may lag behind it.
                let s = Self.specs[ch].safe
                if fromRunning || abs(v - s) > abs(model.rampStart[ch] - s) { model.rampStart[ch] = v }
            }
        }
        note("model: latch \(kind) \(category) epoch \(model.epoch)")
    }

    /// After a guard call: the guard-made commands it emitted, against the model.
    func absorb(_ emitted: [ApprovedCommand], isTick: Bool) {
        var deenergized = Set<Int>()
        for c in emitted {
            let ch = c.channel.index
            guard ch >= 0 && ch < Self.specs.count else { fail("emitted for unknown channel \(ch)"); return }
            let spec = Self.specs[ch]
            if c.origin != .safetyGuard { fail("guard emission with origin \(c.origin)"); return }
            if c.guardID != guardian.seal.id { fail("guard emission with a foreign id"); return }
            if c.epoch != model.epoch { fail("guard emission epoch \(c.epoch), model epoch \(model.epoch)"); return }
            if c.approvedAt != now || c.validUntil != now.advanced(byNanoseconds: Self.guardValidity) {
                fail("guard emission stamped \(c.approvedAt)…\(c.validUntil) at \(now)"); return
            }
            switch (c.value, model.current[ch]) {
            case (.continuous(let v), .continuous(let v0)):
                let s = spec.safe
                // Only toward safe, never past it, at most the stop rate since the channel last changed.
                let towardSafe = abs(v - s) <= abs(v0 - s) + Self.eps && (v - s) * (v0 - s) >= -Self.eps
                if !towardSafe { fail("guard emission on \(ch) moves away from safe: \(v0) → \(v) (safe \(s))"); return }
                let elapsed = model.currentAt[ch].map { Double(now.nanoseconds(since: $0)) / 1e9 } ?? .infinity
                let instant = v == s && (model.cat0ThisCall || c.deenergize)
                if !instant && abs(v - v0) > spec.stopRate * elapsed + 1e-6 {
                    fail("guard ramp step on \(ch) \(v0) → \(v) exceeds stop rate \(spec.stopRate) over \(elapsed) s"); return
                }
                if !spec.range[3].contains(v) { fail("guard emission \(v) outside the range of \(ch)"); return }
            case (.discrete(let s), _):
                if s != Int(spec.safe) { fail("guard emission on discrete \(ch) is not its safe state: \(s)"); return }
            default:
                fail("guard emission of the wrong kind on \(ch): \(c.value)"); return
            }
            if c.deenergize {
                if c.value != Self.safeValue(ch) { fail("de-energise with a value that is not safe: \(c.value)"); return }
                if deenergized.contains(ch) { fail("two de-energise commands for \(ch) in one call"); return }
                deenergized.insert(ch)
            }
            recordGuardStream(ch, c.value, resync: true)
            publish(Tracked(command: c, foreign: false, modelEpoch: model.epoch, replay: false))
        }
        // Ramp completion (the spec: a category-1/2 stop is complete when every channel is at safe).
        var completedOne = false
        if model.latched && !model.stopped && (isTick || model.latchEventThisCall) {
            let allSafe = Self.specs.indices.allSatisfy { model.current[$0] == Self.safeValue($0) }
            if allSafe {
                model.stopped = true
                counts.ramps[model.category.rawValue] += 1
                completedOne = model.category == .one
                note("model: ramp complete (category \(model.category.rawValue))")
            }
        }
        let expectAll = model.cat0ThisCall || completedOne
        if expectAll && deenergized.count != Self.specs.count {
            fail("expected every channel de-energised at safe now (cat0=\(model.cat0ThisCall) cat1-complete=\(completedOne)), got \(deenergized.sorted())")
            return
        }
        if !expectAll && !deenergized.isEmpty {
            fail("de-energise emitted outside a category-0 latch or a completed category-1 stop: \(deenergized.sorted()) (latched=\(model.latched) cat=\(model.category))")
            return
        }
        if model.latched, model.category == .two, !deenergized.isEmpty { fail("category 2 de-energised"); return }
    }

    /// The guard's stream per channel: what the limiter continues from.
    func recordGuardStream(_ ch: Int, _ value: CommandValue, resync: Bool = false) {
        if resync { model.shadow[ch] = nil }
        if ch == 2, value != model.current[ch] {
            model.heaterChanges.append(now)
            model.heaterLastChange = now
            if model.heaterChanges.count > 64 { model.heaterChanges.removeFirst(32) }
        }
        model.current[ch] = value
        model.currentAt[ch] = now
    }

    func observeEStop() {
        let asserted = estopHeld, presses = estopPresses
        let out = emitting("observeEStop(\(asserted), \(presses))") { g, emit in
            g.observeEStop(asserted: asserted, presses: presses, at: now, emit: emit)
        }
        if presses != model.pressesObserved {
            model.pressesObserved = presses
            modelRequest(.emergencyStopInput, .one)
            if !asserted { model.estopReleasedAt = now }
        }
        if asserted != model.estopObserved {
            model.estopObserved = asserted
            if asserted { modelRequest(.emergencyStopInput, .one) } else { model.estopReleasedAt = now }
        }
        absorb(out, isTick: false)
    }

    func guardTick() {
        let out = emitting("tick") { g, emit in g.tick(now: now, emit: emit) }
        if model.firstTick == nil { model.firstTick = now }
        let start = model.firstTick ?? now
        let pastStartup = now.nanoseconds(since: start) > Self.startupTimeout
        let silent = model.sensorSeen == nil
        let stale = model.sensorSeen.map { now.nanoseconds(since: $0) > Self.sensorMaxAge } ?? false
        model.holdAtTick = silent && !pastStartup
        model.silentAtTick = silent && pastStartup
        model.staleAtTick = stale
        if model.silentAtTick { modelRequest(.silentSensor, .one) }
        if model.staleAtTick { modelRequest(.staleSensor, .one) }
        absorb(out, isTick: true)
    }

    func sensorActivity() {
        guard let id = guardian.sensor(named: "range") else { fail("no sensor"); return }
        switch sensorMode {
        case 0: if now >= sensorStartsAt { sensorMode = 1 } else { return }
        case 1: if chance(0.004) { sensorMode = 2; note("sensor goes silent") }
        default: if chance(0.03) { sensorMode = 1; note("sensor back") }
        }
        guard sensorMode == 1, chance(0.8) else { return }
        if chance(0.05) {
            guardian.noteSensor(id, at: now)  // a sample validated by its decoder
            model.sensorSeen = now
            note("sensor sample (decoded)")
            return
        }
        let invalid = chance(0.06)
        let value = invalid ? [Double.nan, .infinity, -.infinity, 10.5, -0.1].randomElement(using: &rng)! : uniform(0..<10)
        var counted = false
        let out = emitting("noteSensor(\(value))") { g, emit in counted = g.noteSensor(id, value: value, at: now, emit: emit) }
        if counted == invalid { fail("sample \(value) counted=\(counted)") }
        if !invalid { model.sensorSeen = now }
        absorb(out, isTick: false)
    }

    func operatorStop(_ category: StopCategory) {
        let out = emitting("trigger(operator, \(category))") { g, emit in g.trigger(.operatorRequest, category: category, at: now, emit: emit) }
        modelRequest(.operatorRequest, category)
        absorb(out, isTick: false)
    }

    func setLink(down: Bool) {
        let out = emitting("setCause(connectionLost, \(down))") { g, emit in g.setCause(.connectionLost, present: down, at: now, emit: emit) }
        model.linkDown = down
        if down { modelRequest(.connectionLost, .one) }
        absorb(out, isTick: false)
    }

    func deadlineFault() {
        let fault = DeadlineFault(task: TaskID(index: 0), taskName: "control", consecutiveMisses: 3, limit: 3, at: now)
        let out = emitting("handle(deadline)") { g, emit in g.handle(fault, emit: emit) }
        model.deadline = true
        modelRequest(.deadlineFault, .one)
        absorb(out, isTick: false)
    }

    func clearDeadline() {
        let out = emitting("setCause(deadline, false)") { g, emit in g.setCause(.deadlineFault, present: false, at: now, emit: emit) }
        model.deadline = false
        absorb(out, isTick: false)
    }

    // MARK: resets

    /// What the spec says a reset comes to now.
    func expectedReset() -> ResetOutcome {
        if !model.latched { return .notLatched }
        if !model.stopped { return .stillStopping }
        let blocking = model.blocking.union(sensorCausesNow())
        return blocking.isEmpty ? .released : .refused(blocking)
    }

    func applyReset(_ outcome: ResetOutcome?, expected: ResetOutcome?, via: String) {
        note("\(via) → \(String(describing: outcome)) (model \(String(describing: expected)))")
        var acceptable = outcome == expected
        // The order of "still stopping" and "causes present" is not specified: both refuse.
        if expected == .stillStopping, case .refused(let causes)? = outcome, causes == model.blocking.union(sensorCausesNow()),
           !causes.isEmpty { acceptable = true }
        if !acceptable {
            fail("\(via): reset came to \(String(describing: outcome)), the model expects \(String(describing: expected)) (blocking \(model.blocking))")
            return
        }
        switch outcome {
        case .released?:
            if !model.blocking.isEmpty { fail("a reset released while \(model.blocking) present"); return }
            // The sensor's level now, not at the last tick: a reset between ticks must not release a stale sensor.
            let start = model.firstTick ?? now
            let staleNow = model.sensorSeen.map { now.nanoseconds(since: $0) > Self.sensorMaxAge }
                ?? (now.nanoseconds(since: start) > Self.startupTimeout)
            if staleNow { fail("a reset released while the sensor is stale or silent now (last sample \(String(describing: model.sensorSeen)))"); return }
            model.latched = false
            model.lastReset = now
            model.epoch += 1  // a reset voids every approval from before it, as a latch does
            for i in model.needsFresh.indices { model.needsFresh[i] = true }
            model.expectedResets += 1
            counts.released += 1
        case .refused(let causes)?:
            model.expectedRefused.append(causes)
            counts.refusedResets += 1
        case .resetKeyHeldThrough?:
            model.expectedRefused.append(model.blocking)
            counts.refusedResets += 1
            counts.heldThrough += 1
        case .stillStopping?: counts.stillStopping += 1
        case .notLatched?: counts.notLatched += 1
        default: break
        }
    }

    /// The sensor's stop causes at this instant (the spec: a cause present now blocks a reset).
    func sensorCausesNow() -> StopCauses {
        guard let start = model.firstTick else { return [] }
        if let seen = model.sensorSeen {
            return now.nanoseconds(since: seen) > Self.sensorMaxAge ? StopCauses(.staleSensor) : []
        }
        return now.nanoseconds(since: start) > Self.startupTimeout ? StopCauses(.silentSensor) : []
    }

    func directReset() {
        let expected = expectedReset()
        let outcome = guardian.reset(at: now)
        applyReset(outcome, expected: expected, via: "reset()")
    }

    func pressResetKey(down: Bool) {
        if down {
            let outcome = guardian.resetKey(down: true, at: now)
            if model.keyDownSince == nil { model.keyDownSince = now }
            if outcome != nil { fail("reset key down came to \(String(describing: outcome))") }
            note("reset key down")
            return
        }
        guard let since = model.keyDownSince else {
            let outcome = guardian.resetKey(down: false, at: now)
            if outcome != nil { fail("reset key release without a press came to \(String(describing: outcome))") }
            return
        }
        model.keyDownSince = nil
        // A reset needs its own deliberate action: a key down at or before the e-stop's release is refused.
        let expected: ResetOutcome
        if model.latched, let released = model.estopReleasedAt, since <= released {
            expected = .resetKeyHeldThrough
        } else {
            expected = expectedReset()
        }
        let outcome = guardian.resetKey(down: false, at: now)
        applyReset(outcome, expected: expected, via: "resetKey(up) down since \(since)")
    }

    // MARK: commands

    func randomCommand() -> Command {
        var ch = Int.random(in: 0..<Self.specs.count, using: &rng)
        if chance(0.02) { ch = chance(0.5) ? -1 : Self.specs.count }
        let origin: CommandOrigin = chance(0.5) ? .policy : chance(0.6) ? .teleop : .planner
        var value: CommandValue
        if ch < 0 || ch >= Self.specs.count {
            value = .continuous(0)
        } else if Self.specs[ch].continuous {
            let v0 = model.current[ch].continuousValue ?? 0
            let r = Double.random(in: 0..<1, using: &rng)
            if r < 0.6 {
                value = .continuous(v0 + uniform(-0.06..<0.06))
            } else if r < 0.9 {
                value = .continuous(uniform(-3..<3))
            } else if r < 0.95 {
                value = .continuous([Double.nan, .infinity, -.infinity, 1e300].randomElement(using: &rng)!)
            } else {
                value = .discrete(1)
            }
        } else {
            let r = Double.random(in: 0..<1, using: &rng)
            value = r < 0.88 ? .discrete(Int.random(in: 0...1, using: &rng)) : r < 0.94 ? .discrete([2, -1, 70].randomElement(using: &rng)!) : .continuous(1)
        }
        let issued = now.advanced(byNanoseconds: -int(0...30) * 1_000_000)
        let r = Double.random(in: 0..<1, using: &rng)
        let validity: Int64 = r < 0.05 ? -int(1...10) : r < 0.85 ? int(20...150) : int(300...800)
        let c = Command(channel: ChannelID(index: ch), value: value, origin: origin, sourceTag: UInt32(step & 0xFFFF),
                        issuedAt: issued, validUntil: issued.advanced(byNanoseconds: validity * 1_000_000))
        if oldCommands.count < 48 { oldCommands.append(c) } else { oldCommands[Int.random(in: 0..<48, using: &rng)] = c }
        return c
    }

    func submitCommand(_ c: Command, resubmitted: Bool = false) {
        counts.checks += 1
        let verdict = guardian.check(c, now: now)
        note("check\(resubmitted ? " (old)" : "") ch\(c.channel.index) \(c.origin) \(c.value) issued \(c.issuedAt) valid \(c.validUntil) → \(verdict)")
        let ch = c.channel.index
        let known = ch >= 0 && ch < Self.specs.count
        if model.latched {
            if known {
                guard verdict == .stop(model.category, model.cause) else {
                    fail("while latched (\(model.category), \(model.cause)) check came to \(verdict)"); return
                }
                stepStops += 1
                counts.stops += 1
                return
            }
        }
        switch verdict {
        case .rejected(let reason):
            stepRejected += 1
            counts.rejections += 1
            if reason == .notFresh { counts.notFresh += 1 }
            if !known && reason != .unknownChannel { fail("unknown channel rejected as \(reason)") }
            return
        case .stop:
            if !model.latched { fail("stop verdict while the model is running") }
            // An unknown channel while latched: either answer is a refusal.
            if known { stepStops += 1; counts.stops += 1 } else { stepStops += 1; counts.stops += 1 }
            return
        case .pass, .clamped:
            break
        }
        guard let approved = verdict.approved else { return }
        var knownYield = false
        if case .clamped = verdict { stepClamped += 1; counts.clamps += 1 }
        counts.approvals += 1
        guard known else { fail("unknown channel approved"); return }
        let spec = Self.specs[ch]
        // Nothing the spec refuses may be approved.
        if model.latched { fail("approved while latched"); return }
        if c.validUntil < now { fail("stale command approved"); return }
        if model.needsFresh[ch], let reset = model.lastReset, c.issuedAt < reset {
            fail("a command issued before the reset at \(reset) approved on \(ch) before any fresh one was approved"); return
        }
        if spec.isMotion && model.holdAtTick { fail("motion approved on \(ch) while the silent sensor holds"); return }
        if approved.channel != c.channel || approved.origin != c.origin || approved.validUntil != c.validUntil
            || approved.issuedAt != c.issuedAt || approved.approvedAt != now || approved.guardID != guardian.seal.id
            || approved.epoch != model.epoch || approved.deenergize {
            fail("approval fields differ from the command: \(approved)"); return
        }
        if case .pass = verdict, approved.value != c.value { fail("pass with a changed value \(approved.value) for \(c.value)"); return }
        switch (approved.value, c.value, model.current[ch]) {
        case (.continuous(let v), .continuous(let requested), .continuous(let v0)):
            guard requested.isFinite else { fail("non-finite request approved as \(v)"); return }
            let o = c.origin.rawValue
            // Out of the origin's range only on the way back into it from a value already outside
            // (a tighter origin envelope): never further from the range than before, never past it.
            if !spec.range[o].contains(v) {
                let r = spec.range[o]
                let distance = { (x: Double) in x > r.upperBound ? x - r.upperBound : (x < r.lowerBound ? r.lowerBound - x : 0) }
                guard !r.contains(v0), distance(v) <= distance(v0), (v > r.upperBound) == (v0 > r.upperBound) else {
                    fail("approved \(v) outside \(c.origin)'s range \(spec.range[o]) on \(ch) (from \(v0))"); return
                }
            }
            // First derivative against the guard's last value (capped step, docs/safety.md).
            let elapsed = model.currentAt[ch].map { Double(now.nanoseconds(since: $0)) / 1e9 } ?? .infinity
            let dt = min(elapsed, spec.maxStep)
            let down = spec.down[o], up = spec.up[o]
            let lo = v0 - (v0 > 0 ? down : up) * dt - 1e-9
            let hi = v0 + (v0 < 0 ? down : up) * dt + 1e-9
            if v < lo || v > hi {
                // Known issue (reported, not fixed here): the previous value lies outside this origin's
                // tighter range, range and rate are disjoint, and the limiter lets the rate yield.
                let disjoint = hi < spec.range[o].lowerBound || lo > spec.range[o].upperBound
                // Its follow-on: a yield at dt = 0 leaves the limiter at the value before it (the
                // zero-dt path keeps the state), so the next approvals are limited from there.
                let shadowOK = model.shadow[ch].map { w in
                    v >= w - (w > 0 ? down : up) * dt - 1e-9 && v <= w + (w < 0 ? down : up) * dt + 1e-9
                } ?? false
                if disjoint && spec.range[o].contains(v) {
                    counts.rateYieldedToOriginRange += 1
                    knownYield = true
                    if dt == 0 && model.shadow[ch] == nil { model.shadow[ch] = v0 }
                    note("KNOWN ISSUE: rate yielded to \(c.origin)'s range: \(v0) → \(v) over \(dt) s")
                } else if shadowOK {
                    counts.rateYieldFollowOn += 1
                    knownYield = true
                    note("KNOWN ISSUE (follow-on): limited from the stale limiter value \(model.shadow[ch] ?? .nan): \(v0) → \(v)")
                } else {
                    fail("approved \(v) on \(ch) (\(c.origin)) breaks the rate limit from the guard's last value \(v0) over \(dt) s: allowed \(lo)…\(hi)")
                    return
                }
            }
        case (.discrete(let s), .discrete(let requested), .discrete(let current)):
            if s != requested { fail("discrete approved \(s) for \(requested)"); return }
            if !spec.allowed.contains(s) { fail("state \(s) not allowed on \(ch) approved"); return }
            if s != current {
                if let last = model.heaterLastChange {
                    let held = now.nanoseconds(since: last)
                    if current != 0 && held < spec.minOn { fail("heater left on after \(held) ns < min on"); return }
                    if current == 0 && held < spec.minOff { fail("heater left off after \(held) ns < min off"); return }
                }
                let recent = model.heaterChanges.filter { now.nanoseconds(since: $0) < 60_000_000_000 }.count
                if recent >= spec.maxSwitches { fail("heater switched with \(recent) changes in the last minute"); return }
            }
        default:
            fail("approved a value of the wrong kind: \(approved.value) for \(c.value) on \(ch)"); return
        }
        if c.issuedAt >= (model.lastReset ?? .zero) || model.lastReset == nil { model.needsFresh[ch] = false }
        if model.currentAt[ch].map({ now > $0 }) ?? true { model.shadow[ch] = nil }  // dt > 0: the limiter took this value
        recordGuardStream(ch, approved.value)
        var tracked = Tracked(command: approved, foreign: false, modelEpoch: model.epoch, replay: false)
        tracked.knownYield = knownYield
        publish(tracked)
        if replayStore.count < 64 { replayStore.append(tracked) } else { replayStore[Int.random(in: 0..<64, using: &rng)] = tracked }
    }

    // MARK: the actuator writer and its back end

    func publish(_ t: Tracked) {
        let ch = t.command.channel.index
        var t = t
        // An approval skipped at the back end after a known-issue yield taints the one replacing it.
        if let pending = mailbox[ch], pending.knownYield, !t.foreign, !t.replay { t.knownYield = true }
        mailbox[ch] = t  // latest per channel: a newer approval replaces one not yet written
        if !t.foreign && t.command.origin == .safetyGuard && !t.replay {
            if replayStore.count < 64 { replayStore.append(t) } else { replayStore[Int.random(in: 0..<64, using: &rng)] = t }
        }
    }

    func publishForeign() {
        let ch = Int.random(in: 0..<Self.specs.count, using: &rng)
        let value: CommandValue = Self.specs[ch].continuous ? .continuous(Self.specs[ch].safe + 0.01) : .discrete(0)
        let c = Command(channel: ChannelID(index: ch), value: value, origin: .policy, issuedAt: now, validUntil: now + .milliseconds(100))
        guard let approved = foreign.check(c, now: now).approved else { return }
        note("foreign guard approval on \(ch) published")
        publish(Tracked(command: approved, foreign: true, modelEpoch: 0, replay: false))
    }

    /// Re-publishes a stored approval the seal must refuse: one from before the latest latch, or expired.
    /// (A stored approval from the current epoch, still valid, is outside what the seal promises.)
    func publishReplay() {
        guard !replayStore.isEmpty else { return }
        let t = replayStore[Int.random(in: 0..<replayStore.count, using: &rng)]
        let mustRefuse = t.modelEpoch != model.epoch || now > t.command.validUntil
        guard mustRefuse else { return }
        note("replay of ch\(t.command.channel.index) \(t.command.value) approved \(t.command.approvedAt) e\(t.modelEpoch)")
        var replay = t
        replay.replay = true
        publish(replay)
    }

    func stallWriter() {
        writerStalledUntil = now.advanced(byNanoseconds: int(10...400) * 1_000_000)
        note("writer stalls until \(writerStalledUntil)")
    }

    func writerPass() {
        for ch in mailbox.indices {
            guard let t = mailbox[ch] else { continue }
            mailbox[ch] = nil
            deliver(t)
            if failure != nil { return }
        }
    }

    func deliver(_ t: Tracked) {
        let ch = t.command.channel.index
        let spec = Self.specs[ch]
        let previous = sink.last[ch]
        let expected: GuardSeal.Refusal? = t.foreign ? .foreignGuard
            : t.modelEpoch != model.epoch ? .beforeLatch
            : now > t.command.validUntil ? .expired : nil
        let refusal = sink.deliver(t.command, seal: guardian.seal, safe: Self.safeValue(ch), now: now)
        note("writer: ch\(ch) \(t.command.value) (\(t.command.origin), approved \(t.command.approvedAt), e\(t.command.epoch)) → \(refusal.map { "refused \($0), safe written" } ?? "written")")
        if refusal != expected {
            fail("seal: approval on \(ch) approved at \(t.command.approvedAt) valid until \(t.command.validUntil) (model epoch \(t.modelEpoch) now \(model.epoch), foreign \(t.foreign)) came to \(String(describing: refusal)), the model expects \(String(describing: expected))")
            return
        }
        if let refusal {
            switch refusal {
            case .beforeLatch: counts.beforeLatch += 1
            case .expired: counts.expired += 1
            case .foreignGuard: counts.foreign += 1
            }
            if model.latched { model.deenergizedInLatch[ch] = true }
            // The back end is at its safe value, de-energised: the guard is told (inline mode can).
            guardian.noteSafeStateApplied(to: ChannelID(index: ch), at: now)
            recordGuardStream(ch, Self.safeValue(ch), resync: true)
            return
        }
        counts.written += 1
        let c = t.command
        let fromGuard = c.origin == .safetyGuard
        if model.latched {
            if !fromGuard { fail("a \(c.origin) approval reached the back end while latched"); return }
            if model.deenergizedInLatch[ch] && !c.deenergize {
                fail("channel \(ch) re-energised (\(c.value)) after it was de-energised in this stop"); return
            }
            if case .continuous(let v) = c.value {
                let s = spec.safe
                let before = previous?.value.continuousValue ?? s
                let bound = max(abs(before - s), abs(model.rampStart[ch] - s))
                if abs(v - s) > bound + 1e-9 {
                    fail("while latched the back end of \(ch) moved away from safe: \(before) → \(v) (ramp started at \(model.rampStart[ch]))"); return
                }
            }
            if c.deenergize { model.deenergizedInLatch[ch] = true }
        }
        switch c.value {
        case .continuous(let v):
            let o = c.origin.rawValue
            // Outside the origin's range only while coming back into it (see the approval check).
            if !spec.range[o].contains(v) && !spec.range[3].contains(v) {
                fail("back end got \(v) outside even the channel's range on \(ch)"); return
            }
            if !fromGuard, let previous, case .continuous(let v0) = previous.value {
                // The physical limit: the channel's own rate between what reached the back end. With
                // approvals skipped in between (latest-per-channel mailbox), the documented asymmetric
                // rule (deceleration on the side toward zero, also past zero) does not compose, so the
                // larger of acceleration and deceleration bounds the change.
                let dt = max(0, Double(c.approvedAt.nanoseconds(since: previous.approvedAt)) / 1e9)
                let rate = max(spec.up[3], spec.down[3])
                let lo = v0 - rate * dt - 1e-9
                let hi = v0 + rate * dt + 1e-9
                if (v < lo || v > hi) && !t.knownYield {
                    fail("back end of \(ch): \(v0) (\(previous.origin.map { "\($0)" } ?? "writer's safe value")) → \(v) (\(c.origin)) over \(dt) s breaks the channel's rate: allowed \(lo)…\(hi)")
                    return
                }
            }
        case .discrete(let s):
            if !spec.allowed.contains(s) { fail("back end got state \(s) on \(ch)"); return }
        }
    }

    // MARK: audit

    func matchAudit() {
        let records = guardian.audit.drain()
        var latched: [(FaultKind, StopCategory)] = []
        var refused: [StopCauses] = []
        var resets = 0, rejected = 0, clamped = 0, stops = 0
        for r in records {
            switch r.kind {
            case .latched: latched.append((r.fault ?? .invalidSample, r.category ?? .two))
            case .resetRefused: refused.append(r.causes)
            case .reset: resets += 1
            case .rejected: rejected += 1
            case .clamped: clamped += 1
            case .refusedWhileStopped: stops += 1
            default: break
            }
        }
        let expectedLatches = model.expectedLatches
        if latched.count != expectedLatches.count || zip(latched, expectedLatches).contains(where: { $0.0 != $1.0 || $0.1 != $1.1 }) {
            fail("audit latches \(latched), the model expects \(expectedLatches)"); return
        }
        if refused != model.expectedRefused { fail("audit refused resets \(refused), the model expects \(model.expectedRefused)"); return }
        if resets != model.expectedResets { fail("audit resets \(resets), the model expects \(model.expectedResets)"); return }
        if rejected != stepRejected || clamped != stepClamped || stops != stepStops {
            fail("audit rejected/clamped/refused-while-stopped \(rejected)/\(clamped)/\(stops), verdicts \(stepRejected)/\(stepClamped)/\(stepStops)")
            return
        }
        model.expectedLatches.removeAll(keepingCapacity: true)
        model.expectedRefused.removeAll(keepingCapacity: true)
        model.expectedResets = 0
    }
}
