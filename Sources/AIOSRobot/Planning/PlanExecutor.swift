import RTScheduler
import SafetyGuard

/// Executes accepted plans step by step on the dispatch thread, under the control lock (a part of
/// `Control`): each step becomes a directive for the policy that executes its ability (a route for
/// a `waypoints` policy, a setpoint for a `thermostat`), and the executor watches it through the
/// policy's `planReading` — done, out of time (`timeout_s`), or no longer getting closer
/// (`no_progress`). A latched stop cancels the plan; a new goal cancels it; whatever ends a plan,
/// the motion policies it directed hold still until the next plan, so nothing resumes by itself
/// after a reset; a plan that does not complete leaves no setpoint behind. Every change is a
/// `PlanExecutionEvent` in a lock-free ring and a status in a lock-free cell: nothing here waits,
/// locks anything else, allocates or frees (a plan's arrays were built by the planner service, and
/// go back to it through `RetiredPlans`).
struct PlanExecutor: Sendable {
    let events: OverwritingRing<PlanExecutionEvent>
    let cell: LatestValue<PlanExecutionStatus>
    /// The slots of every policy that executes a moving ability (`stop` holds them all).
    let motionSlots: [Int]
    /// Where plans go when the dispatch thread is done with them (released on the async lane).
    let retired: RetiredPlans
    private(set) var status = PlanExecutionStatus()
    /// Per motion slot (`motionSlots` order): the plan whose route the policy follows or last
    /// followed. The policy shares that route's array: the plan is retired only once the policy
    /// has another route, so the array's last reference is never the policy's.
    private var owners: [ExecutablePlan?]
    /// The newest goal whose hold (`PlanSignals.holdGoal`) has been applied.
    private var heldGoal: UInt64 = 0
    /// Thermostat slots (a bit per slot < 64) whose setpoint a plan has set: given their
    /// configured setpoint back when a plan is cancelled or fails.
    private var planned: UInt64 = 0
    /// What a step's preconditions are judged by, as the handler running now read it.
    private var conditions = PlanConditions()
    private var plan: ExecutablePlan?
    private var step = 0
    private var stepStart = Instant.zero
    /// No-progress detection: the least remaining seen, and when it last shrank by `minProgress`.
    private var baseline = Double.nan
    private var baselineAt = Instant.zero
    /// Motion slots this plan directed (a bit per slot < 64): held when it ends.
    private var directed: UInt64 = 0
    /// A `hold` step running: the thermostat's slot and the setpoint it goes back to (NaN: the
    /// configured one).
    private var restore: (slot: Int, setpoint: Double)?
    /// The setpoint each thermostat slot was last given by a plan's `set_temperature` (NaN: none).
    private var setpoints = InlineArray<8, Double>(repeating: .nan)

    init(events: OverwritingRing<PlanExecutionEvent>, cell: LatestValue<PlanExecutionStatus>, motionSlots: [Int],
         retired: RetiredPlans) {
        self.events = events
        self.cell = cell
        self.motionSlots = motionSlots
        self.retired = retired
        owners = Array(repeating: nil, count: motionSlots.count)
    }

    var isRunning: Bool { plan != nil }

    /// Set by every handler before it acts: what a step that starts now is judged by.
    mutating func observe(_ conditions: PlanConditions) { self.conditions = conditions }

    /// Whether the periodic check has anything to do: a plan running, or a goal or a hold the
    /// planner service signalled that this executor has not acted on.
    func needsCheck(latest: UInt64, hold: UInt64) -> Bool {
        plan != nil || latest > status.goalID || hold > heldGoal
    }

    /// What the planner service signalled beside its messages (`PlanSignals`), read every check: a
    /// newer goal cancels the plan of an older one even when the full queue refused the goal's
    /// message; a hold (a `stop` goal, a goal whose message was refused) holds every motion policy
    /// — unless the plan running is already that goal's or a newer one's.
    mutating func follow(latest: UInt64, hold: UInt64, at now: Instant, sources: inout [any ControlPolicy]) {
        if latest > status.goalID { newGoal(latest, at: now, sources: &sources) }
        if hold > heldGoal {
            heldGoal = hold
            if (plan?.goalID ?? 0) < hold {
                if plan != nil { end(.cancelled, reason: .newGoal, at: now, sources: &sources) }
                for i in motionSlots.indices { sources[motionSlots[i]].direct(.hold) }
            }
            publish()
        }
    }

    // MARK: Messages from the planner service

    /// A new goal: any other goal's plan is cancelled now.
    mutating func newGoal(_ id: UInt64, at now: Instant, sources: inout [any ControlPolicy]) {
        // Goal numbers only grow: one posted late (two goals at once from two threads) is history.
        guard id >= status.goalID else { return }
        if let plan, plan.goalID != id { end(.cancelled, reason: .newGoal, at: now, sources: &sources) }
        status.goalID = id
        publish()
    }

