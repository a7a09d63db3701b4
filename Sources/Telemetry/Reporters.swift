import RTScheduler
import SafetyGuard

/// Instants on the scheduler's clock (CLOCK_MONOTONIC) as seconds since the Unix epoch and since
/// robotd started.
public struct TelemetryClock: Sendable, Equatable {
    /// robotd's start (the scheduler's origin).
    public let origin: Instant
    /// Unix seconds minus monotonic seconds, taken once.
    public let unixOffset: Double

    public init(origin: Instant, monotonicNow: Instant, unixNow: Double) {
        self.origin = origin
        unixOffset = unixNow - Double(monotonicNow.nanoseconds) / 1e9
    }

    public func unix(_ instant: Instant) -> Double { micros(Double(instant.nanoseconds) / 1e9 + unixOffset) }
    public func sinceStart(_ instant: Instant) -> Double { micros(Double(instant.nanoseconds(since: origin)) / 1e9) }

    /// Seconds to the microsecond: a steadier text than every digit of a double.
    private func micros(_ seconds: Double) -> Double { (seconds * 1e6).rounded() / 1e6 }
}

@inline(__always) func microseconds(_ nanoseconds: Int64) -> Double { Double(nanoseconds) / 1000 }
@inline(__always) func microseconds(_ nanoseconds: UInt64) -> Double { Double(nanoseconds) / 1000 }
/// A span in seconds, to the microsecond.
func seconds(_ nanoseconds: Int64) -> Double { (Double(nanoseconds) / 1e3).rounded() / 1e6 }

/// When a task is ok, warn, error or stale (`mqtt.telemetry`; ROS 2 diagnostics' levels).
public struct LevelThresholds: Sendable, Equatable {
    /// Warn above this window miss ratio (0: any miss).
    public var missRatioWarn: Double
    /// Error above this window miss ratio; a deadline fault or a stall in the window is an error too.
    public var missRatioError: Double
    /// A periodic task that released nothing for this many periods is stale.
    public var stalePeriods: Double

    public init(missRatioWarn: Double = 0, missRatioError: Double = 0.1, stalePeriods: Double = 3) {
        self.missRatioWarn = missRatioWarn
        self.missRatioError = missRatioError
        self.stalePeriods = stalePeriods
    }
}

/// Each task's level from its window, remembering when each task last released a job (stale).
public struct TaskLevels: Sendable {
    public var thresholds: LevelThresholds
    /// Per task index: its releases since start when last seen growing, and when.
    private var lastRelease: [Int: (releases: UInt64, at: Instant)] = [:]

    public init(thresholds: LevelThresholds) { self.thresholds = thresholds }

    public mutating func evaluate(_ task: TaskAccounting, at now: Instant) -> (level: DiagnosticLevel, message: String) {
        let index = task.id.index
        let seen = lastRelease[index]
        if seen == nil || task.total.releases != seen?.releases {
            // A task seen for the first time gets its stale periods from now.
            lastRelease[index] = (task.total.releases, now)
        }
        let w = task.window
        if let period = task.period, period > .zero, w.releases == 0, let since = lastRelease[index]?.at {
            let silent = now.nanoseconds(since: since)
            if Double(silent) >= thresholds.stalePeriods * Double(period.nanoseconds) {
                return (.stale, "no release for \(Self.ms(silent)) ms (period \(Self.ms(period.nanoseconds)) ms)")
            }
        }
        let ratio = w.missRatio
        let percent = (ratio * 1000).rounded() / 10
        if w.deadlineFaults > 0 { return (.error, "deadline fault: \(w.misses) of \(w.releases) releases missed") }
        if w.stalls > 0 { return (.error, "\(w.stalls) stall(s) past the handler budget") }
        if w.misses > 0 && ratio > thresholds.missRatioError {
            return (.error, "\(w.misses) of \(w.releases) releases missed (\(percent) %)")
        }
        if w.misses > 0 && ratio > thresholds.missRatioWarn {
            return (.warn, "\(w.misses) of \(w.releases) releases missed (\(percent) %)")
        }
        if w.skippedReleases > 0 { return (.warn, "\(w.skippedReleases) release(s) skipped (overrun)") }
        if w.releases == 0 { return (.ok, "no release in the window") }
        return (.ok, "\(w.releases) releases, no miss")
    }

