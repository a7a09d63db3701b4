import CRealtime
import Foundation
import Glibc
import Planner
import Platform
import RTScheduler
import RobotConfig
import SafetyGuard
import Synchronization
import Telemetry
import Transports

/// Deadline monitoring over MQTT (docs/mqtt.md): a thread of normal priority reads the scheduler's
/// accounting window, the guard's audit ring and the runtime's status every `interval_ms` and
/// publishes them on a connection of its own (client id `<client_id>-telemetry`), so that actuator
/// commands over MQTT never queue behind telemetry. Nothing here runs on, or waits for, the control
/// path: the reads are atomics, a lock-free status cell, the audit ring's seqlocked slots and the
/// histograms' reader side. libmosquitto's outgoing queue is bounded (`max_queued_messages`,
/// `max_queued_bytes`); what does not fit is dropped and counted, and a broker that is slow, full or
/// gone costs this thread only. Requests for the audit are answered at most once a second.
public final class TelemetryMonitor: Sendable {
    /// Audits at most this often: a flood of requests on `audit/request` gets one audit a second
    /// (each request is answered by the next one; the extra ones are counted).
    public static let auditMinimumInterval: Duration = .seconds(1)

    public struct Options: Sendable {
        public var settings: TelemetrySettings
        public var broker: BrokerAddress
        public var clientID: String
        public var username: String?
        public var password: String?
        public var caFile: String?
        public var keepaliveSeconds: Int
        /// SO_SNDBUF of the telemetry connection (nil: the system's); small in the isolation test.
        public var sendBufferBytes: Int?

        public init(settings: TelemetrySettings, broker: BrokerAddress, clientID: String, username: String? = nil, password: String? = nil,
                    caFile: String? = nil, keepaliveSeconds: Int = 10, sendBufferBytes: Int? = nil) {
            self.settings = settings
            self.broker = broker
            self.clientID = clientID
            self.username = username
            self.password = password
            self.caFile = caFile
            self.keepaliveSeconds = keepaliveSeconds
            self.sendBufferBytes = sendBufferBytes
        }
    }

    /// What telemetry did (any thread).
    public final class Counters: Sendable {
        /// Messages handed to the connection.
        public let published = Atomic<UInt64>(0)
        /// Messages dropped: the queue was full or the broker not connected.
        public let dropped = Atomic<UInt64>(0)
        /// Reads of the accounting window (one per interval).
        public let cycles = Atomic<UInt64>(0)
        public let auditsPublished = Atomic<UInt64>(0)
        /// Requests on `audit/request` answered by an audit that answered another too (more than
        /// one request within `auditMinimumInterval`).
        public let auditRequestsCoalesced = Atomic<UInt64>(0)
        /// Home Assistant discovery configs handed to the connection (all of them at each connect).
        public let discoveryPublished = Atomic<UInt64>(0)
        /// Stale discovery configs of this robot (retained, no longer in the configuration) cleared.
        public let discoveryRemoved = Atomic<UInt64>(0)
    }

    public let topics: TelemetryTopics
    public let settings: TelemetrySettings
    public let counters = Counters()
    public let client: MQTTClient
    private let sources: Sources
    private let worker = WorkerSlot()
    private let flags = Flags()

    /// Set by the network thread (audit requests, counted) and the monitor thread (its last message out).
    final class Flags: Sendable {
        let auditRequests = Atomic<UInt64>(0)
        let finished = Atomic<Bool>(false)
    }

    /// What the monitor reads (all of it readable from any thread).
    struct Sources: Sendable {
        let window: AccountingWindow
        let scheduler: Scheduler
        let runtime: RobotRuntime
        let configuration: RobotConfiguration
        let configHash: String
        /// This run (`state`'s `boot_id` and `pid`; the `plan` journal stamps the same on its messages).
        let run: RunIdentity
        /// The control connection, for the link state of `mqtt` inputs and its counters on
        /// `state`; nil: none.
        let control: MQTTClient?
        /// Home Assistant discovery configs, published at each connect; nil: off.
        let discovery: HomeAssistantDiscovery?
        /// With discovery: this node's retained configs the configuration no longer has, to clear.
        let staleDiscovery: StaleDiscovery?
        /// The sensors `sensors` carries, with their index in the runtime's status.
        let sensorSlots: [(name: String, index: Int)]
        /// What the `plan` topic carries (the planner service's journal); nil: no planner.
        let plan: PlanJournal?
        /// The ability vocabulary for `abilities` (with a planner); nil: none.
        let abilities: AbilitiesPayload?
    }

