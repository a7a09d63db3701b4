import AIOSRobot
import CRealtime
import Foundation
import Planner
import Synchronization
import Telemetry
import Transports

/// `robotd mcp`'s one connection to the broker: a client of a running robotd, never of a device.
/// It keeps the latest of the robot's telemetry (`status`, `state`, `sensors`, `deadlines`,
/// `abilities`, the recent `plan` messages and the last `audit`) as the network thread hands them
/// over, and publishes only three things: a goal (`goal/<user>`, an ability call), the remote
/// stop (`estop`) and an audit request (`audit/request`). Payloads are kept as data; the ones it
/// reads (state, abilities, plan) are decoded into their types, and one that does not decode is
/// counted and otherwise ignored.
public final class RobotLink: Sendable {
    public struct Settings: Sendable {
        /// The robot's topic prefix (`robotd/<id>/`).
        public var prefix: String
        public var robotID: String
        /// The goal topic's last level (the broker's ACL ties it to the login).
        public var user: String
        public init(prefix: String, robotID: String, user: String) {
            self.prefix = prefix
            self.robotID = robotID
            self.user = user
        }
    }

    /// One `plan` message as it arrived, numbered here (the robot's `seq` restarts with it).
    public struct PlanMessage: Sendable {
        public var index: UInt64
        public var payload: PlanTopicPayload
        public var raw: [UInt8]
    }

    /// What the network thread leaves for the server.
    struct Seen: Sendable {
        var link: String = "connecting"
        var status: String?
        var state: [UInt8]?
        var stateDecoded: StatePayload?
        /// `state` messages decoded, counted here: one numbered after a call was sent was
        /// published after it.
        var stateIndex: UInt64 = 0
        /// The decoded `state` came as the robot published it, not as the broker's retained copy
        /// replayed at a subscribe (which may be a previous run's).
        var stateLive = false
        var sensors: [UInt8]?
        var deadlines: [UInt8]?
        var abilities: [UInt8]?
        var abilitiesDecoded: AbilitiesPayload?
        /// Changes of `abilities` (a new vocabulary: the tool list changed).
        var abilitiesVersion: UInt64 = 0
        var plan: [PlanMessage] = []
        var planIndex: UInt64 = 0
        var audit: [UInt8]?
        var audits: UInt64 = 0
        var badPayloads: UInt64 = 0
        var lastBadPayload: String?
    }

    /// The `plan` messages kept for the resource and for answers (the newest).
    public static let planKept = 256
    /// The largest payload kept per topic: a robot's telemetry is far below it.
    static let payloadLimit = 1 << 20

    public let settings: Settings
    public let topics: TelemetryTopics
    let client: MQTTClient
    private let seen: Shared
    private let subscriptionCount: Int

    private final class Shared: Sendable {
        let value = Mutex(Seen())
    }

    /// Created here, nonisolated, so that the callbacks handed to libmosquitto's thread never carry
    /// an actor's isolation.
    public nonisolated init(options: MQTTOptions, settings: Settings) throws {
        self.settings = settings
        let topics = TelemetryTopics(prefix: settings.prefix)
        self.topics = topics
        let seen = Shared()
        self.seen = seen
        client = try MQTTClient(options: options, onEvent: { event in
            let link: String
            switch event {
            case .connected: link = "connected"
            case .disconnected(code: 0): return  // our own DISCONNECT at the end
            case .disconnected, .connectRefused, .connectFailed: link = event.reason
            }
            seen.value.withLock { $0.link = link }
        }, onMessage: { message in
            seen.value.withLock { Self.receive(message, topics: topics, into: &$0) }
        })
        let filters = [topics.status, topics.state, topics.sensors, topics.deadlines, topics.abilities, topics.plan, topics.audit]
        subscriptionCount = filters.count
        for filter in filters { try client.subscribe(.init(filter: filter, qos: 1)) }
    }

