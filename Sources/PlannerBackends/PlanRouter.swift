import Synchronization

/// One back end in the router's order, with its own deadline, the goal kinds it serves and its
/// circuit breaker's settings.
public struct PlanRoute: Sendable {
    public var backend: any PlanBackend
    /// The total time one request to this back end may take.
    public var deadline: Duration
    /// The goal kinds it serves; nil: every goal. A goal without a kind goes only to back ends
    /// without a list.
    public var goalKinds: Set<String>?
    public var breaker: BreakerSettings

    public init(_ backend: any PlanBackend, deadline: Duration, goalKinds: Set<String>? = nil,
                breaker: BreakerSettings = BreakerSettings()) {
        self.backend = backend
        self.deadline = deadline
        self.goalKinds = goalKinds
        self.breaker = breaker
    }
}

public struct PlanRouterSettings: Sendable, Equatable {
    /// How many times a rejected plan goes back to the same back end, with the reasons, before the
    /// router falls back to the next.
    public var maximumRetriesAfterRejection: Int
    /// How many attempts `recentAttempts()` keeps.
    public var attemptLogCapacity: Int
    /// How many latencies per back end the health figures are computed from.
    public var latencyWindow: Int
    /// How long past its deadline a back end that ignores it is cut by the router itself.
    public var grace: Duration

    public init(maximumRetriesAfterRejection: Int = 2, attemptLogCapacity: Int = 64, latencyWindow: Int = 64,
                grace: Duration = .milliseconds(100)) {
        self.maximumRetriesAfterRejection = max(0, maximumRetriesAfterRejection)
        self.attemptLogCapacity = max(1, attemptLogCapacity)
        self.latencyWindow = max(1, latencyWindow)
        self.grace = grace
    }
}

/// What happened to one back end within one routing.
public struct PlanAttempt: Sendable, Equatable {
    public enum Outcome: Sendable, Equatable {
        /// The validator accepted the answer.
        case accepted
        /// The validator rejected the answer, for these reasons.
        case rejected([String])
        /// The back end gave no answer.
        case failed(PlanBackendError)
        /// Not asked.
        case skipped(SkipReason)
        /// The caller cancelled the routing while this back end worked.
        case cancelled
    }

    public enum SkipReason: Sendable, Equatable {
        /// The route does not serve this goal kind (nil: the goal has no kind).
        case goalKind(String?)
        /// The breaker is open (or half-open with its probe in flight).
        case breakerOpen(retryIn: Duration)
        /// The route's deadline is longer than the time the request has left.
        case notEnoughTime(left: Duration, deadline: Duration)
        /// More than one of the back end's earlier requests ended for its callers with its
        /// connections not torn down yet (a server that hangs or floods keeps them waiting): a new
        /// one would pile up on them.
        case teardownsPending(Int)

        /// A short stable name for counting skips by reason.
        public var kind: String {
            switch self {
            case .goalKind: "goal_kind"
            case .breakerOpen: "breaker_open"
            case .notEnoughTime: "not_enough_time"
            case .teardownsPending: "teardowns_pending"
            }
        }
    }

    public var backend: String
    /// 0 for the first question, n for the n-th retry with rejection reasons.
    public var round: Int
    public var outcome: Outcome
    /// From the question to the answer or the failure (zero when skipped); validation excluded.
    public var latency: Duration
    /// When the attempt began, from the start of the routing.
    public var startedAfter: Duration
}

/// What the caller's validation says of one answer.
public enum PlanJudgement: Sendable, Equatable {
    case accept
    /// The model's mistake: the reasons go back to the same back end for a corrected plan (within
    /// `maximumRetriesAfterRejection`), then the router falls back to the next.
    case reject([String])
    /// The world moved on since the request (the mode, the stop causes, the goal, the pose): not
    /// the model's mistake, and no correction can mend it — the state the plan was made from is
    /// gone, and every back end would be asked about that same old state. The routing ends there
    /// (`PlanRouting.Outcome.stale`), for the caller to ask again from the state now.
    case stale([String])
}