    private static func ms(_ nanoseconds: Int64) -> Double { (Double(nanoseconds) / 1e5).rounded() / 10 }
}

/// `deadlines` and `deadlines/miss` from the accounting window's reads.
public struct DeadlinesReporter: Sendable {
    public var levels: TaskLevels
    public private(set) var limiter: EventRateLimiter
    private var seq: UInt64 = 0
    private var missSeq: UInt64 = 0
    private var lost: UInt64 = 0

    public init(thresholds: LevelThresholds, missEventsPerSecond: Double) {
        levels = TaskLevels(thresholds: thresholds)
        limiter = EventRateLimiter(perSecond: missEventsPerSecond)
    }

    /// The kinds that are misses (the scheduler's `misses`: finish-late and dropped-late). Start-late
    /// is not one of them (a job that ran is counted when it finishes); skipped releases, faults and
    /// stalls have their own counters in `deadlines`.
    public static func isMiss(_ kind: MissKind) -> Bool { kind == .finishLate || kind == .droppedLate }

    /// The miss events of one read, through the rate limit (what it refuses is counted).
    public mutating func missEvents(_ report: AccountingReport, clock: TelemetryClock) -> [MissEvent] {
        lost = report.missesLostTotal
        var events: [MissEvent] = []
        for record in report.misses where Self.isMiss(record.kind) {
            guard let carried = limiter.admit(at: record.at) else { continue }
            missSeq &+= 1
            let name = report.tasks.indices.contains(record.task.index) ? report.tasks[record.task.index].name : "task \(record.task.index)"
            events.append(MissEvent(seq: missSeq, tUnixS: clock.unix(report.at), task: name, kind: record.kind.rawValue,
                                    latenessUs: microseconds(record.amount), releaseUnixS: clock.unix(record.release),
                                    releaseS: clock.sinceStart(record.release), deadlineUnixS: clock.unix(record.deadline),
                                    suppressed: carried))
        }
        return events
    }

    /// A miss event whose message was dropped: it and what it carried are suppressed.
    public mutating func noteDropped(_ event: MissEvent) { limiter.noteDropped(carried: event.suppressed) }

    public var missCounters: MissEventCounters {
        MissEventCounters(published: limiter.admitted, suppressed: limiter.totalSuppressed, lost: lost)
    }

    public mutating func deadlines(_ report: AccountingReport, clock: TelemetryClock, telemetry: TelemetryCounters) -> DeadlinesPayload {
        seq &+= 1
        var worst = DiagnosticLevel.ok
        let tasks = report.tasks.map { task -> TaskDeadlines in
            let (level, message) = levels.evaluate(task, at: report.at)
            worst = max(worst, level)
            return TaskDeadlines(name: task.name, kind: task.kind.rawValue, priority: "\(task.priority)", critical: task.critical,
                                 periodUs: task.period.map { microseconds($0.nanoseconds) },
                                 deadlineUs: microseconds(task.relativeDeadline.nanoseconds), level: level, message: message,
                                 window: Self.figures(task.window), sinceStart: Self.figures(task.total))
        }
        return DeadlinesPayload(seq: seq, tUnixS: clock.unix(report.at), uptimeS: clock.sinceStart(report.at),
                                windowS: seconds(report.windowNanoseconds), level: worst, tasks: tasks,
                                missEvents: missCounters, telemetry: telemetry)
    }

    static func figures(_ f: TaskFigures) -> TaskFiguresPayload {
        TaskFiguresPayload(releases: f.releases, completions: f.completions, misses: f.misses,
                           missRatio: (f.missRatio * 1e6).rounded() / 1e6, startLate: f.startLate, droppedLate: f.droppedLate,
                           skippedReleases: f.skippedReleases, deadlineFaults: f.deadlineFaults, stalls: f.stalls,
                           startLatency: latency(f.startLatency), response: latency(f.responseTime),
                           worstLatenessUs: f.worstLatenessNs.map(microseconds), latencySamplesSkipped: f.latencySamplesSkipped)
    }

    static func latency(_ s: LatencySummary) -> LatencyFigures {
        guard s.count > 0 else { return LatencyFigures(count: 0, p50Us: nil, p99Us: nil, p999Us: nil, maxUs: nil) }
        return LatencyFigures(count: s.count, p50Us: microseconds(s.p50), p99Us: microseconds(s.p99),
                              p999Us: microseconds(s.p999), maxUs: microseconds(s.max))
    }
}

