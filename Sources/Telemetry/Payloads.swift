import Foundation

// The JSON of every telemetry topic (docs/mqtt.md; one JSON Schema each in docs/schemas). Property
// names become snake_case keys (`TelemetryJSON`); numbers are SI, durations in µs with `_us` in
// the key, instants in seconds (`_unix_s`: since the Unix epoch; `_s`: since robotd started);
// every topic has its own `seq`, so a consumer sees gaps. A key that is absent means "unknown"
// (no sample yet), never zero.

/// ROS 2 diagnostics' levels (diagnostic_msgs/DiagnosticStatus: OK, WARN, ERROR, STALE).
public enum DiagnosticLevel: String, Codable, Sendable, Comparable, CaseIterable {
    case ok, warn, error, stale

    /// DiagnosticStatus's byte: 0, 1, 2, 3.
    public var rosValue: Int {
        switch self {
        case .ok: 0
        case .warn: 1
        case .error: 2
        case .stale: 3
        }
    }

    public static func < (a: DiagnosticLevel, b: DiagnosticLevel) -> Bool { a.rosValue < b.rosValue }
}

/// `state` (retained): who is running, since when, in which mode, and why it is stopped.
public struct StatePayload: Codable, Sendable, Equatable {
    public var seq: UInt64
    public var tUnixS: Double
    public var robotId: String
    public var version: String
    public var uptimeS: Double
    /// `running`, `holding` (workspace hold), `recovery` (after a reset beyond the workspace), `stopped` (latched).
    public var mode: String
    public var estop: EStopState
    /// SHA-256 of the configuration as robotd read it (canonical JSON, sorted keys).
    public var configSha256: String
    /// /proc/sys/kernel/random/boot_id: the same uptime on another boot is another run.
    public var bootId: String
    public var pid: Int
    /// Drawn at random once per run: a restart with the same boot and pid (pid 1 in a container)
    /// is another run. Absent in the `state` of a robotd before it.
    public var runId: String?
    public var telemetry: TelemetryCounters
    /// What the inbound remote stop topics refused, since start; absent without `estop.remote`.
    public var remote: RemoteInboundCounters?
    /// The plan executor's state as the dispatch thread left it; absent without `abilities`.
    public var plan: PlanState?
    /// The control connection's delivery of commands, since start; absent when control does not
    /// use the broker (no `mqtt` input, actuator or goal topic).
    public var controlLink: ControlLinkCounters?

    /// The plan running or last run: which goal, where it is, how it ended. The goal's words, the
    /// plan's steps and the back ends' health are on the `plan` topic; this is the retained part
    /// that a monitor started later still sees.
    public struct PlanState: Codable, Sendable, Equatable {
        /// The robot's current goal (0: none yet): a goal being planned is newer than the plan's.
        public var goalId: UInt64
        /// The goal of the plan running or last run (0: none yet).
        public var planGoalId: UInt64
        /// `idle`, `running`, `completed`, `failed`, `cancelled`.
        public var state: String
        /// The running (or last) step, from 1; absent before any plan.
        public var step: Int?
        public var stepCount: Int?
        /// The step's ability.
        public var ability: String?
        /// Why the plan ended other than completed (`timeout`, `no_progress`, `latched`, `new_goal`, …).
        public var reason: String?
        /// What is left of the running step (m or °C), when known.
        public var remaining: Double?

        public init(goalId: UInt64, planGoalId: UInt64, state: String, step: Int?, stepCount: Int?, ability: String?,
                    reason: String?, remaining: Double?) {
            self.goalId = goalId
            self.planGoalId = planGoalId
            self.state = state
            self.step = step
            self.stepCount = stepCount
            self.ability = ability
            self.reason = reason
            self.remaining = remaining
        }
    }

    public struct EStopState: Codable, Sendable, Equatable {
        public var latched: Bool
        /// The cause that latched it (`remote-stop`, `estop-input`, `deadline-fault`, …); absent when not latched.
        public var latchCause: String?
        /// Stop causes present now: each refuses a reset until it clears.
        public var activeCauses: [String]
        /// What holds now (not latched): motion, or every channel for `estop-unknown`. Absent in
        /// the `state` of a robotd before it.
        public var holdCauses: [String]?
        public var linksUp: Bool
        public var resets: Int
        public var refusedResets: Int
        /// The latch number a remote reset request must name (docs/mqtt.md, "The latch number").
        public var latchSequence: UInt64
        public init(latched: Bool, latchCause: String?, activeCauses: [String], linksUp: Bool, resets: Int, refusedResets: Int,
                    latchSequence: UInt64, holdCauses: [String]? = nil) {
            self.holdCauses = holdCauses
            self.latchSequence = latchSequence
            self.latched = latched
            self.latchCause = latchCause
            self.activeCauses = activeCauses
            self.linksUp = linksUp
            self.resets = resets
            self.refusedResets = refusedResets
        }
    }