    /// Takes the scheduler's accounting window (its one owner) and prepares the connection;
    /// nothing is sent before `start()`.
    public init(options: Options, scheduler: Scheduler, runtime: RobotRuntime, control: MQTTClient?,
                plan: PlanJournal? = nil) throws {
        let configuration = runtime.configuration
        settings = options.settings
        topics = TelemetryTopics(prefix: configuration.topicPrefix)
        let sensorSlots = HomeAssistantEntities.sensorsPublished(configuration).compactMap { name in
            runtime.sensorNames.firstIndex(of: name).flatMap { $0 < RuntimeStatus.sensorCapacity ? (name: name, index: $0) : nil }
        }
        let discovery = HomeAssistantEntities.discovery(for: configuration)
        let stale = discovery.map(StaleDiscovery.init)
        let configHash = Self.hash(configuration)
        // The vocabulary the planner service plans with (it exists only when this one could be built).
        let abilities = plan == nil ? nil : (try? PlanningContext(configuration: configuration)).map {
            AbilitiesPayload(context: $0, configuration: configuration, configSha256: configHash)
        }
        sources = Sources(window: try scheduler.makeAccountingWindow(), scheduler: scheduler, runtime: runtime,
                          configuration: configuration, configHash: configHash, run: plan?.run ?? RunIdentity.current(),
                          control: control, discovery: discovery, staleDiscovery: stale, sensorSlots: sensorSlots, plan: plan,
                          abilities: abilities)
        let requestTopic = topics.auditRequest
        let flags = self.flags
        client = try MQTTClient(options: MQTTOptions(
            host: options.broker.host, port: options.broker.port, clientID: options.clientID, username: options.username,
            password: options.password, caFile: options.caFile, keepaliveSeconds: options.keepaliveSeconds,
            // Home Assistant's default availability payloads; the broker publishes `offline` when
            // the connection ends without a DISCONNECT (a crash, SIGKILL, a cut cable).
            will: .init(topic: topics.status, payload: Array(TelemetryTopics.statusOffline.utf8), qos: 1, retain: true),
            reconnectMaxSeconds: 4, maxQueuedMessages: options.settings.maxQueuedMessages,
            maxQueuedBytes: options.settings.maxQueuedBytes, sendBufferBytes: options.sendBufferBytes)) { message in
            if let stale, stale.note(message) { return }
            // A retained request is history replayed at every subscribe: not a request now. Only
            // counted here: the monitor thread answers at most once a second.
            if message.topic == requestTopic && !message.retained { flags.auditRequests.add(1, ordering: .releasing) }
        }
        try client.subscribe(.init(filter: requestTopic, qos: 1))
        // The broker replays this node's retained configs at every subscribe: the stale ones are cleared.
        if let stale { try client.subscribe(.init(filter: stale.filter, qos: 1)) }
    }

    /// The canonical configuration's SHA-256: JSON with sorted keys of what robotd read (the same
    /// file, whatever its comments and layout, hashes the same).
    static func hash(_ configuration: RobotConfiguration) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return SHA256.hex((try? Array(encoder.encode(configuration))) ?? [])
    }

    /// Connects (in the background: a broker that is down is retried, nothing waits for it) and
    /// starts the monitor thread.
    public func start() throws {
        try client.start()
        let client = self.client, sources = self.sources, counters = self.counters, topics = self.topics
        let settings = self.settings, flags = self.flags
        try worker.start(name: "robotd-telemetry") { stop in
            var loop = MonitorLoop(client: client, sources: sources, counters: counters, topics: topics, settings: settings)
            loop.run(stop: stop, flags: flags)
            flags.finished.store(true, ordering: .releasing)
        }
    }

    /// Publishes the last figures (call it after the scheduler has stopped, so they are final) and
    /// `offline`, waits up to `flush` for them to go out, then disconnects cleanly.
    public func stop(flush: Duration = .seconds(2)) {
        worker.stop()
        let deadline = rt_monotonic_ns() + Int64(flush.nanoseconds)
        while flags.finished.load(ordering: .acquiring) && client.isConnected && client.queuedMessages > 0 && rt_monotonic_ns() < deadline {
            usleep(5_000)
        }
        client.stop()
    }
}

