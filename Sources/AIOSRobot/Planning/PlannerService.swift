import Foundation
import Planner
import PlannerBackends
import RTScheduler
import RobotConfig
import Synchronization

/// Where a goal came from.
public enum GoalSource: Sendable, Equatable {
    /// `<prefix>goal/<user>`, with the request's id when it had one.
    case mqtt(user: String, id: String?, retained: Bool)
    /// `planner.goals.initial` (also `robotd sim --goal`).
    case configuration
    /// Given in-process (tests, tools).
    case command

    var word: String {
        switch self {
        case .mqtt: "mqtt"
        case .configuration: "config"
        case .command: "command"
        }
    }

    var user: String? { if case .mqtt(let user, _, _) = self { user } else { nil } }
}

/// What became of a goal handed to the planner service.
public enum GoalDecision: Sendable, Equatable {
    /// Taken: planning started under this id (any older request and plan are cancelled).
    case accepted(UInt64)
    /// Not acted on, why in words (`rate_limited`, `latched`, `not_authorised`, …).
    case refused(String)
    /// Not acted on and not an error: a retained message, a redelivered request.
    case ignored(String)
}

/// Planning on the async lane (docs/planner.md, "The planner service"): goals in — rate-limited,
/// authorised, deduplicated —, a request built from the world state the runtime publishes, the
/// router over the configured back ends (the built-in planner last), every answer validated, and
/// `planReady` / `planFailed` posted to the dispatch thread's `planner` source with its own
/// deadline. Nothing on the dispatch thread awaits it, and it never takes the control lock: it
/// reads the runtime's lock-free status and the executor's lock-free events.
///
/// A new goal cancels the request in flight and, through the dispatch thread, the plan being
/// executed. A latched stop cancels both (the executor sees the latch itself); nothing resumes
/// after the reset: a new goal is needed. At most `planner.max_requests_in_flight` requests (1 by
/// default) are in flight: a new goal's request waits for a cancelled one to end.
public final class PlannerService: Sendable {
    public let journal = PlanJournal()
    public let context: PlanningContext
    public let router: PlanRouter
    let runtime: RobotRuntime
    let port: PlanningPort
    private let scheduler: Scheduler
    private let settings: PlannerSettings
    private let validator: PlanValidator
    private let lane: AsyncLane
    private let systemPrompt: String
    private let abilityNames: [String]
    private let log: @Sendable (String) -> Void
    /// The episodic memory's summary for the prompt, already built (never waits); nil: no memory.
    private let memorySummary: (@Sendable () -> String)?
    private let state: Mutex<State>
    private let watcher = Mutex<Task<Void, Never>?>(nil)
    /// The latest messages posted to the dispatch thread, kept here so that their last reference —
    /// and a plan's arrays, which the policies share while they follow its routes — is dropped on
    /// this side, not by the dispatch thread (whose free() could wait for the allocator's lock).
    private let posted = Mutex<[PlannerMessage]>([])
    static let postedKept = 16
    /// Tests only: runs between a request's start and its task being stored (goal id), where a
    /// watcher's look used to miss a stop. A box, not a closure, in the mutex: a closure read
    /// through `withLock` is reabstracted on every read.
    let beforeStoringRequest = Mutex<GoalHook?>(nil)

    /// A plain-text goal repeated by the same user within this long is taken as a redelivery.
    public static let duplicateWindow = Duration.seconds(10)
    /// How often the service looks at the latch and the executor's events.
    static let watchPeriod = Duration.milliseconds(50)
    /// Planner health on the `plan` topic at least this often.
    static let healthInterval = Duration.seconds(10)