/// A routing's result: the accepted answer (with its back end and latency) or why there is none,
/// and every attempt on the way.
public struct PlanRouting: Sendable, Equatable {
    public enum Outcome: Sendable, Equatable {
        case accepted(PlanAnswer)
        /// Every back end was skipped, failed or had its plans rejected.
        case exhausted
        /// An answer was stale (`PlanJudgement.stale`): nobody else was asked.
        case stale
        case cancelled
    }

    public var outcome: Outcome
    public var attempts: [PlanAttempt]
    public var elapsed: Duration

    public var answer: PlanAnswer? {
        if case .accepted(let answer) = outcome { return answer }
        return nil
    }
}

/// A back end's figures for the planner's health: its breaker, its counts, its latencies.
public struct BackendHealth: Sendable, Equatable {
    public var name: String
    public var breaker: CircuitBreaker.State
    public var consecutiveFailures: Int
    /// Times its breaker opened.
    public var breakerOpened: Int
    /// Requests sent (retries included).
    public var requests: Int
    /// Answers received (whatever their verdict).
    public var answers: Int
    public var accepted: Int
    public var rejected: Int
    /// Requests that ended without an answer, by the back end's doing; `requests` is `answers` +
    /// `failures` + `cancelled`.
    public var failures: Int
    /// Failures by `PlanBackendError.kind`.
    public var failuresByKind: [String: Int]
    /// Times caller-cancelled requests ran a whole deadline between them without an answer, each
    /// counted against the breaker as one failure (see `PlanRouter`); not in `failures`.
    public var unanswered: Int
    /// Failures that opened the breaker at once (`redirect`, `configuration`): no retry mends them.
    public var configurationFailures: Int
    /// Requests its callers cancelled (a new goal, an e-stop): in `requests`, neither answers nor failures.
    public var cancelled: Int
    /// How long the caller-cancelled requests since its last answer or failure ran, in all.
    public var unansweredTime: Duration
    public var skipped: Int
    /// Skips by `PlanAttempt.SkipReason.kind`.
    public var skippedByReason: [String: Int]
    /// Its requests whose connections are not torn down yet (`PlanBackend.pendingTeardowns`), now.
    public var pendingTeardowns: Int
    /// Times its teardowns were still running when the bound of `PlanRouter.teardownsFinished`
    /// passed (the caller's request slot was then given back with them still running).
    public var teardownsOverdue: Int
    public var lastLatency: Duration?
    /// Over the last `latencyWindow` requests that ended (answered or failed), nearest rank.
    public var latencyP50: Duration?
    public var latencyP95: Duration?
    public var lastError: String?
}

/// The ordered list of planner back ends: routes a request by goal kind and time left, asks each
/// back end within its deadline, feeds rejection reasons back to the same back end a bounded number
/// of times, falls back to the next, and keeps each back end's breaker and figures.
///
/// A breaker counts failures of the back end (no answer), not rejections of its plans: a model that
/// answers wrong is handled by the feedback and the fallback, a server that is down by the breaker.
/// A redirect or a configuration failure opens it at once: no retry mends the base URL.
///
/// The caller's cancellation (a new goal, an e-stop) is no verdict on one request; but goals that
/// come faster than a hanging back end's deadline would cancel every request before it times out,
/// and the breaker would never open. So the time caller-cancelled requests ran without an answer
/// adds up, and each whole deadline of it counts as one failure (`unanswered`): the breaker opens
/// after as much unanswered time however the goals cut it. And a back end with more than one
/// request whose connection is not torn down yet is skipped (`teardownsPending`): each cancelled
/// request to a server that floods or hangs leaves a teardown behind, and new requests would pile
/// up behind them. The caller holds its request slot until the teardowns of its routing ran
/// (`teardownsFinished(within:)`); a back end whose teardowns overran that bound is skipped as long
/// as any of them is pending.
///
/// A stale answer (`PlanJudgement.stale`) is never sent back for a correction: the routing ends.
public final class PlanRouter: Sendable {
    public let routes: [PlanRoute]
    public let settings: PlanRouterSettings
    private let clock: any BreakerClock