/// The monitor thread's state: the reporters (sequence numbers, windows, rate limits) live here,
/// on that thread only.
private struct MonitorLoop {
    let client: MQTTClient
    let sources: TelemetryMonitor.Sources
    let counters: TelemetryMonitor.Counters
    let topics: TelemetryTopics
    let settings: TelemetrySettings
    let clock: TelemetryClock
    var deadlines: DeadlinesReporter
    var queues = QueuesReporter()
    var inputs = InputsReporter()
    var sensors: SensorsReporter
    var safety: SafetyReporter
    var audit = AuditReporter()
    var auditCursor: AuditLog.Cursor
    /// The last remote reset request published (`RemoteResetLog`'s sequence).
    var remoteResetCursor: UInt64 = 0
    /// The last `plan` message handed over (`PlanJournal`'s sequence).
    var planCursor: UInt64 = 0
    /// `abilities` is still to go out on this connection (the queue refused it so far).
    var abilitiesPending = false
    var abilitiesSeq: UInt64 = 0
    var stateSeq: UInt64 = 0
    var lastState: StatePayload?
    var lastStateAt: Int64 = 0
    var connects: UInt64 = 0
    /// Audit requests answered so far, and when the last audit went out (monotonic ns).
    var auditRequestsAnswered: UInt64 = 0
    var lastAuditAt: Int64?
    /// Discovery configs not yet handed over since the last connect (the queue was full).
    var discoveryPending: [Int] = []
    /// When this connection's stale discovery configs are cleared (monotonic ns); nil: not yet connected.
    var staleSweepAt: Int64?
    /// Stale discovery configs whose removal the queue refused: tried again.
    var stalePending: Set<String> = []

    init(client: MQTTClient, sources: TelemetryMonitor.Sources, counters: TelemetryMonitor.Counters, topics: TelemetryTopics,
         settings: TelemetrySettings) {
        self.client = client
        self.sources = sources
        self.counters = counters
        self.topics = topics
        self.settings = settings
        let now = sources.scheduler.clock.now()
        clock = TelemetryClock(origin: sources.scheduler.dispatchOrigin ?? now, monotonicNow: now, unixNow: Date().timeIntervalSince1970)
        deadlines = DeadlinesReporter(thresholds: LevelThresholds(missRatioWarn: settings.missRatioWarn, missRatioError: settings.missRatioError,
                                                                  stalePeriods: settings.stalePeriods),
                                      missEventsPerSecond: settings.missEventsPerS)
        safety = SafetyReporter(channelNames: sources.runtime.channelNames, sensorNames: sources.runtime.sensorNames,
                                eventsPerSecond: settings.safetyEventsPerS)
        sensors = SensorsReporter(units: Dictionary(sources.configuration.sensors.compactMap { s in s.unit.map { (s.name, $0) } },
                                                    uniquingKeysWith: { first, _ in first }))
        // Every record still in the ring: the start's power-on latch is an intervention too.
        auditCursor = sources.runtime.audit.oldestCursor
    }

    mutating func run(stop: StopFlag, flags: TelemetryMonitor.Flags) {
        let interval = Int64(settings.intervalMs * 1e6)
        var next = rt_monotonic_ns() + interval
        while !stop.isSet {
            let now = rt_monotonic_ns()
            answerAuditRequests(flags.auditRequests.load(ordering: .acquiring), now: now)
            publishPlan()
            announceIfConnected()
            if !discoveryPending.isEmpty && client.isConnected { publishDiscovery() }
            if abilitiesPending && client.isConnected { publishAbilities() }
            sweepStaleDiscovery(now: now, final: false)
            if now >= next {
                cycle(final: false)
                next += interval
                if next < now { next = now + interval }  // fell behind (a stalled machine): no burst
            }
            // Short naps: a request for the audit and a stop are seen within 10 ms.
            let left = max(0, min(next - rt_monotonic_ns(), 10_000_000))
            if left > 0 { usleep(UInt32(left / 1000)) }
        }
        sweepStaleDiscovery(now: rt_monotonic_ns(), final: true)
        publishPlan()
        cycle(final: true)
        send(topics.status, Array(TelemetryTopics.statusOffline.utf8), qos: 1, retain: true)
    }

    /// One audit for every request since the last, at most once per `auditMinimumInterval`: the
    /// requests of a flood wait for the next turn, answered together (counted as coalesced).
    private mutating func answerAuditRequests(_ requests: UInt64, now: Int64) {
        guard requests > auditRequestsAnswered else { return }
        if let last = lastAuditAt, now - last < Int64(TelemetryMonitor.auditMinimumInterval.nanoseconds) { return }
        counters.auditRequestsCoalesced.add(requests - auditRequestsAnswered - 1, ordering: .relaxed)
        auditRequestsAnswered = requests
        lastAuditAt = now
        publishAudit()
    }