    public init(seq: UInt64, tUnixS: Double, robotId: String, version: String, uptimeS: Double, mode: String, estop: EStopState,
                configSha256: String, bootId: String, pid: Int, telemetry: TelemetryCounters, remote: RemoteInboundCounters? = nil,
                plan: PlanState? = nil, controlLink: ControlLinkCounters? = nil, runId: String? = nil) {
        self.seq = seq
        self.tUnixS = tUnixS
        self.robotId = robotId
        self.version = version
        self.uptimeS = uptimeS
        self.mode = mode
        self.estop = estop
        self.configSha256 = configSha256
        self.bootId = bootId
        self.pid = pid
        self.telemetry = telemetry
        self.remote = remote
        self.plan = plan
        self.controlLink = controlLink
        self.runId = runId
    }
}

/// What the control connection (the `mqtt` actuators' commands, the inbound topics) did with what
/// it was given, since start: the figures that show a channel whose commands do not get through
/// before the guard stops on it (docs/mqtt.md, "Commands over MQTT").
public struct ControlLinkCounters: Codable, Sendable, Equatable {
    public var connected: Bool
    public var connects: UInt64
    public var disconnects: UInt64
    /// Messages handed to libmosquitto (commands, safe values).
    public var published: UInt64
    /// Handed over, and refused by libmosquitto (not connected, a bad topic…).
    public var publishFailures: UInt64
    /// Written out (QoS 0) or acknowledged by the broker (QoS 1).
    public var confirmed: UInt64
    /// Refused because the outgoing bound (1000 messages) was reached.
    public var droppedQueueFull: UInt64
    /// QoS 0 messages libmosquitto discarded at a reconnect, never written.
    public var discardedAtReconnect: UInt64
    /// Commands replaced by a newer value (or the safe value) while their channel's message
    /// waited for its confirmation, or dropped with the connection: never sent.
    public var superseded: UInt64
    /// Commands that waited for their channel and whose approval had run out (or the guard had
    /// latched or reset) when their turn came: never sent.
    public var expired: UInt64
    /// Channels whose message went unconfirmed past `mqtt.command_confirmation_s` while connected:
    /// each given up, its channel failed (`stalled`, then `actuator-failure`).
    public var unconfirmedCommands: UInt64
    /// Safe values sent although the outgoing bound was reached (the bound never refuses one).
    public var safeValuesOverBound: UInt64

    public init(connected: Bool = false, connects: UInt64 = 0, disconnects: UInt64 = 0, published: UInt64 = 0,
                publishFailures: UInt64 = 0, confirmed: UInt64 = 0, droppedQueueFull: UInt64 = 0, discardedAtReconnect: UInt64 = 0,
                superseded: UInt64 = 0, expired: UInt64 = 0, unconfirmedCommands: UInt64 = 0, safeValuesOverBound: UInt64 = 0) {
        self.connected = connected
        self.connects = connects
        self.disconnects = disconnects
        self.published = published
        self.publishFailures = publishFailures
        self.confirmed = confirmed
        self.droppedQueueFull = droppedQueueFull
        self.discardedAtReconnect = discardedAtReconnect
        self.superseded = superseded
        self.expired = expired
        self.unconfirmedCommands = unconfirmedCommands
        self.safeValuesOverBound = safeValuesOverBound
    }
}

/// Messages on the remote stop's inbound topics that robotd did not act on, since start (the
/// remote reset requests it looked at are on `safety` each, with their reasons).
public struct RemoteInboundCounters: Codable, Sendable, Equatable {
    /// Retained messages on the stop, reset or keep-alive topic: the broker's memory, ignored.
    public var retainedIgnored: UInt64
    /// Reset requests that named no latch.
    public var unrecognised: UInt64
    /// Reset requests of users not in `reset_users`.
    public var unauthorised: UInt64
    /// Reset requests that found the reset queue full.
    public var queueFull: UInt64
    /// Reset requests over their user's rate: neither parsed nor recorded (summaries on `safety`).
    public var rateLimited: UInt64
    /// Keep-alives whose counter did not advance (replayed, redelivered).
    public var keepalivesStale: UInt64
    /// Keep-alives whose payload is no counter.
    public var keepalivesUnrecognised: UInt64
    /// Keep-alives delivered at QoS 0: they do not prove the path of the QoS 1 stop.
    public var keepalivesQos0: UInt64
    /// Keep-alives whose counter jumped too far past the last one taken.
    public var keepalivesJumped: UInt64
    /// The last keep-alive counter taken in this run (0: none yet).
    public var lastKeepalive: UInt64
    /// Reset requests naming a user longer than 64 bytes.
    public var namesTooLong: UInt64

