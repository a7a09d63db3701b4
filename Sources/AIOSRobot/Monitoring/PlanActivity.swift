import Foundation

/// What `robotd monitor` keeps of a robot's `plan` messages (not retained: only those sent while
/// it watches): the latest goals' words, how planning of the newest went, the last goal refused,
/// and the back ends' breakers. Where the plan stands is `state.plan` (retained); this adds who
/// asked for what and what the planner made of it. Every text is from outside (a user, a model)
/// and is kept clipped; the screen prints it escaped.
public struct PlanActivity: Sendable, Equatable, Encodable {
    public struct Goal: Sendable, Equatable, Encodable {
        public var id: UInt64
        public var text: String
        /// The user over MQTT, else the source (`config`, `command`).
        public var from: String
        /// `planning`, `planned by <backend>`, `no plan: <reason>`, `planning again`, a rejected
        /// answer (`<backend>'s plan rejected`), or the executor's last event.
        public var phase: String
    }

    public struct Breaker: Sendable, Equatable, Encodable {
        public var name: String
        public var breaker: String
    }

    /// The newest goals taken (the last one the robot's), oldest first.
    public var goals: [Goal] = []
    /// The last goal refused or ignored, in words.
    public var lastRefused: String?
    /// Each back end and its breaker (`closed`, `open`, `half_open`), in the router's order.
    public var breakers: [Breaker] = []
    public var goalsRefused: Int?
    public var goalsDropped: UInt64?
    /// `plan` messages this view missed, from jumps in their `seq`.
    public var gaps: UInt64 = 0
    var lastSeq: UInt64?

    enum CodingKeys: String, CodingKey { case goals, lastRefused, breakers, goalsRefused, goalsDropped, gaps }

    static let keptGoals = 3
    static let textBytes = 80

    public init() {}

    /// Folds one message in.
    mutating func receive(_ m: PlanTopicPayload) {
        // A seq that went back is a restart (each run counts from 1), not a gap.
        if let last = lastSeq, m.seq > last + 1 { gaps += m.seq - last - 1 }
        lastSeq = m.seq
        switch m.kind {
        case .goal:
            let from = Self.clip(m.user ?? m.source ?? "?", 32)
            let text = Self.clip(m.text ?? "", Self.textBytes)
            guard m.outcome == "accepted", let id = m.goalId else {
                lastRefused = "goal \"\(text)\" from \(from) \(m.outcome ?? "refused"): \(Self.clip(m.reason ?? "", 60))"
                return
            }
            goals.append(Goal(id: id, text: text, from: from, phase: "planning"))
            if goals.count > Self.keptGoals { goals.removeFirst(goals.count - Self.keptGoals) }
        case .verdict:
            if m.accepted != true { update(m.goalId, "\(Self.clip(m.backend ?? "?", 32))'s plan rejected") }
        case .plan:
            update(m.goalId, "planned by \(Self.clip(m.backend ?? "?", 32)), \(m.steps?.count ?? 0) step(s)")
        case .planningFailed:
            update(m.goalId, "no plan: \(Self.clip(m.reason ?? "", 60))")
        case .replan:
            update(m.goalId, "planning again")
        case .progress:
            let at = m.step.map { " at step \($0 + 1)/\(m.stepCount ?? 0)" } ?? ""
            let why = m.reason.map { ": \(Self.clip($0, 40))" } ?? ""
            switch m.event {
            case "started": update(m.goalId, "executing \(m.stepCount ?? 0) step(s)")
            case "step_started": update(m.goalId, "step \((m.step ?? 0) + 1)/\(m.stepCount ?? 0) \(Self.clip(m.ability ?? "", 32))")
            case "completed": update(m.goalId, "completed")
            case "step_completed": break
            default: update(m.goalId, "\(m.event ?? "?")\(at)\(why)")
            }
        case .health:
            breakers = (m.backends ?? []).map { Breaker(name: Self.clip($0.name, 32), breaker: Self.clip($0.breaker, 12)) }
            goalsRefused = m.goalsRefused
            goalsDropped = m.goalsDropped
        }
    }

    private mutating func update(_ id: UInt64?, _ phase: String) {
        guard let id, let i = goals.lastIndex(where: { $0.id == id }) else { return }
        goals[i].phase = phase
    }

    /// At most `bytes` UTF-8 bytes, cut on a character boundary, marked when cut.
    static func clip(_ text: String, _ bytes: Int) -> String {
        guard text.utf8.count > bytes else { return text }
        var out = ""
        for c in text {
            if out.utf8.count + String(c).utf8.count > bytes - 3 { break }
            out.append(c)
        }
        return out + "…"
    }
}