    private struct State {
        var nextGoal: UInt64 = 0
        var goal: WorldState.Goal?
        /// The guard's latch epoch when `goal` was taken: a stop since (even one already reset)
        /// cancels its request, and its plan is for that epoch only.
        var goalEpoch: UInt64 = 0
        /// The request of `asking`'s goal once stored; nil before it is (and after a stop goal).
        var request: Task<PostResult?, Never>?
        /// The goal whose request is in flight (waiting for its turn or asking); nil: none.
        var asking: UInt64?
        var inFlight = 0
        var lastTaken: Instant?
        /// Request ids of goals taken (user and id): each names one request, so one seen again is
        /// a redelivery however many goals came between.
        var seenIDs: [String] = []
        /// The last goal taken (user and text, when): a plain-text goal is a redelivery only of
        /// that one — the same words again after another goal are a new goal.
        var lastText: (key: String, at: Instant)?
        var world = PlanWorld()
        var cursor: OverwritingRing<PlanExecutionEvent>.Cursor
        var refused = 0
        var wasLatched = false
        /// The latch epoch the watcher saw last.
        var seenEpoch: UInt64 = 0
        var lastHealth: Instant?
        var initial: String?
        var startedAt: Instant?
    }

    /// `router`: instead of the configuration's back ends (tests, `robotd sim --planner`).
    /// `memorySummary`: the episodic memory's summary, given to models as a data block.
    /// `excludedSockets`: this process's sockets the configuration's back ends never reset (the
    /// daemon's MQTT connections; see PlannerBackends' `PeerSocket`).
    public init(runtime: RobotRuntime, scheduler: Scheduler, router: PlanRouter? = nil,
                memorySummary: (@Sendable () -> String)? = nil, excludedSockets: ExcludedSockets? = nil,
                log: @escaping @Sendable (String) -> Void = { _ in }) throws {
        guard let port = runtime.planning else { throw KindError("planner: the configuration has no `abilities`") }
        let configuration = runtime.configuration
        do {
            context = try PlanningContext(configuration: configuration)
        } catch {
            throw KindError("planner: \(error)")
        }
        self.runtime = runtime
        self.port = port
        self.scheduler = scheduler
        self.log = log
        self.memorySummary = memorySummary
        settings = configuration.planner
        validator = PlanValidator(context: context)
        self.router = try router ?? PlannerRoutes.router(configuration.planner, context: context, excluded: excludedSockets)
        lane = AsyncLane(results: port.source)
        systemPrompt = PlannerRoutes.systemPrompt(context: context, robot: configuration.robot.id)
        abilityNames = configuration.abilities.map(\.name)
        state = Mutex(State(cursor: port.events.newestCursor, seenEpoch: runtime.latchEpoch, initial: configuration.planner.goals.initial))
    }

    /// Takes goals from MQTT and starts watching the latch and the executor. The initial goal
    /// (`planner.goals.initial`) is given once the pose is known and nothing is latched, or after
    /// 5 s whatever the state (then a latched robot refuses it, saying why).
    public func start() {
        port.goals.attach { [weak self] arrival in self?.take(arrival) }
        state.withLock { $0.startedAt = scheduler.clock.now() }
        let task = Task.detached(priority: .utility) { [weak self] in
            while !Task.isCancelled {
                guard let self else { return }
                self.watch()
                try? await Task.sleep(for: Self.watchPeriod)
            }
        }
        watcher.withLock { $0 = task }
    }

    /// Stops taking goals and cancels the request in flight.
    public func stop() {
        port.goals.detach()
        watcher.withLock { $0?.cancel() }
        state.withLock { $0.request?.cancel() }
        port.retired.drain()
    }

    /// The goal's fate and, when taken, its id. `call`: one ability asked for directly
    /// (`AbilityCall`), planned as that one step instead of by the back ends.
    @discardableResult
    public func submit(_ text: String, from source: GoalSource = .command, call: Planner.JSONValue? = nil) -> GoalDecision {
        decide(GoalTopic.text(Array(text.utf8)).text, from: source, call: call)
    }

    /// A goal over MQTT, its payload parsed on the lane (`GoalInbox.arrival`): its text is not
    /// read as JSON again, so that what is a stop goal is what `StopGoal.classify` saw.
    func take(_ arrival: GoalArrival) {
        _ = decide(arrival.text.flatMap(GoalTopic.clean), from: .mqtt(user: arrival.user, id: arrival.id, retained: arrival.retained),
               call: arrival.call)
    }