    /// A goal that is exactly `stop`: any other goal's plan is cancelled and every motion policy
    /// holds still now (the `stop` step's directive), with no model asked. Recorded as a one-step
    /// plan that started and completed at once.
    mutating func stopNow(_ id: UInt64, at now: Instant, sources: inout [any ControlPolicy]) {
        guard id >= status.goalID else { return }
        if plan != nil { end(.cancelled, reason: .newGoal, at: now, sources: &sources) }
        status.goalID = id
        heldGoal = max(heldGoal, id)
        for i in motionSlots.indices { sources[motionSlots[i]].direct(.hold) }
        status.planGoalID = id
        status.step = 0
        status.stepCount = 1
        status.ability = -1
        status.remaining = .nan
        status.state = .completed
        status.reason = .none
        status.completed &+= 1
        record(.started, goal: id, step: 0, count: 1, ability: -1, reason: .none, at: now)
        record(.completed, goal: id, step: 0, count: 1, ability: -1, reason: .none, at: now)
        publish()
    }

    /// A stop latched since the running plan's goal was taken — latched now, or the guard's latch
    /// epoch moved on (a stop and its reset both between two looks) —: the plan is cancelled.
    /// Called first by every handler of the executor.
    mutating func checkLatch(latched: Bool, epoch: UInt64, at now: Instant, sources: inout [any ControlPolicy]) {
        guard let plan, latched || epoch != plan.latchEpoch else { return }
        end(.cancelled, reason: .latched, at: now, sources: &sources)
        publish()
    }

    /// `planReady`: executed only for the current goal, while nothing is latched and in the latch
    /// epoch its goal was taken in (a plan that arrives during a stop, or after a stop and its
    /// reset, would start after the reset: refused instead).
    mutating func install(_ next: ExecutablePlan, latched: Bool, epoch: UInt64, at now: Instant, sources: inout [any ControlPolicy]) {
        let refusal: PlanEndReason? = next.goalID != status.goalID ? .staleGoal : latched || epoch != next.latchEpoch ? .latched
            : next.steps.isEmpty ? .noPolicy : nil
        if let refusal {
            status.refused &+= 1
            record(.refused, goal: next.goalID, step: 0, count: next.steps.count, ability: -1, reason: refusal, at: now)
            publish()
            return
        }
        for i in next.steps.indices {
            if let slot = next.steps[i].slot, !sources.indices.contains(slot) {
                status.refused &+= 1
                record(.refused, goal: next.goalID, step: Int32(i), count: next.steps.count, ability: -1, reason: .noPolicy, at: now)
                publish()
                return
            }
        }
        if plan != nil { end(.cancelled, reason: .newGoal, at: now, sources: &sources) }
        plan = next
        directed = 0
        status.planGoalID = next.goalID
        status.state = .running
        status.reason = .none
        status.stepCount = Int32(next.steps.count)
        record(.started, goal: next.goalID, step: 0, count: next.steps.count, ability: -1, reason: .none, at: now)
        begin(0, at: now, sources: &sources)
        publish()
    }

    /// `planFailed`: no plan for the goal; nothing else changes.
    mutating func planningFailed(_ goal: UInt64, at now: Instant) {
        record(.planningFailed, goal: goal, step: 0, count: 0, ability: -1, reason: .none, at: now)
        publish()
    }

    // MARK: The periodic check

    /// Every executor period: the latch (and its epoch), the current step's end, its time limit and
    /// progress.
    mutating func tick(latched: Bool, epoch: UInt64, at now: Instant, sources: inout [any ControlPolicy]) {
        guard let plan else { return }
        if latched || epoch != plan.latchEpoch {
            end(.cancelled, reason: .latched, at: now, sources: &sources)
            publish()
            return
        }
        let current = plan.steps[step]
        let elapsed = now - stepStart
        var finished = false
        var reading = PlanReading()
        switch current.action {
        case .route, .setpoint:
            if let slot = current.slot { reading = sources[slot].planReading }
            if case .route = current.action, reading.serial != current.serial { reading = PlanReading() }
            finished = reading.done
        case .hold(_, let seconds):
            finished = elapsed >= .saturating(seconds: seconds)
        case .wait(let seconds):
            finished = elapsed >= .saturating(seconds: seconds)
        case .stop:
            finished = true
        }
        status.remaining = reading.remaining
        if finished {
            advance(at: now, sources: &sources)
            publish()
            return
        }
        // A hold's own minutes are its end: its ability's time limit bounds the steps that wait
        // for a result (a route, a setpoint).
        var limited = true
        if case .hold = current.action { limited = false }
        if limited, let timeout = current.timeout, elapsed > timeout {
            end(.failed, reason: .timeout, at: now, sources: &sources)
        } else if let minProgress = current.minProgress, let window = current.window {
            let remaining = reading.remaining
            if remaining.isFinite && (!baseline.isFinite || remaining <= baseline - minProgress) {
                baseline = remaining
                baselineAt = now
            } else if now - baselineAt > window {
                end(.failed, reason: .noProgress, at: now, sources: &sources)
            }
        }
        publish()
    }

    // MARK: Steps