    /// After each (re)connect: the Home Assistant discovery configs (a broker restarted without
    /// persistence has lost them), then `online` and the state again (the last will may have said
    /// `offline` meanwhile).
    private mutating func announceIfConnected() {
        let now = client.counters.connects.load(ordering: .relaxed)
        guard now != connects, client.isConnected else { return }
        connects = now
        if let discovery = sources.discovery {
            discoveryPending = Array(discovery.messages.indices)
            publishDiscovery()
            staleSweepAt = rt_monotonic_ns() + Int64(StaleDiscovery.settle.nanoseconds)
        }
        abilitiesPending = sources.abilities != nil
        publishAbilities()
        send(topics.status, Array(TelemetryTopics.statusOnline.utf8), qos: 1, retain: true)
        publishState(force: true)
    }

    /// The ability vocabulary, retained at QoS 1 (a broker restarted without persistence has lost
    /// it); one the queue refuses is tried again on the next turn of the loop.
    private mutating func publishAbilities() {
        guard abilitiesPending, var payload = sources.abilities else { return }
        payload.seq = abilitiesSeq + 1
        payload.tUnixS = Date().timeIntervalSince1970
        guard send(topics.abilities, payload.encoded, qos: 1, retain: true) else { return }
        abilitiesSeq += 1
        abilitiesPending = false
    }

    /// The discovery configs still pending, retained at QoS 1; one the queue refuses is tried again
    /// on the next turn of the loop.
    private mutating func publishDiscovery() {
        guard let discovery = sources.discovery else { return }
        discoveryPending = discoveryPending.filter { i in
            let sent = send(discovery.messages[i].topic, discovery.messages[i].payload, qos: 1, retain: true)
            if sent { counters.discoveryPublished.add(1, ordering: .relaxed) }
            return !sent
        }
    }

    /// An empty retained payload on each of this node's configs the broker still held from an
    /// older configuration (collected since the connect), once they had `StaleDiscovery.settle`
    /// to arrive — at the end of a run, whatever came; one the queue refuses is tried again.
    private mutating func sweepStaleDiscovery(now: Int64, final: Bool) {
        guard let stale = sources.staleDiscovery, let at = staleSweepAt, final || now >= at, client.isConnected else { return }
        stalePending.formUnion(stale.take())
        for topic in stalePending.sorted() where send(topic, [], qos: 1, retain: true) {
            stalePending.remove(topic)
            counters.discoveryRemoved.add(1, ordering: .relaxed)
        }
    }

    private mutating func cycle(final: Bool) {
        counters.cycles.add(1, ordering: .relaxed)
        let report = sources.window.read()
        // Events first, so the `deadlines` that follows counts them (published or suppressed).
        for event in deadlines.missEvents(report, clock: clock) {
            if !send(topics.miss, TelemetryJSON.encode(event), qos: settings.eventQos, retain: false) { deadlines.noteDropped(event) }
        }
        let records = sources.runtime.audit.read(from: &auditCursor)
        let requests = sources.runtime.remoteResets.records(after: remoteResetCursor)
        remoteResetCursor = requests.last?.sequence ?? remoteResetCursor
        let rateLimited = sources.runtime.remoteResetLimit.drainSuppressed().map {
            RateLimitedResets(user: $0.user, count: $0.count, first: Instant(nanoseconds: $0.first), last: Instant(nanoseconds: $0.last))
        }
        for event in safety.events(records, remoteResets: requests.map(Self.request), rateLimitedResets: rateLimited,
                                   at: report.at, clock: clock) {
            if !send(topics.safety, TelemetryJSON.encode(event), qos: settings.eventQos, retain: false) { safety.noteDropped(event) }
        }
        // The reporters run every cycle (their sequence numbers advance, so a consumer sees the
        // gap a drop leaves); only the encoding is skipped when the queue is full.
        let deadlinesPayload = deadlines.deadlines(report, clock: clock, telemetry: telemetryCounters())
        send(topics.deadlines, TelemetryJSON.encode(deadlinesPayload), qos: settings.qos, retain: settings.retain)
        let queuesPayload = queues.queues(report, clock: clock)
        send(topics.queues, TelemetryJSON.encode(queuesPayload), qos: settings.qos, retain: settings.retain)
        let inputsPayload = inputs.inputs(inputReadings(at: report.at), at: report.at, clock: clock)
        send(topics.inputs, TelemetryJSON.encode(inputsPayload), qos: settings.qos, retain: settings.retain)
        let status = sources.runtime.status
        let values = sources.sensorSlots.map { (name: $0.name, value: status.sensors[$0.index]) }
        let sensorsPayload = sensors.sensors(values, at: report.at, clock: clock)
        send(topics.sensors, TelemetryJSON.encode(sensorsPayload), qos: settings.qos, retain: settings.retain)
        publishState(force: final)
    }