    /// `cleaned`: the goal's text without control characters and outer blanks; nil: none.
    private func decide(_ cleaned: String?, from source: GoalSource, call: Planner.JSONValue?) -> GoalDecision {
        let now = scheduler.clock.now()
        let stop = cleaned.map(StopGoal.isStop) ?? false
        var entry = PlanTopicPayload(kind: .goal)
        entry.text = cleaned.map { String($0.prefix(GoalSettings.maxLength)) }
        entry.source = source.word
        entry.user = source.user
        if case .mqtt(_, let id, _) = source { entry.requestId = id }
        let decision: GoalDecision = state.withLock { s in
            // A redelivery of a goal taken (QoS 1 delivers at least once) is not taken again; one
            // that was refused is judged afresh (nothing came of it the first time).
            var idKey: String?
            var textKey: String?
            if case .mqtt(let user, let id, let retained) = source {
                if retained { return .ignored("retained") }
                if !settings.goals.users.contains(user) { s.refused += 1; return .refused("not_authorised") }
                if let id { idKey = user + "\u{0}" + id } else if let cleaned { textKey = user + "\u{0}" + cleaned }
                // `stop` is never a duplicate: holding again is harmless, missing one is not.
                if !stop, let idKey, s.seenIDs.contains(idKey) { return .ignored("duplicate") }
                if !stop, let textKey, let last = s.lastText, last.key == textKey, now - last.at <= Self.duplicateWindow {
                    return .ignored("duplicate")
                }
            }
            if stop {
                // No rate limit, no model: the robot holds now, and the request in flight ends.
                remember(idKey: idKey, textKey: textKey, now: now, state: &s)
                s.nextGoal += 1
                let goal = WorldState.Goal(id: s.nextGoal, text: "stop")
                s.goal = goal
                s.goalEpoch = runtime.latchEpoch
                s.world.record(kind: "goal", text: "goal \(goal.id) from \(source.user ?? source.word): stop", at: Self.seconds(now))
                s.request?.cancel()
                s.request = nil
                s.asking = nil
                // Beside the message: the executor's next check holds even if the queue is full.
                port.signals.taken(goal.id)
                port.signals.hold(goal.id)
                return .accepted(goal.id)
            }
            guard let goalText = cleaned else { s.refused += 1; return .refused("empty") }
            guard goalText.count <= GoalSettings.maxLength else { s.refused += 1; return .refused("too_long") }
            if let last = s.lastTaken, now - last < .saturating(milliseconds: settings.goals.minIntervalMs) {
                s.refused += 1
                return .refused("rate_limited")
            }
            // A goal taken during a stop would start after the reset: nothing resumes by itself.
            // The epoch first: a stop the flag does not show yet moves it already, and its plan
            // is then refused for the epoch it was taken in.
            let epoch = runtime.latchEpoch
            if runtime.isLatched { s.refused += 1; return .refused("latched") }
            s.goalEpoch = epoch
            s.lastTaken = now
            remember(idKey: idKey, textKey: textKey, now: now, state: &s)
            s.nextGoal += 1
            let goal = WorldState.Goal(id: s.nextGoal, text: goalText)
            s.goal = goal
            s.world.record(kind: "goal", text: "goal \(goal.id) from \(source.user ?? source.word)", at: Self.seconds(now))
            // The old request ends; until this goal's is stored there is none to cancel, and the
            // watcher must not take the old one for it.
            s.request?.cancel()
            s.request = nil
            // In flight from now (its task clears it when it ends, whenever that is).
            s.asking = goal.id
            // Beside the message: the executor's next check cancels an older goal's plan even if
            // the message never reaches it.
            port.signals.taken(goal.id)
            return .accepted(goal.id)
        }
        switch decision {
        case .accepted(let id):
            entry.goalId = id
            entry.outcome = "accepted"
        case .refused(let why):
            entry.outcome = "refused"
            entry.reason = why
        case .ignored(let why):
            entry.outcome = "ignored"
            entry.reason = why
        }
        note(entry)
        if stop, case .accepted(let id) = decision {
            // A full queue: the hold signalled above acts at the executor's next check (50 ms).
            if !port.post(kept(PlannerMessage(.stop(id)))) { log("planner: the dispatch queue refused stop goal \(id) (full): held at the next check") }
            return decision
        }
        guard case .accepted(let id) = decision, case let (goal, epoch)? = state.withLock({ s in s.goal.map { ($0, s.goalEpoch) } }),
              goal.id == id else { return decision }
        // The old plan stops at once, on the dispatch thread; then this goal's request. A full
        // queue: motion holds at the executor's next check instead (`PlanSignals`), the old plan
        // never drives on.
        if !port.post(kept(PlannerMessage(.goal(id)))) {
            port.signals.hold(id)
            log("planner: the dispatch queue refused goal \(id) (full): motion held until its plan")
        }
        let task = lane.submit(refused: { [weak self] _, result in self?.resultRefused(goal.id, result) }) { [weak self] in
            await self?.request(goal, call: call, latchEpoch: epoch)
        }
        beforeStoringRequest.withLock { $0 }?.run(id)
        // Stored only while it is still wanted: the goal still the robot's and no stop since it
        // was taken. A watcher that saw the epoch move before this point found no request to
        // cancel: the epoch is looked at again here. A request that already ended (a quick back
        // end: `asking` cleared) is left alone — its plan may be on its way to the dispatch
        // thread, and cancelling it there dropped the plan of a goal still wanted, unsaid.
        let stopped: Bool = state.withLock { s in
            let epochMoved = runtime.latchEpoch != epoch
            switch Self.afterSubmit(goalIsCurrent: s.goal?.id == id, inFlight: s.asking == id, epochMoved: epochMoved) {
            case .store:
                s.request = task
                return false
            case .leave:
                return false
            case .cancel:
                break
            }
            task.cancel()
            guard epochMoved, s.asking == id else { return false }
            s.asking = nil
            return true
        }
        if stopped { noteLatchCancel(id) }
        return decision
    }