    private struct Figures {
        var breaker: CircuitBreaker
        var requests = 0
        var answers = 0
        var accepted = 0
        var rejected = 0
        var failures = 0
        var failuresByKind: [String: Int] = [:]
        var configurationFailures = 0
        var cancelled = 0
        var unanswered = 0
        /// Caller-cancelled requests' time since the last answer or failure.
        var unansweredTime = Duration.zero
        var skipped = 0
        var skippedByReason: [String: Int] = [:]
        var teardownsOverdue = 0
        /// Its teardowns overran the bound of `teardownsFinished` and have not all run since.
        var teardownOverdue = false
        var latencies: [Duration] = []
        var lastLatency: Duration?
        var lastError: String?
    }

    private struct State {
        var figures: [Figures]
        var attempts: [PlanAttempt] = []
    }

    private let state: Mutex<State>

    /// `clock` times the breakers' cool-downs only; deadlines and latencies are always real time.
    public init(routes: [PlanRoute], settings: PlanRouterSettings = PlanRouterSettings(),
                clock: any BreakerClock = SystemBreakerClock()) {
        self.routes = routes
        self.settings = settings
        self.clock = clock
        state = Mutex(State(figures: routes.map { Figures(breaker: CircuitBreaker($0.breaker)) }))
    }

    /// Routes `request` within `budget` (the whole request's time; nil: no limit beyond each route's
    /// deadline). `validate` returns nil to accept an answer, or the reasons to reject it (never
    /// stale: see `plan(_:budget:judge:)`).
    public func plan(_ request: PlanRequest, budget: Duration? = nil,
                     validate: @escaping @Sendable (PlanAnswer) async -> [String]?) async -> PlanRouting {
        await plan(request, budget: budget, judge: { answer in
            await validate(answer).map(PlanJudgement.reject) ?? .accept
        })
    }