    public init(retainedIgnored: UInt64 = 0, unrecognised: UInt64 = 0, unauthorised: UInt64 = 0, queueFull: UInt64 = 0,
                rateLimited: UInt64 = 0, keepalivesStale: UInt64 = 0, keepalivesUnrecognised: UInt64 = 0, keepalivesQos0: UInt64 = 0,
                keepalivesJumped: UInt64 = 0, lastKeepalive: UInt64 = 0, namesTooLong: UInt64 = 0) {
        self.retainedIgnored = retainedIgnored
        self.unrecognised = unrecognised
        self.unauthorised = unauthorised
        self.queueFull = queueFull
        self.rateLimited = rateLimited
        self.keepalivesStale = keepalivesStale
        self.keepalivesUnrecognised = keepalivesUnrecognised
        self.keepalivesQos0 = keepalivesQos0
        self.keepalivesJumped = keepalivesJumped
        self.lastKeepalive = lastKeepalive
        self.namesTooLong = namesTooLong
    }
}

/// Telemetry's own health: what it handed to the broker connection, what it dropped.
public struct TelemetryCounters: Codable, Sendable, Equatable {
    /// Messages handed to the telemetry connection since start.
    public var published: UInt64
    /// Messages dropped since start: the outgoing queue was full (`max_queued_messages`,
    /// `max_queued_bytes`) or the broker was not connected.
    public var dropped: UInt64
    /// Messages handed over and not yet written out (or acknowledged) now.
    public var queued: Int
    /// Their payload and topic bytes.
    public var queuedBytes: Int
    public var connected: Bool
    /// Requests on `audit/request` answered by an audit already due (at most one audit a second).
    public var auditRequestsCoalesced: UInt64

    public init(published: UInt64 = 0, dropped: UInt64 = 0, queued: Int = 0, queuedBytes: Int = 0, connected: Bool = false,
                auditRequestsCoalesced: UInt64 = 0) {
        self.published = published
        self.dropped = dropped
        self.queued = queued
        self.queuedBytes = queuedBytes
        self.connected = connected
        self.auditRequestsCoalesced = auditRequestsCoalesced
    }

    enum CodingKeys: String, CodingKey { case published, dropped, queued, queuedBytes, connected, auditRequestsCoalesced }

    /// The later keys are optional: a monitor reads the `state` of an older robotd too.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        published = try c.decode(UInt64.self, forKey: .published)
        dropped = try c.decode(UInt64.self, forKey: .dropped)
        queued = try c.decode(Int.self, forKey: .queued)
        queuedBytes = try c.decodeIfPresent(Int.self, forKey: .queuedBytes) ?? 0
        connected = try c.decode(Bool.self, forKey: .connected)
        auditRequestsCoalesced = try c.decodeIfPresent(UInt64.self, forKey: .auditRequestsCoalesced) ?? 0
    }
}

/// Percentiles of a latency over a span, µs.
public struct LatencyFigures: Codable, Sendable, Equatable {
    /// Samples behind the percentiles (0: no sample; the percentiles are then absent).
    public var count: UInt64
    public var p50Us: Double?
    public var p99Us: Double?
    public var p999Us: Double?
    public var maxUs: Double?
    public init(count: UInt64, p50Us: Double?, p99Us: Double?, p999Us: Double?, maxUs: Double?) {
        self.count = count
        self.p50Us = p50Us
        self.p99Us = p99Us
        self.p999Us = p999Us
        self.maxUs = maxUs
    }
}

/// A task's figures over a window or since start.
public struct TaskFiguresPayload: Codable, Sendable, Equatable {
    public var releases: UInt64
    public var completions: UInt64
    /// Finish-late and dropped-late jobs.
    public var misses: UInt64
    public var missRatio: Double
    public var startLate: UInt64
    public var droppedLate: UInt64
    public var skippedReleases: UInt64
    public var deadlineFaults: UInt64
    public var stalls: UInt64
    /// Release → handler start.
    public var startLatency: LatencyFigures
    /// Release → handler end.
    public var response: LatencyFigures
    /// Largest (finish − deadline); negative: every job finished early; absent: none finished.
    public var worstLatenessUs: Double?
    /// Latency samples the dispatch thread did not record because a reader held the histogram.
    public var latencySamplesSkipped: UInt64
}