    private mutating func begin(_ index: Int, at now: Instant, sources: inout [any ControlPolicy]) {
        guard let plan else { return }
        step = index
        stepStart = now
        baseline = .nan
        baselineAt = now
        let s = plan.steps[index]
        status.step = Int32(index)
        status.ability = Int16(truncatingIfNeeded: s.ability)
        status.remaining = .nan
        record(.stepStarted, goal: plan.goalID, step: Int32(index), count: plan.steps.count, ability: status.ability, reason: .none, at: now)
        // Its ability's preconditions again, now: the validator judged them when the plan was
        // accepted, and this step may start minutes later.
        guard s.preconditions.hold(in: conditions) else {
            end(.failed, reason: .preconditionFailed, at: now, sources: &sources)
            return
        }
        switch s.action {
        case .route(let points, let speed):
            guard let slot = s.slot else { return }
            sources[slot].direct(.route(points: points, speed: speed, serial: s.serial))
            if slot < 64 { directed |= 1 << UInt64(slot) }
            // The policy follows this plan's array now: the plan it followed before may go. (An
            // index loop: `firstIndex(of:)` allocates in unoptimised builds.)
            for i in motionSlots.indices where motionSlots[i] == slot {
                if let old = owners[i], old !== plan { retire(old) }
                owners[i] = plan
            }
        case .setpoint(let value):
            guard let slot = s.slot else { return }
            sources[slot].direct(.setpoint(value))
            if slot < setpoints.count { setpoints[slot] = value }
            if slot < 64 { planned |= 1 << UInt64(slot) }
            status.setpoint = value
        case .hold(let temperature, _):
            guard let slot = s.slot else { return }
            restore = (slot, slot < setpoints.count ? setpoints[slot] : .nan)
            sources[slot].direct(.setpoint(temperature))
            if slot < 64 { planned |= 1 << UInt64(slot) }
            status.setpoint = temperature
        case .stop:
            for i in motionSlots.indices { sources[motionSlots[i]].direct(.hold) }
        case .wait:
            break
        }
    }

    private mutating func advance(at now: Instant, sources: inout [any ControlPolicy]) {
        guard let plan else { return }
        let s = plan.steps[step]
        endHold(sources: &sources)
        record(.stepCompleted, goal: plan.goalID, step: Int32(step), count: plan.steps.count, ability: Int16(truncatingIfNeeded: s.ability),
               reason: .none, at: now)
        if step + 1 < plan.steps.count {
            begin(step + 1, at: now, sources: &sources)
        } else {
            end(.completed, reason: .none, at: now, sources: &sources)
        }
    }

    /// A `hold` step's setpoint gives way to the one before it.
    private mutating func endHold(sources: inout [any ControlPolicy]) {
        guard let r = restore else { return }
        sources[r.slot].direct(r.setpoint.isFinite ? .setpoint(r.setpoint) : .none)
        status.setpoint = r.setpoint
        restore = nil
    }

    /// A plan that did not complete leaves no setpoint behind: every thermostat a plan directed
    /// goes back to its configured setpoint (a `set_temperature` or a `hold` cut short by a stop, a
    /// new goal or a failure must not outlive it).
    private mutating func releaseSetpoints(sources: inout [any ControlPolicy]) {
        var bits = planned
        while bits != 0 {
            let slot = bits.trailingZeroBitCount
            bits &= bits &- 1
            sources[slot].direct(.none)
            if slot < setpoints.count { setpoints[slot] = .nan }
        }
        planned = 0
        restore = nil
        status.setpoint = .nan
    }

    /// Hands a plan to `retired` (released on the async lane); when it is full, the reference is
    /// dropped here (counted there).
    private func retire(_ plan: ExecutablePlan) { retired.retire(plan) }

    private mutating func end(_ state: PlanExecutionStatus.State, reason: PlanEndReason, at now: Instant,
                              sources: inout [any ControlPolicy]) {
        guard let plan else { return }
        if state == .completed { endHold(sources: &sources) } else { releaseSetpoints(sources: &sources) }
        // The motion policies it directed stand still until the next plan: nothing it started
        // resumes by itself (after a reset, a failure, another goal).
        var bits = directed
        while bits != 0 {
            let slot = bits.trailingZeroBitCount
            bits &= bits &- 1
            sources[slot].direct(.hold)
        }
        directed = 0
        let kind: PlanExecutionEvent.Kind
        switch state {
        case .completed:
            status.completed &+= 1
            kind = .completed
        case .failed:
            status.failed &+= 1
            kind = .failed
        default:
            status.cancelled &+= 1
            kind = .cancelled
        }
        status.state = state
        status.reason = reason
        record(kind, goal: plan.goalID, step: Int32(step), count: plan.steps.count, ability: status.ability, reason: reason, at: now)
        retire(plan)
        self.plan = nil
    }

    private func record(_ kind: PlanExecutionEvent.Kind, goal: UInt64, step: Int32, count: Int, ability: Int16,
                        reason: PlanEndReason, at now: Instant) {
        events.append(PlanExecutionEvent(kind: kind, goalID: goal, step: step, stepCount: Int32(truncatingIfNeeded: count),
                                         ability: ability, reason: reason, at: now.nanoseconds, remaining: status.remaining))
    }

    private func publish() { cell.store(status) }
}
