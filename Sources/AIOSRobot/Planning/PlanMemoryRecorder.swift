import EpisodicMemory
import Foundation
import Planner
import RobotConfig
import RTScheduler
import SafetyGuard
import Synchronization

/// One append to the episodic memory, as `PlanMemoryEntries` derives it.
public enum PlanMemoryItem: Sendable, Equatable {
    case goal(GoalRecord)
    case plan(PlanRecord)
    case outcome(OutcomeRecord)
    case intervention(InterventionRecord)
}

/// What the episodic memory keeps of the `plan` journal and the guard's audit (docs/planner.md,
/// "Memory"): a goal taken, each back end's answer with its verdict (an accepted one with the steps
/// of the plan it became), how the goal ended, and the safety interventions that matter to a
/// planner (latches, resets and refused resets, faults, interlocks). Clamps, rejected commands,
/// holds and watchdogs are left out: they come by the hundred in normal driving and the summary
/// has room for four interventions.
/// Pure bookkeeping: no I/O, so it is tested on its own.
public struct PlanMemoryEntries: Sendable {
    /// Accepted answers waiting for their plan's steps, by goal (the verdict comes first).
    private var accepted: [UInt64: PlanTopicPayload] = [:]
    /// Goals that ended: a later `progress` for them (a cancel after completion) is not a second outcome.
    private var ended: Set<UInt64> = []
    /// The goal taken last: the interventions are recorded against it while it has not ended.
    public private(set) var activeGoal: UInt64?
    static let kept = 64

    public init() {}

    public mutating func items(for entry: PlanTopicPayload) -> [PlanMemoryItem] {
        let time = Date(timeIntervalSince1970: entry.tUnixS)
        guard let goal = entry.goalId else { return [] }
        switch entry.kind {
        case .goal:
            guard entry.outcome == "accepted" else { return [] }
            // A new goal cancels the old one's answers in flight: an accepted answer that never became a plan.
            var out = flushAccepted(except: goal)
            activeGoal = goal
            out.append(.goal(GoalRecord(goalID: goal, text: entry.text ?? "", user: entry.user, source: entry.source ?? "unknown",
                                        time: time)))
            return out
        case .verdict:
            if entry.accepted == true {
                accepted[goal] = entry
                return []
            }
            let reasons = (entry.issues ?? []).map { $0.path.isEmpty ? $0.message : "\($0.path): \($0.message)" }
            return [.plan(PlanRecord(goalID: goal, backend: entry.backend ?? "unknown", latency: Self.latency(entry),
                                     verdict: .rejected, reasons: reasons, codes: (entry.issues ?? []).map(\.code), time: time))]
        case .plan:
            let verdict = accepted.removeValue(forKey: goal)
            let steps = (try? JSONEncoder.sorted.encode(entry.steps ?? [])).map { String(decoding: $0, as: UTF8.self) }
            return [.plan(PlanRecord(goalID: goal, backend: entry.backend ?? verdict?.backend ?? "unknown",
                                     latency: Self.latency(verdict ?? entry), verdict: .accepted, steps: steps, time: time))]
        case .planningFailed:
            // The cause starts with its code (`MemorySummary.causeCode`): a request a stop
            // cancelled is a goal cancelled by that stop, anything else a goal without a plan.
            if entry.reason == PlannerService.latchCancelReason {
                return flushAccepted(goal: goal) + end(goal, .cancelled, cause: "latched: " + (entry.reason ?? ""), time: time)
            }
            return flushAccepted(goal: goal) + end(goal, .failed, cause: "no_plan: " + (entry.reason ?? "no plan"), time: time)
        case .progress:
            switch entry.event {
            case "completed": return end(goal, .completed, cause: nil, time: time)
            case "failed": return end(goal, .failed, cause: Self.cause(entry), time: time)
            // Refused by the executor: the goal was no longer the robot's, or a stop was latched.
            case "cancelled", "refused": return flushAccepted(goal: goal) + end(goal, .cancelled, cause: Self.cause(entry), time: time)
            default: return []
            }
        case .replan, .health:
            return []
        }
    }

    /// The interventions among the guard's audit records, against the goal being worked on.
    public func items(for records: [AuditRecord], at time: Date) -> [PlanMemoryItem] {
        let goal = activeGoal.flatMap { ended.contains($0) ? nil : $0 }
        return records.compactMap { record -> PlanMemoryItem? in
            guard let detail = Self.detail(record) else { return nil }
            return .intervention(InterventionRecord(kind: record.kind.rawValue, detail: detail, goalID: goal, time: time))
        }
    }

