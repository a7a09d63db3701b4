import AIOSRobot
import Foundation
import Planner
import Telemetry

/// What the robot answered to one tool call, as the tool's result carries it (JSON, sorted keys).
/// Every text in it is the robot's, passed on as data.
public struct CallAnswer: Codable, Sendable, Equatable {
    /// `accepted` (planned, validated, handed to the executor; a stop goal — the `stop`, `halt`
    /// or `abort` ability without arguments —: held at once, no plan), `rejected` (the validator's
    /// reasons), `refused` or `ignored` (the goal itself: not authorised, rate limited, latched…),
    /// `not_sent` (nothing published: why in `reason`), `no_answer` (nothing within the time).
    public var outcome: String
    public var robot: String
    public var ability: String?
    public var requestId: String?
    public var goalId: UInt64?
    /// Why it was refused, ignored, not sent or not answered, or why no plan came.
    public var reason: String?
    /// The validator's issues with the call (`code`, `path`, `message`).
    public var issues: [PlanTopicPayload.Issue]?
    /// The accepted plan's steps.
    public var plan: [PlanTopicPayload.Step]?
    /// What the executor said so far: `started`, `refused`, `completed`, … (with `reason`).
    public var execution: String?
    public var executionReason: String?

    enum CodingKeys: String, CodingKey {
        case outcome, robot, ability, reason, issues, plan, execution
        case requestId = "request_id"
        case goalId = "goal_id"
        case executionReason = "execution_reason"
    }

    public var isError: Bool { outcome != "accepted" }

    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

/// What the remote stop did.
public struct StopAnswer: Codable, Sendable, Equatable {
    /// `latched` (the robot's `state` shows the remote stop's latch), `not_sent`, `no_answer`.
    public var outcome: String
    public var robot: String
    public var topic: String
    public var reason: String?
    public var latchCause: String?
    public var latchSequence: UInt64?
    public var mode: String?

    enum CodingKeys: String, CodingKey {
        case outcome, robot, topic, reason, mode
        case latchCause = "latch_cause"
        case latchSequence = "latch_sequence"
    }

    public var isError: Bool { outcome != "latched" }

    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

extension RobotLink {
    /// How long, after the plan was accepted, the executor's first word is waited for.
    static let executionWait: Duration = .seconds(2)

    /// Publishes the call as a goal and follows the robot's `plan` topic until it answers: the goal
    /// refused or ignored, the plan rejected (the validator's reasons) or accepted (and what the
    /// executor said of it within a moment), or nothing within `timeout`.
    public func call(ability: String, arguments: [String: Planner.JSONValue], timeout: Duration) async -> CallAnswer {
        var answer = CallAnswer(outcome: "not_sent", robot: settings.robotID, ability: ability)
        if let refusal = goalRefusal() {
            answer.reason = refusal
            return answer
        }
        let sent: (id: String, after: UInt64, stateAfter: UInt64, bytes: Int)
        do {
            sent = try sendCall(ability: ability, arguments: arguments)
        } catch {
            answer.reason = "\(error)"
            return answer
        }
        answer.requestId = sent.id
        // What the robot's planner service takes for a stop goal (the call's text one stop word:
        // `stop`, `halt`, `abort` without arguments), held at once without a plan.
        let heldAtOnce = StopGoal.isStop(ability: ability, arguments: arguments)
        let clock = ContinuousClock()
        let end = clock.now + timeout
        var cursor = sent.after
        var acceptedAt: ContinuousClock.Instant?
        // The run that took the goal (its acknowledgement's `boot_id`, `pid` and `run_id`; nil
        // only before the acknowledgement: one naming no run ends the call). Goal numbers restart with every run: a robotd
        // restarted within `timeout` numbers its goals from 1 again, and only the run that took
        // this call speaks of it.
        var run: RunIdentity?
        // A `state` of another run came after the call (why a stop goal may get no answer).
        var otherRun: RunIdentity?
        while clock.now < end {
            for message in planMessages(after: cursor) {
                cursor = message.index
                let p = message.payload
                if answer.goalId == nil {
                    guard p.kind == .goal, p.requestId == sent.id, p.user == settings.user else { continue }
                    guard p.outcome == "accepted", let goal = p.goalId else {
                        answer.outcome = p.outcome ?? "refused"
                        answer.reason = p.reason
                        return answer
                    }
                    answer.goalId = goal
                    // An acknowledgement naming no run (a robotd from before runs were named):
                    // nothing later can be told from another run's message of the same number, so
                    // nothing answers for it — fail closed, whatever comes.
                    guard let taken = p.run, !taken.runId.isEmpty else {
                        answer.outcome = "no_answer"
                        answer.reason = "robot \(settings.robotID) took the call as goal \(goal) but named no run (boot_id, pid, run_id: a robotd older than this robotd mcp): its plan and its hold cannot be told from another run's of the same number"
                            + (heldAtOnce ? "; treat the robot as not held, and update robotd"
                                          : "; the goal was taken and may run (do not send it again to find out), and update robotd")
                        return answer
                    }
                    run = taken
                    continue
                }
                // Another run's message (or one naming no run after an acknowledgement that named
                // one) is not about this goal, whatever its number.
                guard p.goalId == answer.goalId, p.run == run else { continue }
                switch p.kind {
                case .verdict where p.accepted == false:
                    answer.issues = p.issues
                case .plan:
                    answer.outcome = "accepted"
                    answer.plan = p.steps
                    answer.issues = nil
                    acceptedAt = clock.now
                case .planningFailed:
                    answer.outcome = "rejected"
                    answer.reason = p.reason
                    return answer
                case .progress:
                    answer.execution = p.event
                    answer.executionReason = p.reason
                    // The executor's first word on the plan (started, or refused: latched, stale goal).
                    if acceptedAt != nil { return answer }
                    // No plan comes for a stop goal (a stop word's ability without
                    // arguments): the robot holds at once and the executor records it as a plan that
                    // started and completed. Its end is the answer.
                    if heldAtOnce, let event = p.event, Self.holdEnds.contains(event) {
                        return Self.held(answer, event: event)
                    }
                default:
                    break
                }
            }
            // The same on `state` (its `plan`: the executor's last plan is this goal's and ended):
            // a `plan` event lost on the way does not make the hold `no_answer`. Only a `state`
            // the robot published after the call, by the run that took the goal, counts: goal
            // numbers restart with every run. An acknowledgement naming no run leaves the answer
            // to the `plan` events (fail closed: no run to hold the `state` to).
            if heldAtOnce, let goal = answer.goalId, let run, let state = state(publishedAfter: sent.stateAfter) {
                let by = RunIdentity(state)
                if by != run {
                    otherRun = by
                } else if let plan = state.plan, plan.planGoalId == goal, Self.holdEnds.contains(plan.state) {
                    return Self.held(answer, event: plan.state)
                }
            }
            if let at = acceptedAt, clock.now - at > Self.executionWait { return answer }
            try? await Task.sleep(for: .milliseconds(20))
        }
        if acceptedAt == nil {
            answer.outcome = "no_answer"
            answer.reason = answer.goalId == nil
                ? "robot \(settings.robotID) did not acknowledge the goal within \(timeout) (does its configuration have planner.goals.mqtt with user \(settings.user) in planner.goals.users, and does the broker let this login write \(GoalTopic.topic(prefix: settings.prefix, user: settings.user))?)"
                : "no plan or verdict for goal \(answer.goalId ?? 0) within \(timeout)"
            if heldAtOnce, answer.goalId != nil {
                if let otherRun, let run {
                    answer.reason = "robot \(settings.robotID) took the stop as goal \(answer.goalId ?? 0) in its run \(run), but its `state` is now another run's (\(otherRun)): it restarted, and the hold was not reported within \(timeout); treat the robot as not held"
                } else {
                    answer.reason = "no word of goal \(answer.goalId ?? 0)'s hold within \(timeout); treat the robot as not held"
                }
            }
        }
        return answer
    }

