/// `mqtt.telemetry`: what robotd publishes about itself (docs/mqtt.md) — on a connection of its
/// own to the `mqtt` broker, never on the control path. Every key has a default: an `mqtt` section
/// alone publishes telemetry.
public struct TelemetrySettings: Sendable, Equatable, Codable {
    public var enabled: Bool = true
    /// `deadlines`, `queues`, `inputs` and `sensors` every this often.
    public var intervalMs: Double = 1000
    /// The shortest `interval_ms` a file may ask for: each cycle reads the accounting window and
    /// encodes four payloads, and below this the telemetry thread's share of a core stops being
    /// small (docs/mqtt.md, "How often"), for figures nobody reads faster.
    public static let minimumIntervalMs: Double = 100
    /// `state` (retained) at least this often; also whenever it changes.
    public var stateIntervalMs: Double = 10_000
    /// QoS of the periodic topics (`deadlines`, `queues`, `inputs`).
    public var qos: Int = 0
    /// QoS of the event topics (`deadlines/miss`, `safety`, `audit`).
    public var eventQos: Int = 1
    /// Retain the periodic topics' last message (`status` and `state` are always retained).
    public var retain: Bool = false
    /// Messages not yet written out (or acknowledged) beyond this are dropped and counted.
    public var maxQueuedMessages: Int = 256
    /// Their bytes (payloads and topics) beyond this: dropped and counted too. A message larger
    /// than this is never sent (an `audit` of a full ring of 1024 records is a few hundred KB).
    public var maxQueuedBytes: Int = 4_194_304
    /// Miss events per second (a burst of as many); the rest are counted as suppressed.
    public var missEventsPerS: Double = 20
    /// Safety events per second (a burst of as many); the rest are counted as suppressed.
    public var safetyEventsPerS: Double = 20
    /// An interval between two messages of an input longer than this is a gap; nil: the shortest
    /// `max_age_ms` of the sensors the input feeds (a gap is then a reading gone stale), no gaps
    /// counted for an input that feeds none.
    public var inputGapMs: Double?
    /// Diagnostic levels per task: warn above this window miss ratio (0: any miss).
    public var missRatioWarn: Double = 0
    /// Error above this window miss ratio (also on a deadline fault or a stall in the window).
    public var missRatioError: Double = 0.1
    /// A periodic task released nothing for this many periods: stale.
    public var stalePeriods: Double = 3

    public init() {}

    enum CodingKeys: String, CodingKey {
        case enabled, qos, retain
        case intervalMs = "interval_ms"
        case stateIntervalMs = "state_interval_ms"
        case eventQos = "event_qos"
        case maxQueuedMessages = "max_queued_messages"
        case maxQueuedBytes = "max_queued_bytes"
        case missEventsPerS = "miss_events_per_s"
        case safetyEventsPerS = "safety_events_per_s"
        case inputGapMs = "input_gap_ms"
        case missRatioWarn = "miss_ratio_warn"
        case missRatioError = "miss_ratio_error"
        case stalePeriods = "stale_periods"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = TelemetrySettings()
        enabled = try c.decodeIfPresent(Bool.self, forKey: .enabled) ?? d.enabled
        intervalMs = try c.decodeIfPresent(Double.self, forKey: .intervalMs) ?? d.intervalMs
        stateIntervalMs = try c.decodeIfPresent(Double.self, forKey: .stateIntervalMs) ?? d.stateIntervalMs
        qos = try c.decodeIfPresent(Int.self, forKey: .qos) ?? d.qos
        eventQos = try c.decodeIfPresent(Int.self, forKey: .eventQos) ?? d.eventQos
        retain = try c.decodeIfPresent(Bool.self, forKey: .retain) ?? d.retain
        maxQueuedMessages = try c.decodeIfPresent(Int.self, forKey: .maxQueuedMessages) ?? d.maxQueuedMessages
        maxQueuedBytes = try c.decodeIfPresent(Int.self, forKey: .maxQueuedBytes) ?? d.maxQueuedBytes
        missEventsPerS = try c.decodeIfPresent(Double.self, forKey: .missEventsPerS) ?? d.missEventsPerS
        safetyEventsPerS = try c.decodeIfPresent(Double.self, forKey: .safetyEventsPerS) ?? d.safetyEventsPerS
        inputGapMs = try c.decodeIfPresent(Double.self, forKey: .inputGapMs)
        missRatioWarn = try c.decodeIfPresent(Double.self, forKey: .missRatioWarn) ?? d.missRatioWarn
        missRatioError = try c.decodeIfPresent(Double.self, forKey: .missRatioError) ?? d.missRatioError
        stalePeriods = try c.decodeIfPresent(Double.self, forKey: .stalePeriods) ?? d.stalePeriods
    }
}

extension ConfigurationSchema {
    /// `mqtt.telemetry`.
    public static let telemetry: [FieldSpec] = [
        FieldSpec("enabled", .bool, help: "publish telemetry (default true when `mqtt` is there)"),
        FieldSpec("interval_ms", .number(TelemetrySettings.minimumIntervalMs...3_600_000),
                  help: "`deadlines`, `queues`, `inputs` and `sensors` every this often (default 1000); at least "
                      + "\(Int(TelemetrySettings.minimumIntervalMs)): shorter, the telemetry thread takes more of a core (docs/mqtt.md)"),
        FieldSpec("state_interval_ms", .number(10...86_400_000), help: "`state` at least this often, and on every change (default 10000)"),
        FieldSpec("qos", .integer(0...2), help: "QoS of `deadlines`, `queues`, `inputs` (default 0)"),
        FieldSpec("event_qos", .integer(0...2), help: "QoS of `deadlines/miss`, `safety`, `audit` (default 1)"),
        FieldSpec("retain", .bool, help: "retain the periodic topics (default false; `status` and `state` are always retained)"),
        FieldSpec("max_queued_messages", .integer(1...1_000_000),
                  help: "telemetry messages not yet written out beyond this are dropped and counted (default 256)"),
        FieldSpec("max_queued_bytes", .integer(65_536...1_073_741_824),
                  help: "their bytes (payloads and topics) beyond this: dropped and counted too (default 4194304; an audit of a full ring is a few hundred KB)"),
        FieldSpec("miss_events_per_s", .positive, help: "`deadlines/miss` events per second, the rest counted as suppressed (default 20)"),
        FieldSpec("safety_events_per_s", .positive, help: "`safety` events per second, the rest counted as suppressed (default 20)"),
        FieldSpec("input_gap_ms", .positive,
                  help: "an input silent this long between two messages counts a gap (default: the shortest max_age_ms of the sensors it feeds)"),
        FieldSpec("miss_ratio_warn", .number(0...1), help: "a task's level is warn above this window miss ratio (default 0: any miss)"),
        FieldSpec("miss_ratio_error", .number(0...1), help: "error above this window miss ratio, or on a deadline fault or stall (default 0.1)"),
        FieldSpec("stale_periods", .positive, help: "a periodic task with no release for this many periods is stale (default 3)"),
    ]
}