    private func telemetryCounters() -> TelemetryCounters {
        TelemetryCounters(published: counters.published.load(ordering: .relaxed), dropped: counters.dropped.load(ordering: .relaxed),
                          queued: client.queuedMessages, queuedBytes: client.queuedBytes, connected: client.isConnected,
                          auditRequestsCoalesced: counters.auditRequestsCoalesced.load(ordering: .relaxed))
    }

    /// The control connection's delivery counters (when control uses the broker).
    private func controlLinkCounters() -> ControlLinkCounters? {
        guard let control = sources.control else { return nil }
        let c = control.counters
        return ControlLinkCounters(connected: control.isConnected, connects: c.connects.load(ordering: .relaxed),
                                   disconnects: c.disconnects.load(ordering: .relaxed), published: c.published.load(ordering: .relaxed),
                                   publishFailures: c.publishFailures.load(ordering: .relaxed), confirmed: c.confirmed.load(ordering: .relaxed),
                                   droppedQueueFull: c.droppedQueueFull.load(ordering: .relaxed),
                                   discardedAtReconnect: c.discardedAtReconnect.load(ordering: .relaxed),
                                   superseded: c.superseded.load(ordering: .relaxed), expired: c.expired.load(ordering: .relaxed),
                                   unconfirmedCommands: c.unconfirmedCommands.load(ordering: .relaxed),
                                   safeValuesOverBound: c.safeValuesOverBound.load(ordering: .relaxed))
    }

    /// The remote stop topics' refusals (with `estop.remote` only).
    private func remoteCounters() -> RemoteInboundCounters? {
        guard sources.configuration.inboundTopics != nil else { return nil }
        let c = sources.runtime.remoteStopCounters
        return RemoteInboundCounters(retainedIgnored: c.retainedIgnored.load(ordering: .relaxed), unrecognised: c.unrecognised.load(ordering: .relaxed),
                                     unauthorised: c.unauthorised.load(ordering: .relaxed), queueFull: c.queueFull.load(ordering: .relaxed),
                                     rateLimited: c.rateLimited.load(ordering: .relaxed), keepalivesStale: c.keepAlivesStale.load(ordering: .relaxed),
                                     keepalivesUnrecognised: c.keepAlivesUnrecognised.load(ordering: .relaxed),
                                     keepalivesQos0: c.keepAlivesQoS0.load(ordering: .relaxed),
                                     keepalivesJumped: c.keepAlivesJumped.load(ordering: .relaxed),
                                     lastKeepalive: c.lastKeepAlive.load(ordering: .relaxed),
                                     namesTooLong: c.namesTooLong.load(ordering: .relaxed))
    }

    /// `state` when it changed (but for its clock and counters), at least every `state_interval_ms`.
    private mutating func publishState(force: Bool) {
        let now = rt_monotonic_ns()
        let status = sources.runtime.status
        // A handler stuck past its budget publishes no status: the control path's last word would
        // say `running` while the supervisor holds the actuators in their safe state.
        let stalled = sources.scheduler.stalledTask
        let mode = stalled != nil ? "stalled" : status.latched ? "stopped" : status.inRecovery ? "recovery"
            : status.holding ? "holding" : "running"
        let estop = StatePayload.EStopState(latched: status.latched, latchCause: status.latched ? status.latchCause?.description : nil,
                                            activeCauses: status.causes.kinds.map(\.description), linksUp: status.linksUp,
                                            resets: status.resets, refusedResets: status.refusedResets,
                                            latchSequence: status.latchSequence, holdCauses: status.holdCauses.kinds.map(\.description))
        let due = now - lastStateAt >= Int64(settings.stateIntervalMs * 1e6)
        let plan = planState()
        guard force || due || lastState?.mode != mode || lastState?.estop != estop || lastState?.plan?.changed(from: plan) ?? (plan != nil) else { return }
        stateSeq &+= 1
        let at = Instant(nanoseconds: now)
        let state = StatePayload(seq: stateSeq, tUnixS: clock.unix(at), robotId: sources.configuration.robot.id, version: RobotdVersion.current,
                                 uptimeS: clock.sinceStart(at), mode: mode, estop: estop, configSha256: sources.configHash,
                                 bootId: sources.run.bootId, pid: sources.run.pid, telemetry: telemetryCounters(), remote: remoteCounters(),
                                 plan: plan, controlLink: controlLinkCounters(), runId: sources.run.runId)
        // Remembered only once it went out: a change dropped by a full queue is sent again at the
        // next loop, so the retained `state` never keeps showing a stop that was reset.
        guard send(topics.state, TelemetryJSON.encode(state), qos: 1, retain: true) else { return }
        lastState = state
        lastStateAt = now
    }

