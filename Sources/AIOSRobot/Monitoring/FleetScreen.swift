import Foundation
import Telemetry

/// `robotd monitor`'s screen: the fleet view as plain text lines (no escape codes: the terminal
/// handling is the command's), one block per robot — header, e-stop, tasks, queues, inputs, the
/// latest safety events. Pure: the same view and size give the same text.
public enum FleetScreen {
    /// The screen, each line at most `width` characters; with a `height`, at most that many lines
    /// (the last one then says how many did not fit).
    public static func render(_ view: FleetView, width: Int, height: Int? = nil) -> String {
        var lines = [headline(view)]
        let robots = view.sortedRobots
        if robots.isEmpty {
            lines.append("")
            let selection = view.settings.robotID.map { "robot \($0)" } ?? "any robot"
            lines.append("waiting for \(selection) under \(view.settings.prefix)\(view.settings.robotID ?? "+")/ …")
        }
        for robot in robots {
            lines.append("")
            lines += block(robot, in: view)
        }
        let fitted = lines.map { clip($0, width) }
        if let height, height > 0, fitted.count > height {
            let kept = fitted.prefix(max(0, height - 1))
            return (kept + [clip("… \(fitted.count - kept.count) more lines: a taller terminal, or --robot-id ID", width)]).joined(separator: "\n")
        }
        return fitted.joined(separator: "\n")
    }

    static func headline(_ view: FleetView) -> String {
        let link: String
        switch view.link {
        case .connecting: link = "connecting"
        case .connected: link = "connected"
        case .down(let why): link = "NOT CONNECTED: \(why) (retrying)"
        }
        let count = view.robots.count
        var text = "robotd monitor  \(view.broker.isEmpty ? "" : view.broker + " ")\(link)  \(view.settings.prefix)\(view.settings.robotID ?? "+")/"
        text += "  \(count) robot\(count == 1 ? "" : "s")"
        if view.badPayloads > 0 { text += "  bad payloads \(view.badPayloads)" }
        return text
    }

    static func block(_ robot: FleetView.Robot, in view: FleetView) -> [String] {
        let stale = view.isStale(robot)
        var lines = [header(robot, stale: stale, in: view), "  " + estop(robot)]
        lines += plan(robot)
        lines += tasks(robot, stale: stale, in: view)
        lines += queues(robot)
        lines += inputs(robot)
        lines += safety(robot, keep: view.settings.recentEvents)
        return lines
    }

    /// id, online/offline, stale, mode, age of the last message, uptime, telemetry drops, bad
    /// payloads: what matters most first, since a narrow terminal cuts the end.
    static func header(_ robot: FleetView.Robot, stale: Bool, in view: FleetView) -> String {
        var parts = [robot.id, robot.status ?? "status unknown"]
        if stale {
            let age = view.deadlinesAge(robot)
            parts.append(robot.liveDeadlinesAt == nil
                         ? "STALE: no deadlines for \(duration(age))"
                         : "STALE: no deadlines for \(duration(age)) (interval \(duration(view.interval(robot))))")
        }
        parts.append(robot.state.map { "mode \($0.mode)" } ?? "mode unknown")
        parts.append("last message \(duration(view.now - robot.lastMessage)) ago")
        if let uptime = robot.deadlines?.uptimeS ?? robot.state?.uptimeS { parts.append("uptime \(duration(uptime))") }
        if let telemetry = robot.deadlines?.telemetry ?? robot.state?.telemetry {
            parts.append("telemetry drops \(telemetry.dropped)")
        }
        if robot.deadlinesGaps > 0 { parts.append("deadlines missed by the monitor \(robot.deadlinesGaps)") }
        if robot.badPayloads > 0 {
            let last = robot.lastBadPayload.map { " (last: \($0.topic): \($0.reason))" } ?? ""
            parts.append("bad payloads \(robot.badPayloads)\(last)")
        }
        return parts.joined(separator: "  ")
    }