    /// Routes `request` within `budget` (the whole request's time; nil: no limit beyond each route's
    /// deadline); `judge` says of each answer whether it is accepted, to be corrected, or stale.
    public func plan(_ request: PlanRequest, budget: Duration? = nil,
                     judge: @escaping @Sendable (PlanAnswer) async -> PlanJudgement) async -> PlanRouting {
        let realClock = ContinuousClock()
        let start = realClock.now
        var attempts: [PlanAttempt] = []
        func record(_ index: Int, round: Int, _ outcome: PlanAttempt.Outcome, latency: Duration = .zero, at: ContinuousClock.Instant) {
            let attempt = PlanAttempt(backend: routes[index].backend.name, round: round, outcome: outcome,
                                      latency: latency, startedAfter: at - start)
            attempts.append(attempt)
            note(attempt, route: index)
        }
        func done(_ outcome: PlanRouting.Outcome) -> PlanRouting {
            PlanRouting(outcome: outcome, attempts: attempts, elapsed: realClock.now - start)
        }

        for (index, route) in routes.enumerated() {
            if let kinds = route.goalKinds, !(request.goalKind.map(kinds.contains) ?? false) {
                record(index, round: 0, .skipped(.goalKind(request.goalKind)), at: realClock.now)
                continue
            }
            var question = request
            var round = 0
            while true {
                if Task.isCancelled { return done(.cancelled) }
                let now = realClock.now
                if let budget {
                    let left = budget - (now - start)
                    if route.deadline > left {
                        record(index, round: round, .skipped(.notEnoughTime(left: max(.zero, left), deadline: route.deadline)), at: now)
                        break
                    }
                }
                let pending = route.backend.pendingTeardowns
                let overdue = state.withLock { state in
                    if pending == 0 { state.figures[index].teardownOverdue = false }
                    return state.figures[index].teardownOverdue
                }
                if pending > Self.maximumPendingTeardowns || (overdue && pending > 0) {
                    record(index, round: round, .skipped(.teardownsPending(pending)), at: now)
                    break
                }
                let admission = state.withLock { $0.figures[index].breaker.admit(now: clock.now()) }
                if case .refused(let retryIn) = admission {
                    record(index, round: round, .skipped(.breakerOpen(retryIn: retryIn)), at: now)
                    break
                }
                let backend = route.backend, deadline = route.deadline, asked = question
                let result: Result<PlanAnswer, any Error>
                do {
                    result = .success(try await withDeadline(deadline + settings.grace, reported: deadline) {
                        try await backend.plan(asked, deadline: deadline)
                    })
                } catch {
                    result = .failure(error)
                }
                let latency = realClock.now - now
                switch result {
                case .failure(let error):
                    let failure = (error as? PlanBackendError) ?? (error is CancellationError ? .cancelled : .other(String(describing: error)))
                    if failure == .cancelled, Task.isCancelled {
                        // The caller's cancellation (a new goal, an e-stop): no verdict on this request
                        // (a half-open breaker's probe slot is given back for the next one), but its
                        // time adds up until the back end answers (see the class's comment).
                        state.withLock { state in
                            var f = state.figures[index]
                            defer { state.figures[index] = f }
                            f.unansweredTime += latency
                            guard f.unansweredTime >= deadline else {
                                f.breaker.abandoned()
                                return
                            }
                            f.lastError = "no answer in \(f.unansweredTime.inMilliseconds) ms of requests cancelled by their callers "
                                + "(deadline \(deadline.inMilliseconds) ms): counted against its breaker as one failure"
                            f.unansweredTime = .zero
                            f.unanswered += 1
                            f.breaker.failure(now: clock.now())
                        }
                        record(index, round: round, .cancelled, latency: latency, at: now)
                        return done(.cancelled)
                    }
                    // Anything else is the back end's failure, also a cancellation that is not the
                    // caller's (a back end that cancels itself at its deadline): otherwise a back end
                    // that always does so would never open its breaker.
                    let verdict = failure == .cancelled ? Self.ownCancellation(after: latency, deadline: deadline) : failure
                    state.withLock { state in
                        state.figures[index].unansweredTime = .zero
                        if Self.isConfigurationFailure(verdict) {
                            state.figures[index].breaker.trip(now: clock.now())
                            state.figures[index].configurationFailures += 1
                        } else {
                            state.figures[index].breaker.failure(now: clock.now())
                        }
                    }
                    record(index, round: round, .failed(verdict), latency: latency, at: now)
                case .success(let answer):
                    state.withLock { state in
                        state.figures[index].breaker.success()
                        state.figures[index].unansweredTime = .zero
                    }
                    let reasons: [String]
                    switch await judge(answer) {
                    case .accept:
                        record(index, round: round, .accepted, latency: latency, at: now)
                        return done(.accepted(answer))
                    case .stale(let why):
                        // Never corrected, never asked of the next back end: the state is gone.
                        record(index, round: round, .rejected(why.isEmpty ? ["stale"] : why), latency: latency, at: now)
                        return done(.stale)
                    case .reject(let why):
                        reasons = why
                    }
                    // Fail closed: a rejection without a reason is still a rejection.
                    let said = reasons.isEmpty ? ["rejected without a reason"] : reasons
                    record(index, round: round, .rejected(said), latency: latency, at: now)
                    if round < settings.maximumRetriesAfterRejection {
                        question.feedback.append(PlanFeedback(rejectedAnswer: answer.json, reasons: said))
                        round += 1
                        continue
                    }
                }
                break
            }
        }
        return done(Task.isCancelled ? .cancelled : .exhausted)
    }

    /// Each back end's breaker and figures now.
    public func health() -> [BackendHealth] {
        state.withLock { state in
            zip(routes, state.figures).map { route, f in
                let sorted = f.latencies.sorted()
                return BackendHealth(
                    name: route.backend.name, breaker: f.breaker.state, consecutiveFailures: f.breaker.consecutiveFailures,
                    breakerOpened: f.breaker.opened, requests: f.requests, answers: f.answers, accepted: f.accepted,
                    rejected: f.rejected, failures: f.failures, failuresByKind: f.failuresByKind, unanswered: f.unanswered,
                    configurationFailures: f.configurationFailures, cancelled: f.cancelled, unansweredTime: f.unansweredTime,
                    skipped: f.skipped, skippedByReason: f.skippedByReason, pendingTeardowns: route.backend.pendingTeardowns,
                    teardownsOverdue: f.teardownsOverdue, lastLatency: f.lastLatency, latencyP50: Self.percentile(sorted, 0.50), latencyP95: Self.percentile(sorted, 0.95),
                    lastError: f.lastError)
            }
        }
    }