    /// One message into what is kept (on the network thread, under the lock).
    static func receive(_ message: MQTTMessage, topics: TelemetryTopics, into s: inout Seen) {
        let payload = message.payload
        guard payload.count <= payloadLimit else {
            bad(&s, "\(message.topic): \(payload.count) bytes, more than robotd sends")
            return
        }
        switch message.topic {
        case topics.status:
            s.status = String(decoding: payload, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        case topics.state:
            s.state = payload
            do {
                s.stateDecoded = try TelemetryJSON.decode(StatePayload.self, from: payload)
                s.stateIndex += 1
                s.stateLive = !message.retained
            } catch {
                bad(&s, "state: \(error)")
            }
        case topics.sensors:
            s.sensors = payload
        case topics.deadlines:
            s.deadlines = payload
        case topics.abilities:
            guard payload != s.abilities else { return }
            s.abilities = payload.isEmpty ? nil : payload
            s.abilitiesVersion += 1
            if payload.isEmpty {
                s.abilitiesDecoded = nil  // cleared by hand (mosquitto_pub -r -n)
            } else {
                do { s.abilitiesDecoded = try AbilitiesPayload.decode(payload) } catch {
                    s.abilitiesDecoded = nil
                    bad(&s, "abilities: \(error)")
                }
            }
        case topics.plan:
            // Events, never retained by robotd: one that is replayed is history, not an answer.
            guard !message.retained else { return }
            do {
                let decoded = try TelemetryJSON.decode(PlanTopicPayload.self, from: payload)
                s.planIndex += 1
                s.plan.append(PlanMessage(index: s.planIndex, payload: decoded, raw: payload))
                if s.plan.count > planKept { s.plan.removeFirst(s.plan.count - planKept) }
            } catch {
                bad(&s, "plan: \(error)")
            }
        case topics.audit:
            guard !message.retained else { return }
            s.audit = payload
            s.audits += 1
        default:
            break
        }
    }

    private static func bad(_ s: inout Seen, _ why: String) {
        s.badPayloads += 1
        s.lastBadPayload = String(why.prefix(300))
    }

    /// Connects in the background (a broker that is down is retried with backoff).
    public func start() throws { try client.start() }
    public func stop() { client.stop() }

    /// Every subscription granted: the retained `status`, `state` and `abilities` follow at once.
    public var subscribed: Bool {
        client.isConnected && client.counters.subscribed.load(ordering: .relaxed) >= UInt64(subscriptionCount)
    }

    public var isConnected: Bool { client.isConnected }

    var current: Seen { seen.value.withLock { $0 } }

    /// Waits (up to `timeout`) until subscribed, then a moment for the retained messages.
    public func settle(timeout: Duration) async {
        let clock = ContinuousClock()
        let end = clock.now + timeout
        while !subscribed && clock.now < end { try? await Task.sleep(for: .milliseconds(20)) }
        guard subscribed else { return }
        let settleEnd = min(end, clock.now + .milliseconds(300))
        while clock.now < settleEnd && current.abilities == nil { try? await Task.sleep(for: .milliseconds(20)) }
    }

    // MARK: What the robot said

    public var status: String? { current.status }
    public var linkState: String { current.link }
    public var abilitiesVersion: UInt64 { current.abilitiesVersion }
    /// Payloads that did not decode, and the last one's problem.
    public var badPayloads: (count: UInt64, last: String?) {
        let s = current
        return (s.badPayloads, s.lastBadPayload)
    }

    /// The published vocabulary, when it is the live robot's: a vocabulary whose configuration
    /// hash differs from the retained `state`'s is left over from another configuration.
    public var vocabulary: Vocabulary {
        let s = current
        guard let abilities = s.abilitiesDecoded else {
            return s.abilities == nil ? .none : .unreadable(s.lastBadPayload ?? "not an abilities payload")
        }
        if let state = s.stateDecoded, state.configSha256 != abilities.configSha256 {
            return .stale(abilities)
        }
        return .live(abilities)
    }

    public enum Vocabulary: Sendable {
        case none
        case unreadable(String)
        /// From another configuration than the robot's `state` reports now.
        case stale(AbilitiesPayload)
        case live(AbilitiesPayload)
    }

    /// The latest payload of a telemetry topic, as it came.
    public func latest(_ topic: Topic) -> [UInt8]? {
        let s = current
        switch topic {
        case .status: return s.status.map { Array($0.utf8) }
        case .state: return s.state
        case .sensors: return s.sensors
        case .deadlines: return s.deadlines
        case .abilities: return s.abilities
        }
    }

    public enum Topic: Sendable { case status, state, sensors, deadlines, abilities }

    /// The `plan` messages kept, oldest first, after `index` (0: all).
    public func planMessages(after index: UInt64 = 0) -> [PlanMessage] {
        seen.value.withLock { s in s.plan.filter { $0.index > index } }
    }

    var planIndex: UInt64 { seen.value.withLock { $0.planIndex } }

    // MARK: Asking

    public enum AskError: Error, CustomStringConvertible, Sendable {
        case notConnected(String)
        case noAnswer(String)
        public var description: String {
            switch self {
            case .notConnected(let why), .noAnswer(let why): why
            }
        }
    }

    private var broker: String { "\(client.options.host):\(client.options.port)" }

    func requireConnection() throws(AskError) {
        guard client.isConnected else {
            throw .notConnected("not connected to the broker \(broker) (\(current.link)): nothing was sent")
        }
    }

    /// The audit: a request on `audit/request`, then the next `audit` (robotd answers at most once a second).
    public func audit(timeout: Duration) async throws -> [UInt8] {
        try requireConnection()
        let before = current.audits
        try client.publish(topic: topics.auditRequest, payload: Array("now".utf8), qos: 1, retain: false)
        let clock = ContinuousClock()
        let end = clock.now + timeout
        while clock.now < end {
            let s = current
            if s.audits > before, let audit = s.audit { return audit }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw AskError.noAnswer("no audit from \(settings.robotID) within \(timeout) (robotd answers `audit/request` at most once a second; is it online and does the broker let this login write \(topics.auditRequest)?)")
    }

    /// Publishes one ability call as a goal (QoS 1, a fresh id) and returns its id, the index of
    /// the last `plan` message before it and that of the last `state`.
    func sendCall(ability: String, arguments: [String: Planner.JSONValue]) throws -> (id: String, after: UInt64, stateAfter: UInt64, bytes: Int) {
        try requireConnection()
        let id = UUID().uuidString.lowercased()
        let payload = AbilityCall.payload(ability: ability, arguments: arguments, id: id)
        guard payload.count <= 4096 else {
            throw AskError.notConnected("the call is \(payload.count) bytes, more than a goal may be (4096): nothing was sent")
        }
        let (after, stateAfter) = seen.value.withLock { ($0.planIndex, $0.stateIndex) }
        try client.publish(topic: GoalTopic.topic(prefix: settings.prefix, user: settings.user), payload: payload, qos: 1, retain: false)
        return (id, after, stateAfter, payload.count)
    }

    /// The remote stop on `estop` (QoS 1, not retained): any payload latches a robot with `estop.remote`.
    func sendStop() throws {
        try requireConnection()
        try client.publish(topic: settings.prefix + "estop", payload: Array("stop".utf8), qos: 1, retain: false)
    }

    var state: StatePayload? { current.stateDecoded }

    /// The robot's `state` when the robot published it after the `state` numbered `index`: a
    /// live message (not a retained copy replayed at a subscribe), numbered after it. Goal
    /// numbers restart with every run, so a `state` from before — the previous run's, retained —
    /// may speak of another goal with the same number.
    func state(publishedAfter index: UInt64) -> StatePayload? {
        let s = current
        guard s.stateIndex > index, s.stateLive else { return nil }
        return s.stateDecoded
    }
}