    /// The e-stop: latched or not, what latched it, the stop causes present now — in words.
    static func estop(_ robot: FleetView.Robot) -> String {
        guard let e = robot.state?.estop else { return "e-stop: unknown (no state yet)" }
        let causes = e.activeCauses.map(StopCauseWords.words)
        var text: String
        if e.latched {
            text = "e-stop: LATCHED by \(e.latchCause.map(StopCauseWords.words) ?? "an unknown cause")"
            text += causes.isEmpty ? "; no stop cause present now (a reset can release it)"
                : "; stop causes present now: \(causes.joined(separator: ", ")) (each refuses a reset)"
        } else {
            text = "e-stop: not latched"
            text += causes.isEmpty ? "; no stop cause present" : "; stop causes present: \(causes.joined(separator: ", "))"
        }
        text += "; resets \(e.resets), refused \(e.refusedResets)"
        if !e.linksUp { text += "; a link is down" }
        return text
    }

    /// Where the plan stands (`state.plan`, retained), the back ends' breakers, and — from the `plan`
    /// messages seen — the newest goal's words and phase and the last goal refused. Nothing for a
    /// robot without abilities. What users and models wrote is printed escaped.
    static func plan(_ robot: FleetView.Robot) -> [String] {
        let state = robot.state?.plan, activity = robot.plan
        guard state != nil || activity != nil else { return [] }
        var text = "plan: "
        if let p = state {
            let at = p.step.map { " step \($0)/\(p.stepCount ?? 0)" } ?? ""
            let what = p.ability.map { " \($0)" } ?? ""
            switch p.state {
            case "idle": text += p.goalId == 0 ? "no goal yet" : "no plan run yet"
            case "running":
                text += "goal \(p.planGoalId) running\(at)\(what)" + (p.remaining.map { String(format: " (%.2f left)", $0) } ?? "")
            case "completed": text += "goal \(p.planGoalId) completed"
            default: text += "goal \(p.planGoalId) \(p.state)\(at)\(what)" + (p.reason.map { ": \($0)" } ?? "")
            }
            if p.goalId > p.planGoalId { text += "; goal \(p.goalId) newer, not executing (planning or no plan)" }
        } else {
            text += "state unknown (no state yet)"
        }
        if let breakers = activity?.breakers, !breakers.isEmpty {
            text += "; back ends " + breakers.map { "\($0.name) \($0.breaker == "closed" ? "ok" : $0.breaker.uppercased())" }.joined(separator: ", ")
        }
        if let dropped = activity?.goalsDropped, dropped > 0 { text += "; goals dropped \(dropped)" }
        if let gaps = activity?.gaps, gaps > 0 { text += "; plan messages missed \(gaps)" }
        var lines = ["  " + TerminalText.printable(text)]
        if let goal = activity?.goals.last {
            lines.append("    goal \(goal.id) from \(TerminalText.printable(goal.from)): \"\(TerminalText.printable(goal.text))\" — \(TerminalText.printable(goal.phase))")
        }
        if let refused = activity?.lastRefused { lines.append("    last refused: " + TerminalText.printable(refused)) }
        return lines
    }

    /// Name, rate (window releases / window), p99 response (window), misses window/since start, level, why.
    static func tasks(_ robot: FleetView.Robot, stale: Bool, in view: FleetView) -> [String] {
        guard let d = robot.deadlines else { return ["  tasks: no deadlines yet"] }
        let rows = d.tasks.map { t -> [String] in
            let rate = d.windowS > 0 ? Double(t.window.releases) / d.windowS : 0
            let level = stale ? DiagnosticLevel.stale.rawValue : t.level.rawValue
            let why = stale ? "no deadlines for \(duration(view.deadlinesAge(robot)))" : t.message
            return [t.name, String(format: "%.1f", rate), t.window.response.p99Us.map(micros) ?? "-",
                    "\(t.window.misses)/\(t.sinceStart.misses)", level, why]
        }
        var lines = table(["TASK", "RATE Hz", "P99 µs", "MISSES win/all", "LEVEL", "WHY"], rows, right: [1, 2, 3])
        if let miss = robot.missRecent.last {
            lines.append("  last miss: \(miss.task) \(miss.kind), \(micros(miss.latenessUs)) µs late at \(String(format: "%.2f", miss.releaseS)) s"
                         + " (\(robot.missEvents) miss event\(robot.missEvents == 1 ? "" : "s") seen)")
        }
        return lines
    }