/// `queues`: every event task's queue, with the window's traffic.
public struct QueuesReporter: Sendable {
    private var seq: UInt64 = 0
    private var previous: [String: QueueSnapshot] = [:]

    public init() {}

    public mutating func queues(_ report: AccountingReport, clock: TelemetryClock) -> QueuesPayload {
        seq &+= 1
        var queues: [QueuePayload] = []
        for task in report.tasks {
            guard let q = task.queue else { continue }
            let before = previous[task.name]
            previous[task.name] = q
            queues.append(QueuePayload(
                source: task.name, capacity: q.capacity, overflow: q.overflow.rawValue, depth: q.depth, highWater: q.highWater,
                produced: q.produced, dropped: q.dropped, rejected: q.rejected,
                window: .init(produced: q.produced &- (before?.produced ?? 0), dropped: q.dropped &- (before?.dropped ?? 0),
                              rejected: q.rejected &- (before?.rejected ?? 0))))
        }
        return QueuesPayload(seq: seq, tUnixS: clock.unix(report.at), windowS: seconds(report.windowNanoseconds), queues: queues)
    }
}

/// One input as the runtime sees it at one instant (totals since start).
public struct InputReading: Sendable, Equatable {
    public var name: String
    public var kind: String
    /// `up`, `down` or `silent`.
    public var link: String
    public var messages: UInt64
    public var gaps: UInt64
    public var rejected: UInt64?
    public var last: Instant?
    /// The longest interval between two messages since the previous reading.
    public var windowMaxInterval: Duration

    public init(name: String, kind: String, link: String, messages: UInt64, gaps: UInt64, rejected: UInt64?,
                last: Instant?, windowMaxInterval: Duration) {
        self.name = name
        self.kind = kind
        self.link = link
        self.messages = messages
        self.gaps = gaps
        self.rejected = rejected
        self.last = last
        self.windowMaxInterval = windowMaxInterval
    }
}

/// `inputs`: each input's rate, gaps and rejects over the window and since start, and its link.
public struct InputsReporter: Sendable {
    private var seq: UInt64 = 0
    private var previous: [String: (messages: UInt64, gaps: UInt64)] = [:]
    private var windowStart: Instant?

    public init() {}

    public mutating func inputs(_ readings: [InputReading], at now: Instant, clock: TelemetryClock) -> InputsPayload {
        seq &+= 1
        let start = windowStart ?? clock.origin
        windowStart = now
        let seconds = max(0, Double(now.nanoseconds(since: start)) / 1e9)
        let inputs = readings.map { r -> InputPayload in
            let before = previous[r.name]
            previous[r.name] = (r.messages, r.gaps)
            let messages = r.messages &- (before?.messages ?? 0)
            let rate = seconds > 0 ? (Double(messages) / seconds * 1000).rounded() / 1000 : 0
            return InputPayload(
                name: r.name, kind: r.kind, link: r.link,
                window: .init(messages: messages, rateHz: rate,
                              maxIntervalUs: r.windowMaxInterval > .zero ? microseconds(r.windowMaxInterval.nanoseconds) : nil,
                              gaps: r.gaps &- (before?.gaps ?? 0)),
                sinceStart: .init(messages: r.messages, gaps: r.gaps, rejected: r.rejected),
                sinceLastUs: r.last.map { microseconds(max(0, now.nanoseconds(since: $0))) })
        }
        return InputsPayload(seq: seq, tUnixS: clock.unix(now), windowS: (seconds * 1e6).rounded() / 1e6, inputs: inputs)
    }
}

/// `sensors`: the fresh values the control path last published (NaN, unknown, is left out), each
/// with its configured unit.
public struct SensorsReporter: Sendable {
    private var seq: UInt64 = 0
    private let units: [String: String]

    /// `units`: each sensor's configured unit, by name (a sensor without one has none).
    public init(units: [String: String] = [:]) {
        self.units = units
    }

    public mutating func sensors(_ values: [(name: String, value: Double)], at now: Instant, clock: TelemetryClock) -> SensorsPayload {
        seq &+= 1
        return SensorsPayload(seq: seq, tUnixS: clock.unix(now),
                              sensors: values.map { .init(name: $0.name, value: $0.value.isFinite ? $0.value : nil, unit: units[$0.name]) })
    }
}