/// One task in `deadlines`.
public struct TaskDeadlines: Codable, Sendable, Equatable {
    public var name: String
    /// `periodic` or `event`.
    public var kind: String
    /// Dispatch class: `critical`, `high`, `normal`, `low`.
    public var priority: String
    /// A miss streak of a critical task is a stop.
    public var critical: Bool
    public var periodUs: Double?
    public var deadlineUs: Double
    public var level: DiagnosticLevel
    /// Why, in words (ROS 2's DiagnosticStatus.message).
    public var message: String
    public var window: TaskFiguresPayload
    public var sinceStart: TaskFiguresPayload
}

/// `deadlines`: every task's figures for the window since the previous message and since start.
public struct DeadlinesPayload: Codable, Sendable, Equatable {
    public var seq: UInt64
    public var tUnixS: Double
    public var uptimeS: Double
    public var windowS: Double
    /// The worst task level (ROS 2's aggregator view).
    public var level: DiagnosticLevel
    public var tasks: [TaskDeadlines]
    public var missEvents: MissEventCounters
    public var telemetry: TelemetryCounters
}

/// What became of the misses on `deadlines/miss`, since start: `published + suppressed + lost`
/// equals the scheduler's misses (finish-late and dropped-late).
public struct MissEventCounters: Codable, Sendable, Equatable {
    /// Miss events handed to the connection.
    public var published: UInt64
    /// Misses not published: over `miss_events_per_s`, or their message was dropped.
    public var suppressed: UInt64
    /// Miss records overwritten in the scheduler's bounded miss log before telemetry read them.
    public var lost: UInt64
    public init(published: UInt64 = 0, suppressed: UInt64 = 0, lost: UInt64 = 0) {
        self.published = published
        self.suppressed = suppressed
        self.lost = lost
    }
}

/// `deadlines/miss`: one missed deadline.
public struct MissEvent: Codable, Sendable, Equatable {
    public var seq: UInt64
    public var tUnixS: Double
    public var task: String
    /// `finish-late` (it ran and finished after its deadline) or `dropped-late` (past its deadline
    /// at its turn and dropped by its policy).
    public var kind: String
    /// How far past the deadline.
    public var latenessUs: Double
    public var releaseUnixS: Double
    public var releaseS: Double
    public var deadlineUnixS: Double
    /// Misses not published since the previous miss event (rate limit, dropped messages).
    public var suppressed: UInt64
}

/// `queues`: every source's ingress queue.
public struct QueuesPayload: Codable, Sendable, Equatable {
    public var seq: UInt64
    public var tUnixS: Double
    public var windowS: Double
    public var queues: [QueuePayload]
}

public struct QueuePayload: Codable, Sendable, Equatable {
    public var source: String
    public var capacity: Int
    /// `drop-oldest`, `keep-latest-per-key` or `reject`: what `dropped` and `rejected` count.
    public var overflow: String
    public var depth: Int
    public var highWater: Int
    public var produced: UInt64
    /// Events dropped by the overflow policy (the oldest, or one replaced by a newer of its key).
    public var dropped: UInt64
    /// Posts refused (`reject` policy, queue full).
    public var rejected: UInt64
    public var window: QueueWindow

    public struct QueueWindow: Codable, Sendable, Equatable {
        public var produced: UInt64
        public var dropped: UInt64
        public var rejected: UInt64
    }
}

/// `inputs`: every input's traffic and link.
public struct InputsPayload: Codable, Sendable, Equatable {
    public var seq: UInt64
    public var tUnixS: Double
    public var windowS: Double
    public var inputs: [InputPayload]
}

public struct InputPayload: Codable, Sendable, Equatable {
    public var name: String
    /// The input's kind (`serial`, `evdev`, `mqtt`, `remote-stop`).
    public var kind: String
    /// `up`, `down` (EOF, unplugged, broker gone) or `silent` (nothing within its link timeout).
    public var link: String
    public var window: InputWindow
    public var sinceStart: InputTotals
    /// Since the latest message; absent before the first.
    public var sinceLastUs: Double?

    public struct InputWindow: Codable, Sendable, Equatable {
        public var messages: UInt64
        public var rateHz: Double
        /// The longest interval between two messages that ended in the window; absent: fewer than two.
        public var maxIntervalUs: Double?
        public var gaps: UInt64
    }