    /// What becomes of a goal's request task once submitted.
    enum AfterSubmit: Equatable {
        /// In flight and wanted: kept, so that a newer goal or a stop can cancel it.
        case store
        /// Wanted, and already ended: its result is posted (or on its way); nothing to keep.
        case leave
        /// No longer wanted (a newer goal, a stop since it was taken): cancelled.
        case cancel
    }

    static func afterSubmit(goalIsCurrent: Bool, inFlight: Bool, epochMoved: Bool) -> AfterSubmit {
        guard goalIsCurrent, !epochMoved else { return .cancel }
        return inFlight ? .store : .leave
    }

    /// What makes a redelivery of the goal being taken recognisable.
    private func remember(idKey: String?, textKey: String?, now: Instant, state s: inout State) {
        if let idKey {
            s.seenIDs.append(idKey)
            if s.seenIDs.count > 64 { s.seenIDs.removeFirst() }
        }
        s.lastText = textKey.map { ($0, now) }
    }

    /// The planner's health now: each back end's breaker and figures.
    public func health() -> [BackendHealth] { router.health() }

    // MARK: One request

    private func request(_ goal: WorldState.Goal, call: Planner.JSONValue?, latchEpoch: UInt64) async -> Payload? {
        while !state.withLock({ s in
            guard s.inFlight < settings.maxRequestsInFlight else { return false }
            s.inFlight += 1
            return true
        }) {
            if Task.isCancelled { return nil }
            try? await Task.sleep(for: .milliseconds(10))
        }
        defer {
            state.withLock { s in
                if s.asking == goal.id { s.asking = nil }
            }
            // The slot is given back once the back ends' connections of this request are torn
            // down, not when the request returns: a request cut short returns at once, and a new one
            // started then would run beside a connection still flooding. Bounded: past it the slot
            // is given back anyway, the overrun counted and its back end skipped while a teardown
            // of it is pending (`PlanRouter.teardownsFinished`). The plan or failure is posted
            // meanwhile; only the next request waits.
            let router = self.router
            Task.detached { [self] in
                let late = await router.teardownsFinished(within: Self.teardownBound)
                if !late.isEmpty {
                    log("planner: the connections of \(late.joined(separator: ", ")) were not torn down within \(Self.teardownBound): the request slot is given back, the back end skipped while they are")
                }
                state.withLock { $0.inFlight -= 1 }
            }
        }
        // A plan made from a state that moved on (the mode, the stop causes, the pose) is not the
        // planner's mistake: asked again from the state now, a bounded number of times — all of it
        // within one `planner.budget_ms` (real time, as the router's deadlines), never one each.
        var replans = 0
        let budget = Duration.saturating(milliseconds: settings.budgetMs)
        let start = ContinuousClock.now
        while true {
            guard !Task.isCancelled else { return nil }
            // A stop since the goal was taken ends it, whoever sees it first (this loop or the
            // watcher): nothing is planned again with the epoch of before the stop.
            guard runtime.latchEpoch == latchEpoch else { return endedByStop(goal) }
            switch await route(goal, call: call, latchEpoch: latchEpoch, budget: budget - (ContinuousClock.now - start)) {
            case .cancelled:
                return nil
            case .stopped:
                return endedByStop(goal)
            case .accepted(let plan, let answer, let routing):
                return ready(goal, plan: plan, answer: answer, routing: routing)
            case .exhausted(let routing, let stale):
                if runtime.latchEpoch != latchEpoch { return endedByStop(goal) }
                guard stale, replans < Self.maxReplans else { return failed(goal, Self.reason(routing), routing) }
                replans += 1
                var entry = PlanTopicPayload(kind: .replan)
                entry.goalId = goal.id
                entry.reason = "the robot's state changed while planning: planning again from the state now (\(replans) of \(Self.maxReplans))"
                entry.attempts = routing.attempts.map(Self.attempt)
                note(entry)
            }
        }
    }