    static func detail(_ record: AuditRecord) -> String? {
        let causes = record.causes.isEmpty ? "" : "causes \(record.causes)"
        switch record.kind {
        case .latched:
            return [causes, record.category.map { "\($0)" } ?? ""].filter { !$0.isEmpty }.joined(separator: ", ")
        case .resetRefused:
            return causes.isEmpty ? "refused" : "still present: \(record.causes)"
        case .reset, .resetIntoRecovery:
            return "released"
        case .fault:
            return record.fault.map { "\($0)" } ?? "fault"
        case .interlocked:
            return causes.isEmpty ? "interlocked" : causes
        // Holds and watchdogs come and go in normal driving (a policy that stops commanding, a
        // sensor starting): they would crowd the summary's four places out of the latches.
        case .hold, .holdReleased, .watchdog, .deenergized,
             .clamped, .rejected, .refusedWhileStopped, .warn, .recoveryEnded, .causeCleared, .sampleRejected, .recoveryCommand:
            return nil
        }
    }

    private mutating func end(_ goal: UInt64, _ status: OutcomeRecord.Status, cause: String?, time: Date) -> [PlanMemoryItem] {
        guard ended.insert(goal).inserted else { return [] }
        if ended.count > Self.kept, let oldest = ended.min() { ended.remove(oldest) }
        return [.outcome(OutcomeRecord(goalID: goal, status: status, cause: cause, time: time))]
    }

    private mutating func flushAccepted(goal: UInt64) -> [PlanMemoryItem] {
        guard let verdict = accepted.removeValue(forKey: goal) else { return [] }
        return [Self.acceptedWithoutPlan(goal, verdict)]
    }

    private mutating func flushAccepted(except goal: UInt64) -> [PlanMemoryItem] {
        let waiting = accepted.filter { $0.key != goal }.sorted { $0.key < $1.key }
        for (id, _) in waiting { accepted.removeValue(forKey: id) }
        return waiting.map { Self.acceptedWithoutPlan($0.key, $0.value) }
    }

    private static func acceptedWithoutPlan(_ goal: UInt64, _ verdict: PlanTopicPayload) -> PlanMemoryItem {
        .plan(PlanRecord(goalID: goal, backend: verdict.backend ?? "unknown", latency: latency(verdict), verdict: .accepted,
                         time: Date(timeIntervalSince1970: verdict.tUnixS)))
    }

    private static func latency(_ entry: PlanTopicPayload) -> Duration { .microseconds(max(0, entry.latencyUs ?? 0)) }

    /// The executor's reason word first (`latched at step 1 patrol`): the summary's code.
    private static func cause(_ entry: PlanTopicPayload) -> String? {
        let step = entry.step.map { "step \($0 + 1)" + (entry.ability.map { " \($0)" } ?? "") }
        let parts = [entry.reason, step].compactMap { $0 }
        return parts.isEmpty ? nil : parts.joined(separator: " at ")
    }
}

extension PlanMemoryEntries {
    /// The words the prompt's memory summary may use for `configuration` (`MemorySummary.Vocabulary`):
    /// its abilities and back ends, and robotd's own codes.
    public static func vocabulary(_ configuration: RobotConfiguration) -> MemorySummary.Vocabulary {
        MemorySummary.Vocabulary(
            abilities: Set(configuration.abilities.map(\.name)),
            backends: Set(configuration.planner.backends.map(\.name) + [PlannerBackendSettings.builtinName, AbilityCall.backendName]),
            sources: Set([GoalSource.mqtt(user: "", id: nil, retained: false), .configuration, .command].map(\.word)),
            issueCodes: Set(PlanIssue.Code.allCases.map(\.rawValue)),
            causes: Set(PlanEndReason.allCases.filter { $0 != .none }.map(\.word) + ["no_plan"]),
            interventionKinds: Set([AuditRecord.Kind.latched, .reset, .resetIntoRecovery, .resetRefused, .fault, .interlocked].map(\.rawValue)),
            stopCauses: Set(FaultKind.allCases.map(\.description)))
    }
}

private extension JSONEncoder {
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }
}