    /// How the executor ends a stop goal: at once `completed` (a later goal or a stop
    /// may make it `cancelled`); either way the robot held.
    static let holdEnds: Set<String> = ["completed", "cancelled"]

    static func held(_ answer: CallAnswer, event: String) -> CallAnswer {
        var answer = answer
        answer.outcome = "accepted"
        answer.execution = event
        answer.reason = "held at once: a stop goal is not planned"
        return answer
    }

    /// Why a goal cannot be given now, from what the robot publishes; nil: it can.
    func goalRefusal() -> String? {
        let id = settings.robotID
        switch status {
        case nil: return "no `status` from robot \(id) under \(settings.prefix) (is robotd running with this id, prefix and broker?): nothing was sent"
        case "online": break
        default: return "robot \(id) is offline (its `status`): nothing was sent"
        }
        switch vocabulary {
        case .none: return "robot \(id) publishes no abilities (its configuration has none): nothing was sent"
        case .unreadable(let why): return "robot \(id)'s abilities could not be read (\(why)): nothing was sent"
        case .stale: return "robot \(id)'s published abilities are from another configuration than the one it runs: nothing was sent"
        case .live(let v):
            if !v.goals.mqtt { return "robot \(id) takes no goals over MQTT (planner.goals.mqtt is off): nothing was sent" }
        }
        return nil
    }

    /// Publishes the remote stop and waits until the robot's `state` shows it latched by it.
    public func remoteStop(timeout: Duration) async -> StopAnswer {
        let topic = settings.prefix + "estop"
        var answer = StopAnswer(outcome: "not_sent", robot: settings.robotID, topic: topic)
        let before = state
        do {
            try sendStop()
        } catch {
            answer.reason = "\(error)"
            return answer
        }
        let clock = ContinuousClock()
        let end = clock.now + timeout
        while clock.now < end {
            // A new latch by the remote stop: a latch number other than the one before (every stop
            // event advances it, even while latched already).
            if let s = state, s.estop.latched, s.estop.latchCause == "remote-stop",
               before.map({ $0.estop.latchSequence != s.estop.latchSequence || !$0.estop.latched }) ?? true {
                answer.outcome = "latched"
                answer.latchCause = s.estop.latchCause
                answer.latchSequence = s.estop.latchSequence
                answer.mode = s.mode
                return answer
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        answer.outcome = "no_answer"
        answer.mode = state?.mode
        answer.reason = "the stop was published, but robot \(settings.robotID)'s `state` did not show a remote-stop latch within \(timeout) (its configuration needs estop.remote with the default stop topic, and the broker this login's write right on \(topic)); treat the robot as not stopped"
        return answer
    }
}