    /// A request a stop cancelled (`planning_failed`'s reason).
    static let latchCancelReason = "cancelled: a stop latched"

    /// The request saw the epoch move before the watcher did: it ends, said once (the watcher
    /// finds nothing in flight afterwards). No message for the dispatch thread: the executor
    /// cancels on the latch itself.
    private func endedByStop(_ goal: WorldState.Goal) -> Payload? {
        let first = state.withLock { s in
            guard s.asking == goal.id else { return false }
            s.asking = nil
            return true
        }
        if first { noteLatchCancel(goal.id) }
        return nil
    }

    /// The dispatch thread's queue refused a request's plan or failure (full, or stopped): the
    /// plan will not run. Said on `plan` as the executor says a plan it refuses, and logged.
    private func resultRefused(_ goal: UInt64, _ result: PostResult) {
        var entry = PlanTopicPayload(kind: .progress)
        entry.goalId = goal
        entry.event = "refused"
        entry.reason = result == .stopped ? "dispatch_stopped" : "dispatch_queue_full"
        entry.step = 0
        entry.stepCount = 0
        note(entry)
        log("planner: the dispatch queue refused goal \(goal)'s plan or failure (\(entry.reason ?? "")): it will not run; give the goal again")
    }

    private func noteLatchCancel(_ goal: UInt64) {
        var entry = PlanTopicPayload(kind: .planningFailed)
        entry.goalId = goal
        entry.reason = Self.latchCancelReason
        note(entry)
    }

    /// How long a request's slot waits for the back ends' teardowns after the request ended.
    static let teardownBound = Duration.seconds(1)

    /// Times a goal is planned again because its world state went stale meanwhile.
    static let maxReplans = 2

    private enum Routed {
        case accepted(ValidatedPlan, PlanAnswer, PlanRouting)
        /// `stale`: a rejection said the state had moved on.
        case exhausted(PlanRouting, stale: Bool)
        case cancelled
        /// An answer came back after a stop moved the latch epoch: the routing ended there.
        case stopped
    }