    static func queues(_ robot: FleetView.Robot) -> [String] {
        guard let q = robot.queues else { return ["  queues: none reported yet"] }
        if q.queues.isEmpty { return ["  queues: none"] }
        let rows = q.queues.map { [$0.source, "\($0.depth)", "\($0.highWater)", "\($0.capacity)", "\($0.dropped)", "\($0.rejected)", $0.overflow] }
        return table(["QUEUE", "DEPTH", "HIGH", "CAP", "DROPPED", "REJECTED", "OVERFLOW"], rows, right: [1, 2, 3, 4, 5])
    }

    static func inputs(_ robot: FleetView.Robot) -> [String] {
        guard let i = robot.inputs else { return ["  inputs: none reported yet"] }
        if i.inputs.isEmpty { return ["  inputs: none"] }
        let rows = i.inputs.map { input -> [String] in
            [input.name, input.kind, String(format: "%.1f", input.window.rateHz), "\(input.sinceStart.gaps)",
             input.sinceStart.rejected.map { "\($0)" } ?? "-", input.link,
             input.sinceLastUs.map { duration($0 / 1e6) + " ago" } ?? "never"]
        }
        return table(["INPUT", "KIND", "RATE Hz", "GAPS", "REJECTED", "LINK", "LAST"], rows, right: [2, 3, 4])
    }

    /// The latest guard interventions: when (the robot's uptime), what, why.
    static func safety(_ robot: FleetView.Robot, keep: Int) -> [String] {
        guard keep > 0 else { return [] }
        if robot.safetyRecent.isEmpty { return ["  safety events: none since the monitor started"] }
        let rows = robot.safetyRecent.reversed().map { e -> [String] in
            [String(format: "%.2f s", e.record.atS), e.record.kind, cause(e.record)]
        }
        let title = "SAFETY: the latest (\(robot.safetyEvents) event\(robot.safetyEvents == 1 ? "" : "s") since the monitor started; at = uptime)"
        return ["  " + title] + table(["AT", "KIND", "CAUSE"], rows, right: [0])
    }

    /// A guard record's cause in words: the fault, a refusal's causes, a rejection's reason, a summary's count.
    static func cause(_ r: GuardRecord) -> String {
        var parts: [String] = []
        if r.kind == "summary", let of = r.summaryOf {
            let since = r.firstAtS.flatMap { $0 < r.atS ? String(format: " since %.2f s", $0) : nil } ?? ""
            parts.append("\(of) ×\(r.count ?? 0)\(since)")
        }
        if let reason = r.reason { parts.append(reason) }
        if let fault = r.fault { parts.append(StopCauseWords.words(fault)) }
        if !r.causes.isEmpty { parts.append("causes present: " + r.causes.map(StopCauseWords.words).joined(separator: ", ")) }
        if let channel = r.channel { parts.append("on \(channel)") }
        if let sensor = r.sensor { parts.append("sensor \(sensor)") }
        // A remote reset request's, or a rate-limited summary's, user (none: the untracked ones together).
        if let user = r.user { parts.append("user \(user)") }
        return parts.isEmpty ? "-" : parts.joined(separator: "; ")
    }

    /// Columns padded to their widest cell, two spaces apart, indented by two; the last column is free text.
    static func table(_ header: [String], _ rows: [[String]], right: Set<Int>) -> [String] {
        let all = [header] + rows
        let widths = header.indices.map { c in all.map { $0.indices.contains(c) ? $0[c].count : 0 }.max() ?? 0 }
        return all.map { row in
            let cells = row.indices.map { c -> String in
                let cell = row[c], pad = String(repeating: " ", count: max(0, widths[c] - cell.count))
                if c == row.count - 1 && !right.contains(c) { return cell }
                return right.contains(c) ? pad + cell : cell + pad
            }
            return "  " + cells.joined(separator: "  ")
        }
    }