    /// Waits until the teardowns every back end had queued at the call have run, each at most
    /// `bound` (they wait side by side). The caller holds its request slot meanwhile: a request
    /// that ends early returns at once, but its connection may still be read (a flood) until its
    /// teardown ran, and a new request started then would run beside it. A back end whose
    /// teardowns overran the bound is counted (`teardownsOverdue`) and skipped while any teardown
    /// of it is pending (`teardownsPending`). Returns the names of those that overran.
    @discardableResult
    public func teardownsFinished(within bound: Duration) async -> [String] {
        let overran = await withTaskGroup(of: Int?.self) { group in
            for (index, route) in routes.enumerated() {
                let backend = route.backend
                group.addTask { await backend.teardownsFinished(within: bound) ? nil : index }
            }
            var late: [Int] = []
            for await index in group { if let index { late.append(index) } }
            return late.sorted()
        }
        guard !overran.isEmpty else { return [] }
        state.withLock { state in
            for index in overran {
                state.figures[index].teardownsOverdue += 1
                state.figures[index].teardownOverdue = true
            }
        }
        return overran.map { routes[$0].backend.name }
    }

    /// The latest attempts of every routing, oldest first (at most `attemptLogCapacity`).
    public func recentAttempts() -> [PlanAttempt] {
        state.withLock { $0.attempts }
    }

    private func note(_ attempt: PlanAttempt, route index: Int) {
        let window = settings.latencyWindow, capacity = settings.attemptLogCapacity
        state.withLock { state in
            state.attempts.append(attempt)
            if state.attempts.count > capacity { state.attempts.removeFirst(state.attempts.count - capacity) }
            var f = state.figures[index]
            defer { state.figures[index] = f }
            switch attempt.outcome {
            case .skipped(let why):
                f.skipped += 1
                f.skippedByReason[why.kind, default: 0] += 1
                return
            case .accepted:
                f.answers += 1
                f.accepted += 1
            case .rejected:
                f.answers += 1
                f.rejected += 1
            case .failed(let error):
                f.failures += 1
                f.failuresByKind[error.kind, default: 0] += 1
                f.lastError = Self.isConfigurationFailure(error)
                    ? error.description + " (a configuration failure: its breaker opened at once)" : error.description
            case .cancelled:
                // Asked, but the caller cut it short: no latency to learn from.
                f.requests += 1
                f.cancelled += 1
                return
            }
            f.requests += 1
            f.lastLatency = attempt.latency
            f.latencies.append(attempt.latency)
            if f.latencies.count > window { f.latencies.removeFirst(f.latencies.count - window) }
        }
    }

    /// Teardowns a back end may have waiting and still be asked.
    static let maximumPendingTeardowns = 1

    /// A failure no retry mends: the breaker opens at once.
    static func isConfigurationFailure(_ error: PlanBackendError) -> Bool {
        switch error {
        case .redirectRefused, .configuration: true
        default: false
        }
    }

    /// A back end's own cancellation, as the failure it is: a timeout once its deadline passed.
    static func ownCancellation(after latency: Duration, deadline: Duration) -> PlanBackendError {
        latency >= deadline ? .timeout(after: deadline)
            : .other("the back end cancelled the request itself after \(latency.inMilliseconds) ms (deadline \(deadline.inMilliseconds) ms)")
    }

    private static func percentile(_ sorted: [Duration], _ p: Double) -> Duration? {
        guard !sorted.isEmpty else { return nil }
        let rank = Int((p * Double(sorted.count)).rounded(.up)) - 1
        return sorted[min(max(rank, 0), sorted.count - 1)]
    }
}