/// Appends what the planner and the guard do to the episodic memory, from an ordinary task on
/// the async lane that reads the `plan` journal and the guard's audit every `period` — never from
/// the dispatch thread, which only writes the audit ring as it always does. The memory's own
/// queue does the disk writes; a file that cannot be kept costs the robot nothing but its memory.
public final class PlanMemoryRecorder: Sendable {
    public let memory: EpisodicMemory
    private let audit: AuditLog
    private let vocabulary: MemorySummary.Vocabulary
    private struct State {
        var entries = PlanMemoryEntries()
        var journal: PlanJournal?
        var journalSeq: UInt64 = 0
        var auditCursor: AuditLog.Cursor
        /// `plan` messages the journal had already overwritten when they were read.
        var journalGaps: UInt64 = 0
    }
    private let state: Mutex<State>
    private let task = Mutex<Task<Void, Never>?>(nil)
    /// The latest summary for the prompt, built here so that a request never waits for the disk.
    private let latestSummary = Mutex(MemorySummary.empty)
    static let period = Duration.milliseconds(200)
    /// The summary is rebuilt after every append and at least this often (its ages move on).
    static let summaryRefresh = Duration.seconds(5)

    /// The planner service is created with `summary` and gives its journal to `start(journal:)`.
    /// `vocabulary`: the words the summary may use (`PlanMemoryEntries.vocabulary(configuration)`).
    public init(memory: EpisodicMemory, audit: AuditLog, vocabulary: MemorySummary.Vocabulary) {
        self.memory = memory
        self.audit = audit
        self.vocabulary = vocabulary
        state = Mutex(State(auditCursor: audit.newestCursor))
    }

    /// `plan` messages lost before they were read (the journal keeps `PlanJournal.capacity`).
    public var journalGaps: UInt64 { state.withLock { $0.journalGaps } }

    /// The summary of the memory for the next request's prompt (`MemorySummary.empty` until the
    /// first is built, and for a memory that is unavailable).
    public var summary: MemorySummary { latestSummary.withLock { $0 } }

    /// Builds the first summary (what earlier runs left), then reads every `period`: the journal's
    /// messages and the audit's records from now on (earlier ones are not this recorder's).
    public func start(journal: PlanJournal) {
        state.withLock { s in
            s.journal = journal
            s.journalSeq = journal.lastSequence
            s.auditCursor = audit.newestCursor
        }
        let loop = Task.detached(priority: .utility) { [weak self] in
            var builtAt: ContinuousClock.Instant?
            while !Task.isCancelled {
                guard let self else { return }
                let recorded = self.drain()
                if recorded > 0 || builtAt.map({ ContinuousClock.now - $0 >= Self.summaryRefresh }) ?? true {
                    await self.refreshSummary()
                    builtAt = .now
                }
                try? await Task.sleep(for: Self.period)
            }
        }
        task.withLock { $0 = loop }
    }

    /// Rebuilds the summary after every record queued so far.
    public func refreshSummary() async {
        let built = await memory.summary(vocabulary: vocabulary)
        latestSummary.withLock { $0 = built }
    }

    /// Reads what is new and queues its appends (returns without waiting for the disk): how many.
    @discardableResult
    public func drain() -> Int {
        let items: [PlanMemoryItem] = state.withLock { s in
            let messages = s.journal?.messages(after: s.journalSeq) ?? []
            if let first = messages.first, first.seq > s.journalSeq + 1 { s.journalGaps += first.seq - s.journalSeq - 1 }
            s.journalSeq = messages.last?.seq ?? s.journalSeq
            var out: [PlanMemoryItem] = []
            for message in messages { out += s.entries.items(for: message) }
            out += s.entries.items(for: audit.read(from: &s.auditCursor), at: Date())
            return out
        }
        for item in items {
            switch item {
            case .goal(let r): memory.record(r)
            case .plan(let r): memory.record(r)
            case .outcome(let r): memory.record(r)
            case .intervention(let r): memory.record(r)
            }
        }
        return items.count
    }

    /// Stops reading and queues what came last (returns without waiting for the disk).
    public func stopRecording() {
        let loop = task.withLock { t in defer { t = nil }; return t }
        loop?.cancel()
        drain()
    }

    /// Stops reading, queues what came last, and closes the file, waiting at most `limit` for the
    /// appends queued (`EpisodicMemory.close(within:)`): the daemon's stop.
    @discardableResult
    public func close(within limit: Duration) -> EpisodicMemory.CloseReport {
        stopRecording()
        return memory.close(within: limit)
    }

    /// Stops reading, records what came last, writes everything queued however long it takes and
    /// closes the file (tests, tools).
    public func stop() {
        stopRecording()
        memory.close()
    }
}