    /// One routing from the world state now: every answer validated against the state then.
    /// `budget`: what is left of the request's `planner.budget_ms`.
    private func route(_ goal: WorldState.Goal, call: Planner.JSONValue?, latchEpoch: UInt64, budget: Duration) async -> Routed {
        let world = capture()
        let planRequest = Planner.PlanRequest(goal: goal, world: world, latchEpoch: latchEpoch)
        let worldJSON = (try? world.jsonData()).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        let question = PlannerBackends.PlanRequest(
            systemPrompt: systemPrompt, goal: goal.text, goalKind: PlannerRoutes.goalKind(goal.text, context: context, world: world),
            data: promptData(world: worldJSON), schema: context.planSchema.text)
        let accepted = Mutex<ValidatedPlan?>(nil)
        let stopped = Mutex(false)
        let runtime = self.runtime
        // Each back end's answers in this routing: 0 the first, n the n-th correction.
        let rounds = Mutex<[String: Int]>([:])
        let validator = self.validator
        // A call is its own one-step plan: no back end is asked, the validator below judges it.
        let router = call.map(AbilityCall.router) ?? self.router
        let routing = await router.plan(question, budget: max(.zero, budget)) { [weak self] answer -> PlanJudgement in
            guard let self else { return .reject(["the planner stopped"]) }
            let verdict = validator.validate(answer.json, request: planRequest, world: self.capture())
            let round = rounds.withLock { r in
                defer { r[answer.backend, default: 0] += 1 }
                return r[answer.backend, default: 0]
            }
            self.noteVerdict(goal: goal.id, answer: answer, round: round, verdict: verdict)
            switch verdict {
            case .accepted(let plan):
                accepted.withLock { $0 = plan }
                return .accept
            case .rejected(let rejection):
                if runtime.latchEpoch != latchEpoch {
                    // A stop since the goal was taken: no correction and no other back end can
                    // give this goal a plan now. This request's task ends the routing (the
                    // router asks no one once its task is cancelled, and the lane posts nothing).
                    stopped.withLock { $0 = true }
                    withUnsafeCurrentTask { $0?.cancel() }
                }
                let reasons = rejection.issues.map(\.description) + (rejection.omitted > 0 ? ["and \(rejection.omitted) more"] : [])
                // A stale plan is never sent back for a correction (docs/planner.md): the routing
                // ends, and the request asks again from the state now (`replan`).
                return rejection.isStale ? .stale(reasons) : .reject(reasons)
            }
        }
        noteHealth()
        switch routing.outcome {
        case .accepted(let answer):
            guard let plan = accepted.withLock({ $0 }) else { return .exhausted(routing, stale: false) }
            return .accepted(plan, answer, routing)
        case .exhausted:
            return .exhausted(routing, stale: false)
        case .stale:
            return stopped.withLock { $0 } ? .stopped : .exhausted(routing, stale: true)
        case .cancelled:
            return stopped.withLock { $0 } ? .stopped : .cancelled
        }
    }

    /// `planReady`: the plan made executable, recorded, posted by the lane.
    private func ready(_ goal: WorldState.Goal, plan: ValidatedPlan, answer: PlanAnswer, routing: PlanRouting) -> Payload? {
        let executable: ExecutablePlan
        do {
            executable = try PlanPreparation.executable(plan, abilities: runtime.configuration.abilities, slots: port.policySlots)
        } catch {
            return failed(goal, error.description, routing)
        }
        var entry = PlanTopicPayload(kind: .plan)
        entry.goalId = goal.id
        entry.backend = answer.backend
        entry.latencyUs = Self.micros(answer.latency)
        if case .object(let fields)? = try? PlanValidator.decode(Data(answer.json.utf8)).get(), case .array(let steps)? = fields["steps"] {
            entry.steps = steps.compactMap { step in
                guard case .object(let s) = step, case .string(let ability)? = s["ability"] else { return nil }
                if case .object(let arguments)? = s["arguments"] { return .init(ability: ability, arguments: arguments) }
                return .init(ability: ability, arguments: [:])
            }
        }
        note(entry)
        state.withLock { $0.world.record(kind: "plan_accepted", text: "goal \(goal.id): \(answer.backend)'s plan", at: Self.seconds(scheduler.clock.now())) }
        guard !Task.isCancelled else { return nil }
        port.retired.drain()
        return .object(kept(PlannerMessage(.ready(executable))))
    }

