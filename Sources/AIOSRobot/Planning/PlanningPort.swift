import RTScheduler
import RobotConfig
import SafetyGuard
import Synchronization

/// The runtime's side of planning (a configuration with `abilities`): the `planner` source the
/// planner service posts goals, `planReady` and `planFailed` to (its own deadline), the executor's
/// periodic check, and what the executor publishes — lock-free both ways, so the planner never
/// takes the control lock and the dispatch thread never waits for the planner.
public final class PlanningPort: Sendable {
    /// The executor's period: how soon a step's end, a timeout or a latch is acted on.
    public static let executorPeriod = Duration.milliseconds(50)
    /// The task's and the source's names, as the scheduler and telemetry show them.
    public static let taskName = "plan"
    public static let sourceName = "planner"

    /// Where the planner service posts (`PlannerMessage`): capacity 8, a full queue refuses.
    let source: SourceHandle
    /// The executor's events, oldest first (one producer: the dispatch thread; readers keep cursors).
    public let events: OverwritingRing<PlanExecutionEvent>
    public let statusCell: LatestValue<PlanExecutionStatus>
    /// Each proposing policy's slot by name: where a step's directive goes.
    public let policySlots: [String: Int]
    /// Goals over MQTT (`planner.goals.mqtt`), handed to whoever attaches (the planner service).
    public let goals: GoalInbox
    /// The newest goal and hold, beside the messages (read by the executor's check).
    let signals: PlanSignals
    /// Plans the dispatch thread is done with: the planner service releases them on the lane.
    let retired: RetiredPlans

    init(source: SourceHandle, events: OverwritingRing<PlanExecutionEvent>, statusCell: LatestValue<PlanExecutionStatus>,
         policySlots: [String: Int], goals: GoalInbox, signals: PlanSignals, retired: RetiredPlans) {
        self.source = source
        self.events = events
        self.statusCell = statusCell
        self.policySlots = policySlots
        self.goals = goals
        self.signals = signals
        self.retired = retired
    }

    public var status: PlanExecutionStatus { statusCell.load() }

    /// Posts to the dispatch thread; false when its queue refused (full).
    @discardableResult
    func post(_ message: PlannerMessage) -> Bool {
        source.post(.object(message)).wasAccepted
    }

    /// Registers the `planner` source and the executor's task on `scheduler` (before it starts).
    /// nil without abilities: nothing to plan with.
    static func register(configuration: RobotConfiguration, scheduler: Scheduler, shared: SharedState<Control>,
                         statusCell: LatestValue<RuntimeStatus>, plans: [PolicyPlan]) -> PlanningPort? {
        guard !configuration.abilities.isEmpty else { return nil }
        var slots: [String: Int] = [:]
        for plan in plans where !plan.isFilter { slots[plan.name] = plan.slot }
        var motion: [Int] = []
        for ability in configuration.abilities where ability.action.moves {
            if let name = ability.policy, let slot = slots[name], !motion.contains(slot) { motion.append(slot) }
        }
        let events = OverwritingRing<PlanExecutionEvent>(capacity: 128)
        let cell = LatestValue(PlanExecutionStatus())
        let motionSlots = motion
        let signals = PlanSignals(), retired = RetiredPlans()
        shared.withLock { $0.execution = PlanExecutor(events: events, cell: cell, motionSlots: motionSlots, retired: retired) }
        let source = scheduler.addSource(sourceName, queue: QueueSpec(capacity: 8, overflow: .reject),
                                         subscription: Subscription(priority: .normal, relativeDeadline: .milliseconds(20))) { event in
            guard case .object(let object) = event.payload, let message = object as? PlannerMessage else { return }
            retired.beginRun()
            defer { retired.endRun() }
            shared.update(statusCell) { c in
                // In place (distinct stored properties of the inout control state): no copy of the executor.
                let latched = c.guardian.latch.isLatched, epoch = c.guardian.epoch
                let conditions = c.planConditions
                c.execution?.observe(conditions)
                c.execution?.checkLatch(latched: latched, epoch: epoch, at: event.release, sources: &c.sources)
                switch message.kind {
                case .goal(let id): c.execution?.newGoal(id, at: event.release, sources: &c.sources)
                case .ready(let plan):
                    // A newer goal (or a hold) signalled beside a message the full queue refused
                    // is known before this plan is installed: an older goal's plan never starts.
                    c.execution?.follow(latest: signals.latestGoal.load(ordering: .acquiring), hold: signals.holdGoal.load(ordering: .acquiring),
                                        at: event.release, sources: &c.sources)
                    c.execution?.install(plan, latched: latched, epoch: epoch, at: event.release, sources: &c.sources)
                case .failed(let goal): c.execution?.planningFailed(goal, at: event.release)
                case .stop(let id): c.execution?.stopNow(id, at: event.release, sources: &c.sources)
                }
            }
        }
        scheduler.addPeriodic(taskName, PeriodicSpec(period: executorPeriod, priority: .normal)) { event in
            let latest = signals.latestGoal.load(ordering: .acquiring), hold = signals.holdGoal.load(ordering: .acquiring)
            retired.beginRun()
            defer { retired.endRun() }
            shared.update(statusCell) { c in
                guard c.execution?.needsCheck(latest: latest, hold: hold) == true else { return }
                let conditions = c.planConditions
                c.execution?.observe(conditions)
                c.execution?.follow(latest: latest, hold: hold, at: event.release, sources: &c.sources)
                let latched = c.guardian.latch.isLatched
                c.execution?.tick(latched: latched, epoch: c.guardian.epoch, at: event.release, sources: &c.sources)
            }
        }
        return PlanningPort(source: source, events: events, statusCell: cell, policySlots: slots, goals: GoalInbox(users: configuration.planner.goals.users), signals: signals,
                            retired: retired)
    }
}

extension Control {
    /// What a plan step's preconditions are judged by (`not_latched`, `pose_known`,
    /// `inside_workspace`), as the validator judges them in a world state: no latch and no stop
    /// cause; a finite pose; the guard's workspace level inside (or its warning band).
    var planConditions: PlanConditions {
        let pose = status.pose
        return PlanConditions(clear: !guardian.latch.isLatched && status.causes.isEmpty,
                              poseKnown: pose.x.isFinite && pose.y.isFinite && pose.yaw.isFinite,
                              insideWorkspace: guardian.workspaceLevel <= .warn)
    }
}