/// `safety` from the guard's audit records: every record on its own, except the frequent kinds
/// (clamps, commands refused while stopped, recovery commands, rejected samples), which become one
/// summary per kind and channel per read. All through a rate limit that counts what it refuses.
/// Remote reset requests (and the summaries of those refused by their users' rate) have a limit of
/// their own at the same rate: a flood of requests cannot hide the guard's interventions, nor
/// can a stream of interventions hide who asked for a reset.
public struct SafetyReporter: Sendable {
    public let channelNames: [String]
    public let sensorNames: [String]
    /// The guard's records.
    public private(set) var limiter: EventRateLimiter
    /// Remote reset requests and their rate-limited summaries.
    public private(set) var remoteLimiter: EventRateLimiter
    private var seq: UInt64 = 0

    public init(channelNames: [String], sensorNames: [String], eventsPerSecond: Double) {
        self.channelNames = channelNames
        self.sensorNames = sensorNames
        limiter = EventRateLimiter(perSecond: eventsPerSecond)
        remoteLimiter = EventRateLimiter(perSecond: eventsPerSecond)
    }

    /// The kind of a `remote-reset-request` event, and what its summaries summarise.
    public static let remoteResetKind = "remote-reset-request"

    /// Whether an event went through the remote requests' limit.
    public static func isRemote(_ record: GuardRecord) -> Bool {
        record.kind == remoteResetKind || record.summaryOf == remoteResetKind
    }

    /// Kinds that come in summaries (they can come at every policy step).
    public static func isSummarised(_ kind: AuditRecord.Kind) -> Bool {
        kind == .clamped || kind == .refusedWhileStopped || kind == .recoveryCommand || kind == .sampleRejected
    }

    public mutating func events(_ records: [AuditRecord], remoteResets: [RemoteResetRequest] = [],
                                rateLimitedResets: [RateLimitedResets] = [], at now: Instant, clock: TelemetryClock) -> [SafetyEvent] {
        var events: [SafetyEvent] = []
        // Every remote reset request looked at, whoever asked and whatever came of it (never
        // summarised).
        for r in remoteResets {
            var g = GuardRecord(kind: Self.remoteResetKind, atUnixS: clock.unix(r.at), atS: clock.sinceStart(r.at), causes: r.causes)
            g.user = r.user
            g.latch = r.latch
            g.outcome = r.outcome
            g.reason = r.reason
            append(g, at: r.at, read: now, weight: 1, clock: clock, into: &events)
        }
        // Those refused by their user's rate before anything was done with them: one summary per
        // user (none for the users beyond the tracked ones, together) per read.
        for r in rateLimitedResets where r.count > 0 {
            var g = GuardRecord(kind: "summary", atUnixS: clock.unix(r.first), atS: clock.sinceStart(r.first))
            g.summaryOf = Self.remoteResetKind
            g.user = r.user
            g.outcome = "ignored"
            g.reason = RateLimitedResets.reason
            g.count = r.count
            g.firstAtS = clock.sinceStart(r.first)
            g.lastAtS = clock.sinceStart(r.last)
            append(g, at: r.first, read: now, weight: r.count, clock: clock, into: &events)
        }
        var summaries: [String: (record: GuardRecord, at: Instant)] = [:]
        var order: [String] = []
        for r in records {
            var g = Self.record(r, clock: clock, channels: channelNames, sensors: sensorNames)
            guard Self.isSummarised(r.kind) else {
                append(g, at: r.at, read: now, weight: 1, clock: clock, into: &events)
                continue
            }
            let key = r.kind.rawValue + "|" + (g.channel ?? g.sensor ?? "")
            if var s = summaries[key] {
                s.record.count = (s.record.count ?? 0) + 1
                s.record.lastAtS = g.atS
                s.record.requested = g.requested
                s.record.approved = g.approved
                if let reasons = g.clampReasons {
                    s.record.clampReasons = Array(Set((s.record.clampReasons ?? []) + reasons)).sorted()
                }
                if let reason = g.reason { s.record.reason = reason }
                summaries[key] = s
            } else {
                g.summaryOf = g.kind
                g.kind = "summary"
                g.count = 1
                g.firstAtS = g.atS
                g.lastAtS = g.atS
                summaries[key] = (g, r.at)
                order.append(key)
            }
        }
        for key in order {
            guard let s = summaries[key] else { continue }
            append(s.record, at: s.at, read: now, weight: s.record.count ?? 1, clock: clock, into: &events)
        }
        return events
    }