    private func failed(_ goal: WorldState.Goal, _ reason: String, _ routing: PlanRouting) -> Payload? {
        var entry = PlanTopicPayload(kind: .planningFailed)
        entry.goalId = goal.id
        entry.reason = reason
        entry.attempts = routing.attempts.map(Self.attempt)
        note(entry)
        state.withLock { $0.world.record(kind: "plan_failed", text: "goal \(goal.id): no plan", at: Self.seconds(scheduler.clock.now())) }
        return Task.isCancelled ? nil : .object(kept(PlannerMessage(.failed(goal.id))))
    }

    private func kept(_ message: PlannerMessage) -> PlannerMessage {
        posted.withLock { list in
            list.append(message)
            if list.count > Self.postedKept { list.removeFirst(list.count - Self.postedKept) }
        }
        return message
    }

    // MARK: Watching the runtime

    /// The latch (a stop cancels the request in flight), the executor's events, health now and then,
    /// the initial goal.
    func watch() {
        let now = scheduler.clock.now()
        // Plans the dispatch thread is done with are released here, never there.
        port.retired.drain()
        // The epoch first (see `submit`).
        let epoch = runtime.latchEpoch
        let latched = runtime.isLatched
        let events = state.withLock { s in port.events.read(from: &s.cursor) }
        var cancelled: UInt64?
        let initial: String? = state.withLock { s in
            if latched != s.wasLatched {
                s.wasLatched = latched
                s.world.record(kind: latched ? "latched" : "reset", text: latched ? "a stop latched" : "the stop was reset",
                               at: Self.seconds(now))
            } else if epoch != s.seenEpoch && !latched {
                s.world.record(kind: "latched", text: "a stop latched and was reset", at: Self.seconds(now))
            }
            s.seenEpoch = epoch
            // A stop now, or one since the goal was taken — even one already reset between two
            // looks: the request is cancelled, nothing planned before a stop starts after it.
            if latched || epoch != s.goalEpoch, let asking = s.asking, let request = s.request {
                request.cancel()
                s.asking = nil
                cancelled = asking
            }
            for e in events {
                s.world.record(kind: "plan_" + e.kind.word, text: "goal \(e.goalID) step \(e.step + 1)/\(e.stepCount)", at: Self.seconds(now))
            }
            guard let text = s.initial, let started = s.startedAt else { return nil }
            // The pose known and nothing held (a start-up hold lasts until every sensor reports):
            // a plan made in a hold would be stale a moment later.
            let status = runtime.status
            let ready = !latched && !status.holding && !status.inRecovery
                && (runtime.configuration.odometry == nil || (status.pose.x.isFinite && status.pose.y.isFinite))
            guard ready || now - started > .seconds(5) else { return nil }
            s.initial = nil
            return text
        }
        if let cancelled { noteLatchCancel(cancelled) }
        for e in events { note(progress(e)) }
        if let initial { submit(initial, from: .configuration) }
        if state.withLock({ s in s.lastHealth.map { now - $0 >= Self.healthInterval } ?? true }) { noteHealth() }
    }

    private func progress(_ e: PlanExecutionEvent) -> PlanTopicPayload {
        var entry = PlanTopicPayload(kind: .progress)
        entry.goalId = e.goalID
        entry.event = e.kind.word
        entry.step = Int(e.step)
        entry.stepCount = Int(e.stepCount)
        if abilityNames.indices.contains(Int(e.ability)) { entry.ability = abilityNames[Int(e.ability)] }
        if e.reason != .none { entry.reason = e.reason.word }
        if e.remaining.isFinite, e.kind == .failed || e.kind == .cancelled { entry.remaining = e.remaining }
        return entry
    }

    /// The world state and, with a memory, what happened to earlier goals: both data, quoted as such.
    private func promptData(world: String) -> [PromptData] {
        var data = [PromptData(label: PlannerRoutes.worldLabel, text: world)]
        if let text = memorySummary?(), !text.isEmpty { data.append(PromptData(label: PlannerRoutes.memoryLabel, text: text)) }
        return data
    }