    private func planState() -> StatePayload.PlanState? {
        sources.runtime.planning?.status.payload(abilities: sources.configuration.abilities.map(\.name))
    }

    /// The planner's new messages as they come (goals, verdicts, plans, progress, health): events,
    /// at `event_qos`, not retained; one the queue refuses is lost, and `seq` shows the gap.
    private mutating func publishPlan() {
        guard let journal = sources.plan else { return }
        for message in journal.messages(after: planCursor) {
            planCursor = message.seq
            send(topics.plan, TelemetryJSON.encode(message), qos: settings.eventQos, retain: false)
        }
    }

    private mutating func publishAudit() {
        let ring = sources.runtime.audit
        let payload = audit.audit(ring.recent(), capacity: ring.capacity, at: sources.scheduler.clock.now(), clock: clock,
                                  channels: sources.runtime.channelNames, sensors: sources.runtime.sensorNames)
        if send(topics.audit, TelemetryJSON.encode(payload), qos: settings.eventQos, retain: false) {
            counters.auditsPublished.add(1, ordering: .relaxed)
        }
    }

    /// Each configured input: its link, its traffic, what its decoder rejected.
    /// A remote reset request as the `safety` topic tells it.
    static func request(_ r: RemoteResetRecord) -> RemoteResetRequest {
        RemoteResetRequest(at: r.at, user: r.user, latch: r.latch, outcome: r.outcome.rawValue, reason: r.reason?.rawValue,
                           causes: r.causes.kinds.map(\.description))
    }

    private func inputReadings(at now: Instant) -> [InputReading] {
        let runtime = sources.runtime
        let startup = Duration.milliseconds(sources.configuration.safety.startupTimeoutMs)
        return sources.configuration.inputs.map { input in
            let arrivals = runtime.inputArrivals.first { $0.input == input.name }?.statistics
            var link = "up"
            if let l = runtime.links.first(where: { $0.input == input.name })?.link {
                link = !l.isUp ? "down" : l.isLost(now: now, since: clock.origin, startup: startup) ? "silent" : "up"
            } else if input.kind == "mqtt" {
                link = (sources.control?.isSubscribed ?? false) ? "up" : "down"
            }
            var rejected: UInt64?
            switch runtime.endpoints.first(where: { $0.name == input.name })?.endpoint {
            case .serial(let s)?: rejected = UInt64(max(0, s.rejected()))
            case .mqtt(let m)?: rejected = m.rejected.map { UInt64(max(0, $0())) }
            case .inputDevice?, nil: rejected = nil
            }
            return InputReading(name: input.name, kind: input.kind, link: link, messages: arrivals?.count ?? 0, gaps: arrivals?.gapCount ?? 0,
                                rejected: rejected, last: arrivals?.last, windowMaxInterval: arrivals?.takeWindowMaxInterval() ?? .zero)
        }
    }

    /// Hands a message to the connection; a refusal (queue full, not connected) is counted, never waited on.
    /// The payload is built only if the queue has room: with the broker stalled, a full queue
    /// makes each cycle cost a read of the window and the counters, not JSON nobody will send.
    @discardableResult
    private func send(_ topic: String, _ payload: @autoclosure () -> [UInt8], qos: Int, retain: Bool) -> Bool {
        guard !client.queueIsFull else {
            counters.dropped.add(1, ordering: .relaxed)
            return false
        }
        do {
            try client.publish(topic: topic, payload: payload(), qos: qos, retain: retain)
            counters.published.add(1, ordering: .relaxed)
            return true
        } catch {
            counters.dropped.add(1, ordering: .relaxed)
            return false
        }
    }
}

extension StatePayload.PlanState {
    /// A change worth a `state` of its own: all but `remaining`, which goes with the next periodic one.
    func changed(from other: StatePayload.PlanState?) -> Bool {
        guard var other else { return true }
        other.remaining = remaining
        return other != self
    }
}