    /// A duration as a person reads it: 0.25 s, 12.3 s, 4 min 05 s, 2 h 03 min, 3 d 04 h.
    static func duration(_ seconds: Double) -> String {
        let s = max(0, seconds)
        if s < 10 { return String(format: "%.2f s", s) }
        if s < 60 { return String(format: "%.1f s", s) }
        let whole = Int(s)
        if whole < 3600 { return String(format: "%d min %02d s", whole / 60, whole % 60) }
        if whole < 86_400 { return String(format: "%d h %02d min", whole / 3600, (whole % 3600) / 60) }
        return String(format: "%d d %02d h", whole / 86_400, (whole % 86_400) / 3600)
    }

    /// µs with one decimal below 10 ms, whole above.
    static func micros(_ us: Double) -> String { abs(us) < 10_000 ? String(format: "%.1f", us) : String(format: "%.0f", us) }

    static func clip(_ line: String, _ width: Int) -> String {
        guard width > 0, line.count > width else { return line }
        return String(line.prefix(max(0, width - 1))) + "…"
    }
}

/// `robotd monitor --once --json`: every robot's latest payloads, as their topics carry them
/// (the schemas in docs/schemas apply to each), with what the monitor concluded.
public struct FleetSnapshot: Encodable, Sendable {
    public struct RobotEntry: Encodable, Sendable {
        public var id: String
        public var status: String?
        public var stale: Bool
        public var lastMessageAgeS: Double
        public var badPayloads: UInt64
        public var lastBadPayload: String?
        public var deadlinesGaps: UInt64
        public var state: StatePayload?
        public var deadlines: DeadlinesPayload?
        public var queues: QueuesPayload?
        public var inputs: InputsPayload?
        public var safetyRecent: [SafetyEvent]
        public var missRecent: [MissEvent]
        /// The `plan` messages seen, folded (null: none seen).
        public var planActivity: PlanActivity?

        enum CodingKeys: String, CodingKey {
            case id, status, stale, lastMessageAgeS, badPayloads, lastBadPayload, deadlinesGaps, state, deadlines, queues, inputs
            case safetyRecent, missRecent, planActivity
        }

        // Nulls written out: a script reads `.deadlines == null` as "not reported", the same for every key.
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(id, forKey: .id)
            try c.encode(status, forKey: .status)
            try c.encode(stale, forKey: .stale)
            try c.encode(lastMessageAgeS, forKey: .lastMessageAgeS)
            try c.encode(badPayloads, forKey: .badPayloads)
            try c.encode(lastBadPayload, forKey: .lastBadPayload)
            try c.encode(deadlinesGaps, forKey: .deadlinesGaps)
            try c.encode(state, forKey: .state)
            try c.encode(deadlines, forKey: .deadlines)
            try c.encode(queues, forKey: .queues)
            try c.encode(inputs, forKey: .inputs)
            try c.encode(safetyRecent, forKey: .safetyRecent)
            try c.encode(missRecent, forKey: .missRecent)
            try c.encode(planActivity, forKey: .planActivity)
        }
    }

    public var robots: [RobotEntry]

    public init(_ view: FleetView) {
        robots = view.sortedRobots.map { r in
            RobotEntry(id: r.id, status: r.status, stale: view.isStale(r), lastMessageAgeS: ((view.now - r.lastMessage) * 1e3).rounded() / 1e3,
                       badPayloads: r.badPayloads, lastBadPayload: r.lastBadPayload.map { "\($0.topic): \($0.reason)" },
                       deadlinesGaps: r.deadlinesGaps, state: r.state, deadlines: r.deadlines, queues: r.queues, inputs: r.inputs,
                       safetyRecent: r.safetyRecent, missRecent: r.missRecent, planActivity: r.plan)
        }
    }

    /// One line of JSON: snake_case keys, sorted, as on the telemetry topics.
    public var json: String { String(decoding: TelemetryJSON.encode(self), as: UTF8.self) }
}