    public struct InputTotals: Codable, Sendable, Equatable {
        public var messages: UInt64
        /// Intervals between two messages longer than `input_gap_ms`.
        public var gaps: UInt64
        /// Frames or messages the decoder rejected (bad CRC, not a number); absent for kinds
        /// without a decoder of their own.
        public var rejected: UInt64?
    }
}

/// `sensors`: the configuration's sensors, each with its fresh value (absent: unknown — not yet
/// reporting, stale, or invalid).
public struct SensorsPayload: Codable, Sendable, Equatable {
    public var seq: UInt64
    public var tUnixS: Double
    public var sensors: [SensorValue]

    public struct SensorValue: Codable, Sendable, Equatable {
        public var name: String
        public var value: Double?
        /// The configuration's `unit` for the sensor (`°C`, `m`); absent: none configured.
        public var unit: String?
        public init(name: String, value: Double?, unit: String? = nil) {
            self.name = name
            self.value = value
            self.unit = unit
        }
    }
}

/// One guard intervention from its audit ring, or a summary of many of one kind on one channel
/// (`kind: summary`).
public struct GuardRecord: Codable, Sendable, Equatable {
    /// The guard's record kind: `rejected`, `latched`, `reset`, `reset-refused`, `fault`, `warn`,
    /// … (docs/mqtt.md), or `summary` for clamps and other frequent kinds over one interval.
    public var kind: String
    public var atUnixS: Double
    public var atS: Double
    public var channel: String?
    public var sensor: String?
    /// Who commanded it: `policy`, `teleop`, `planner`, `guard`.
    public var origin: String?
    /// A rejection's reason (`stale`, `not-finite`, `interlocked`, …).
    public var reason: String?
    /// The fault kind: a latch's or fault's cause, a refused reset's latch cause.
    public var fault: String?
    /// IEC 60204-1 stop category (0, 1, 2).
    public var category: Int?
    /// Causes present (a refused reset: what still refuses it).
    public var causes: [String]
    public var requested: Double?
    public var approved: Double?
    public var clampReasons: [String]?
    /// For `remote-reset-request`: the MQTT user who asked (the topic's last level, tied to the
    /// login by the broker's ACL), the latch number named, and what came of it (`released`,
    /// `released-into-recovery`, `refused`, `ignored`); `reason` says why not.
    public var user: String?
    public var latch: UInt64?
    public var outcome: String?
    /// For `summary`: the kind it summarises, how many, and the first and last of them.
    public var summaryOf: String?
    public var count: UInt64?
    public var firstAtS: Double?
    public var lastAtS: Double?

    public init(kind: String, atUnixS: Double, atS: Double, causes: [String] = []) {
        self.kind = kind
        self.atUnixS = atUnixS
        self.atS = atS
        self.causes = causes
    }
}

/// `safety`: one guard record (its keys at the top level) with the topic's `seq`.
public struct SafetyEvent: Codable, Sendable, Equatable {
    public var seq: UInt64
    public var tUnixS: Double
    /// Records not published since the previous safety event (rate limit, dropped messages).
    public var suppressed: UInt64
    public var record: GuardRecord

    enum CodingKeys: String, CodingKey { case seq, tUnixS, suppressed }

    public init(seq: UInt64, tUnixS: Double, suppressed: UInt64, record: GuardRecord) {
        self.seq = seq
        self.tUnixS = tUnixS
        self.suppressed = suppressed
        self.record = record
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        seq = try c.decode(UInt64.self, forKey: .seq)
        tUnixS = try c.decode(Double.self, forKey: .tUnixS)
        suppressed = try c.decode(UInt64.self, forKey: .suppressed)
        record = try GuardRecord(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        try record.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(seq, forKey: .seq)
        try c.encode(tUnixS, forKey: .tUnixS)
        try c.encode(suppressed, forKey: .suppressed)
    }
}

/// `audit` (on request): the guard's audit ring as it is now, oldest first.
public struct AuditPayload: Codable, Sendable, Equatable {
    public var seq: UInt64
    public var tUnixS: Double
    /// The ring's capacity: older records were overwritten.
    public var capacity: Int
    public var records: [GuardRecord]
}

/// Turns payloads into the JSON that goes on the wire: snake_case keys, sorted.
public enum TelemetryJSON {
    public static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding our own value types cannot fail but for a non-finite number, which the
        // builders never produce; an empty object rather than a crash if one slips through.
        return (try? Array(encoder.encode(value))) ?? Array("{}".utf8)
    }

    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(T.self, from: Data(bytes))
    }
}