    /// Through its rate limit, on the record's own time line (`at`); stamped with the read (`read`).
    private mutating func append(_ record: GuardRecord, at: Instant, read: Instant, weight: UInt64, clock: TelemetryClock,
                                 into events: inout [SafetyEvent]) {
        let carried = Self.isRemote(record) ? remoteLimiter.admit(at: at, weight: weight) : limiter.admit(at: at, weight: weight)
        guard let carried else { return }
        seq &+= 1
        events.append(SafetyEvent(seq: seq, tUnixS: clock.unix(read), suppressed: carried, record: record))
    }

    /// A safety event whose message was dropped: its records and what it carried are suppressed
    /// (in the limit it went through).
    public mutating func noteDropped(_ event: SafetyEvent) {
        if Self.isRemote(event.record) {
            remoteLimiter.noteDropped(weight: event.record.count ?? 1, carried: event.suppressed)
        } else {
            limiter.noteDropped(weight: event.record.count ?? 1, carried: event.suppressed)
        }
    }

    /// One audit record in words (names for indices, nil for "none").
    public static func record(_ r: AuditRecord, clock: TelemetryClock, channels: [String], sensors: [String]) -> GuardRecord {
        // The power-on latch is recorded at instant zero: it happened at start.
        let at = r.at == .zero ? clock.origin : r.at
        var g = GuardRecord(kind: r.kind.rawValue, atUnixS: clock.unix(at), atS: clock.sinceStart(at), causes: r.causes.kinds.map(\.description))
        let sensorIndexed = r.kind == .sampleRejected || r.kind == .interlocked
            || (r.kind == .warn && (r.fault == .staleSensor || r.fault == .silentSensor))
        if r.channel >= 0 {
            let names = sensorIndexed ? sensors : channels
            let name = names.indices.contains(r.channel) ? names[r.channel] : "#\(r.channel)"
            if sensorIndexed { g.sensor = name } else { g.channel = name }
        }
        g.origin = r.origin?.description
        g.reason = r.rejectReason?.rawValue
        g.fault = r.fault?.description
        g.category = r.category.map { Int($0.rawValue) }
        g.requested = r.requested.isFinite ? r.requested : nil
        g.approved = r.approved.isFinite ? r.approved : nil
        if !r.clampReasons.isEmpty { g.clampReasons = r.clampReasons.description.split(separator: ",").map(String.init) }
        return g
    }
}

/// A remote reset request (`estop/reset/<user>`) and its outcome, for the `safety` topic.
public struct RemoteResetRequest: Sendable, Equatable {
    public var at: Instant
    public var user: String
    public var latch: UInt64?
    public var outcome: String
    public var reason: String?
    public var causes: [String]
    public init(at: Instant, user: String, latch: UInt64?, outcome: String, reason: String?, causes: [String]) {
        self.at = at
        self.user = user
        self.latch = latch
        self.outcome = outcome
        self.reason = reason
        self.causes = causes
    }
}

/// Remote reset requests of one user (nil: the users beyond the tracked ones, together) refused by
/// the per-user rate limit before anything was done with them, since the previous read.
public struct RateLimitedResets: Sendable, Equatable {
    /// The `reason` of their summary on the `safety` topic.
    public static let reason = "rate-limited"
    public var user: String?
    public var count: UInt64
    public var first: Instant
    public var last: Instant
    public init(user: String?, count: UInt64, first: Instant, last: Instant) {
        self.user = user
        self.count = count
        self.first = first
        self.last = last
    }
}

/// `audit`: the guard's audit ring as it is now.
public struct AuditReporter: Sendable {
    private var seq: UInt64 = 0
    public init() {}

    public mutating func audit(_ records: [AuditRecord], capacity: Int, at now: Instant, clock: TelemetryClock,
                               channels: [String], sensors: [String]) -> AuditPayload {
        seq &+= 1
        return AuditPayload(seq: seq, tUnixS: clock.unix(now), capacity: capacity,
                            records: records.map { SafetyReporter.record($0, clock: clock, channels: channels, sensors: sensors) })
    }
}