    /// The world state now (the request's, or the one a plan is validated against).
    func capture() -> WorldState {
        let now = scheduler.clock.now()
        let execution = port.status
        let stalled = scheduler.stalledTask != nil
        return state.withLock { s in
            s.world.capture(runtime: runtime, stalled: stalled, goal: s.goal, execution: execution, abilityNames: abilityNames,
                            at: Self.seconds(now))
        }
    }

    // MARK: The journal

    private func note(_ entry: PlanTopicPayload) {
        journal.append(entry)
        if entry.kind != .health { log("planner: " + entry.printableLine) }
    }

    private func noteVerdict(goal: UInt64, answer: PlanAnswer, round: Int, verdict: PlanVerdict) {
        var entry = PlanTopicPayload(kind: .verdict)
        entry.goalId = goal
        entry.backend = answer.backend
        entry.round = round
        entry.latencyUs = Self.micros(answer.latency)
        switch verdict {
        case .accepted:
            entry.accepted = true
        case .rejected(let rejection):
            entry.accepted = false
            entry.issues = rejection.issues.map { .init(code: $0.code.rawValue, path: $0.path, message: $0.message) }
        }
        note(entry)
    }

    private func noteHealth() {
        var entry = PlanTopicPayload(kind: .health)
        entry.backends = router.health().map(Self.backend)
        let now = scheduler.clock.now()
        entry.goalsDropped = port.goals.dropped.load(ordering: .relaxed)
        (entry.requestsInFlight, entry.goalsRefused) = state.withLock { s in
            s.lastHealth = now
            return (s.inFlight, s.refused)
        }
        journal.append(entry)
    }

    /// One back end's figures as the `plan` topic's `health` carries them.
    static func backend(_ h: BackendHealth) -> PlanTopicPayload.Backend {
        PlanTopicPayload.Backend(name: h.name, breaker: h.breaker.name, consecutiveFailures: h.consecutiveFailures,
                                 breakerOpened: h.breakerOpened, requests: h.requests, answers: h.answers, accepted: h.accepted,
                                 rejected: h.rejected, failures: h.failures, failuresByKind: h.failuresByKind,
                                 cancelled: h.cancelled, unanswered: h.unanswered, unansweredTimeUs: micros(h.unansweredTime),
                                 configurationFailures: h.configurationFailures, skipped: h.skipped,
                                 skippedByReason: h.skippedByReason, pendingTeardowns: h.pendingTeardowns,
                                 teardownsOverdue: h.teardownsOverdue,
                                 lastLatencyUs: h.lastLatency.map(micros), latencyP50Us: h.latencyP50.map(micros),
                                 latencyP95Us: h.latencyP95.map(micros), lastError: h.lastError)
    }

    static func attempt(_ a: PlanAttempt) -> PlanTopicPayload.Attempt {
        let (outcome, detail): (String, String?) = switch a.outcome {
        case .accepted: ("accepted", nil)
        case .rejected(let reasons): ("rejected", reasons.joined(separator: "; "))
        case .failed(let error): ("failed", error.description)
        case .skipped(let why): ("skipped", String(describing: why))
        case .cancelled: ("cancelled", nil)
        }
        return .init(backend: a.backend, round: a.round, outcome: outcome, detail: detail, latencyUs: micros(a.latency))
    }

    /// The last attempt's word, for "no plan: …".
    static func reason(_ routing: PlanRouting) -> String {
        guard let last = routing.attempts.last(where: { if case .skipped = $0.outcome { false } else { true } }) ?? routing.attempts.last else {
            return "no back end to ask"
        }
        let a = attempt(last)
        return "\(a.backend) \(a.outcome)" + (a.detail.map { ": \($0)" } ?? "")
    }

    static func micros(_ d: Duration) -> Int64 {
        let (s, atto) = d.components
        return s * 1_000_000 + atto / 1_000_000_000_000
    }

    static func seconds(_ instant: Instant) -> Double { Double(instant.nanoseconds) / 1e9 }
}

/// A test's code to run at a point of the planner service, for one goal id.
final class GoalHook: Sendable {
    let run: @Sendable (UInt64) -> Void
    init(_ run: @escaping @Sendable (UInt64) -> Void) { self.run = run }
}
