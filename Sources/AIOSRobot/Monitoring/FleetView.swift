import Foundation
import SafetyGuard
import Telemetry

/// What `robotd monitor` knows of the robots under one topic prefix, built from their telemetry
/// messages only (docs/mqtt.md): a value fed one message at a time, with the time passed in, so
/// that the view and its rendering are tested from recorded payloads without a broker or a clock.
/// A payload that is not JSON or does not match its topic's type is counted and described, never
/// trusted and never a crash.
public struct FleetView: Sendable {
    public struct Settings: Sendable, Equatable {
        /// What comes before the robot id level (`robotd/`: topics `robotd/<id>/…`).
        public var prefix: String
        /// One robot, or nil for every robot under the prefix.
        public var robotID: String?
        /// Safety and miss events kept per robot (the latest).
        public var recentEvents: Int
        /// A robot whose last `deadlines` is older than this many of its intervals is stale.
        public var staleIntervals: Double

        public init(prefix: String = "robotd/", robotID: String? = nil, recentEvents: Int = 5, staleIntervals: Double = 3) {
            self.prefix = prefix
            self.robotID = robotID
            self.recentEvents = max(0, recentEvents)
            self.staleIntervals = staleIntervals
        }
    }

    /// The topics the view reads under `<prefix><id>/`; anything else there (the audit, inbound
    /// topics) is not telemetry it shows.
    public static let topics = ["status", "state", "deadlines", "deadlines/miss", "queues", "inputs", "safety", "plan"]

    /// The subscriptions that select these robots (`+` for every robot).
    public static func subscriptions(_ settings: Settings) -> [String] {
        topics.map { settings.prefix + (settings.robotID ?? "+") + "/" + $0 }
    }

    /// The monitor's own connection to the broker.
    public enum Link: Sendable, Equatable {
        case connecting
        case connected
        /// Not connected, with the last reason in words ("connection refused"); being retried.
        case down(String)
    }

    /// A payload refused: where it came and why, in words.
    public struct BadPayload: Sendable, Equatable {
        public var topic: String
        public var reason: String
    }

    /// One robot as its messages describe it; nil: no such message yet.
    public struct Robot: Sendable {
        public let id: String
        /// `online` or `offline` (the `status` topic, `offline` also the broker's last will).
        public var status: String?
        public var state: StatePayload?
        public var deadlines: DeadlinesPayload?
        public var queues: QueuesPayload?
        public var inputs: InputsPayload?
        /// The latest safety events (repeated summaries folded into one) and miss events, oldest first.
        public var safetyRecent: [SafetyEvent] = []
        public var missRecent: [MissEvent] = []
        /// What the `plan` messages seen said (nil: none seen; a robot without abilities sends none).
        public var plan: PlanActivity?
        public var safetyEvents: UInt64 = 0
        public var missEvents: UInt64 = 0
        /// Messages accepted, and refused (not JSON, not the topic's type).
        public var messages: UInt64 = 0
        public var badPayloads: UInt64 = 0
        public var lastBadPayload: BadPayload?
        /// `deadlines` messages this view missed, from jumps in their `seq` (a restart is no gap).
        public var deadlinesGaps: UInt64 = 0
        /// When the view first heard of it and last heard from it (seconds on the caller's clock).
        public var firstSeen: Double
        public var lastMessage: Double
        /// When the last `deadlines` arrived that was sent now, not replayed as retained history.
        public var liveDeadlinesAt: Double?

        init(id: String, at: Double) {
            self.id = id
            firstSeen = at
            lastMessage = at
        }

        /// The robot said all it needs to be shown: its `state` and a `deadlines`, or that it is offline.
        public var hasReported: Bool { status == TelemetryTopics.statusOffline || (state != nil && deadlines != nil) }
    }

    public let settings: Settings
    public private(set) var robots: [String: Robot] = [:]
    /// The caller's clock (seconds): ages and staleness are measured against it.
    public private(set) var now: Double
    public var link: Link = .connecting
    /// Where the monitor is connected, as it says it on screen (`127.0.0.1:1883`).
    public var broker: String

    public init(settings: Settings, broker: String = "", now: Double = 0) {
        self.settings = settings
        self.broker = broker
        self.now = now
    }

    /// Robots sorted by id.
    public var sortedRobots: [Robot] { robots.values.sorted { $0.id < $1.id } }

    public var badPayloads: UInt64 { robots.values.reduce(0) { $0 + $1.badPayloads } }

    /// Moves the view's clock on (ages grow; a robot that stopped sending turns stale).
    public mutating func advance(to time: Double) { now = max(now, time) }

    /// One MQTT message. Topics outside the selection or not shown by the view are ignored;
    /// returns whether the message was a payload the view accepted.
    @discardableResult
    public mutating func receive(topic: String, payload: [UInt8], retained: Bool, at time: Double) -> Bool {
        advance(to: time)
        guard topic.hasPrefix(settings.prefix) else { return false }
        let rest = topic.dropFirst(settings.prefix.count)
        guard let slash = rest.firstIndex(of: "/") else { return false }
        let id = String(rest[..<slash]), sub = String(rest[rest.index(after: slash)...])
        guard !id.isEmpty, settings.robotID == nil || settings.robotID == id, Self.topics.contains(sub) else { return false }
        var robot = robots[id] ?? Robot(id: id, at: time)
        robot.lastMessage = time
        let accepted: Bool
        do {
            try Self.apply(sub, payload, retained: retained, at: time, to: &robot, keep: settings.recentEvents)
            robot.messages += 1
            accepted = true
        } catch {
            robot.badPayloads += 1
            robot.lastBadPayload = BadPayload(topic: sub, reason: "\(error)")
            accepted = false
        }
        robots[id] = robot
        return accepted
    }

    /// Why a payload was refused, in words.
    struct Refused: Error, CustomStringConvertible {
        let description: String
    }

    private static func apply(_ sub: String, _ payload: [UInt8], retained: Bool, at time: Double, to robot: inout Robot, keep: Int) throws {
        switch sub {
        case "status":
            let word = String(decoding: payload, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard word == TelemetryTopics.statusOnline || word == TelemetryTopics.statusOffline else {
                throw Refused(description: "`\(word.prefix(40))` is neither online nor offline")
            }
            robot.status = word
        case "state":
            robot.state = try decode(StatePayload.self, payload)
        case "deadlines":
            let deadlines = try decode(DeadlinesPayload.self, payload)
            // A seq that went back is a restart (each run counts from 1), not a gap.
            if let previous = robot.deadlines?.seq, deadlines.seq > previous + 1 { robot.deadlinesGaps += deadlines.seq - previous - 1 }
            robot.deadlines = deadlines
            // A retained `deadlines` is history: it does not say the robot is alive now.
            if !retained { robot.liveDeadlinesAt = time }
        case "queues":
            robot.queues = try decode(QueuesPayload.self, payload)
        case "inputs":
            robot.inputs = try decode(InputsPayload.self, payload)
        case "safety":
            var event = try decode(SafetyEvent.self, payload)
            robot.safetyEvents += 1
            // A stopped robot sends a summary of its refused commands every interval: folded into
            // the previous one of the same kind, channel and cause, so that they do not push the
            // latch itself out of the latest events.
            let r = event.record
            if r.kind == "summary", let i = robot.safetyRecent.lastIndex(where: {
                $0.record.kind == "summary" && $0.record.summaryOf == r.summaryOf && $0.record.channel == r.channel
                    && $0.record.fault == r.fault && $0.record.origin == r.origin && $0.record.user == r.user
            }) {
                let earlier = robot.safetyRecent.remove(at: i).record
                event.record.count = (earlier.count ?? 0) + (r.count ?? 0)
                event.record.firstAtS = earlier.firstAtS ?? earlier.atS
            }
            robot.safetyRecent.append(event)
            if robot.safetyRecent.count > keep { robot.safetyRecent.removeFirst(robot.safetyRecent.count - keep) }
        case "plan":
            var activity = robot.plan ?? PlanActivity()
            activity.receive(try decode(PlanTopicPayload.self, payload))
            robot.plan = activity
        case "deadlines/miss":
            robot.missRecent.append(try decode(MissEvent.self, payload))
            robot.missEvents += 1
            if robot.missRecent.count > keep { robot.missRecent.removeFirst(robot.missRecent.count - keep) }
        default:
            break
        }
    }

    private static func decode<T: Decodable>(_ type: T.Type, _ payload: [UInt8]) throws -> T {
        guard (try? JSONSerialization.jsonObject(with: Data(payload), options: [.fragmentsAllowed])) != nil else {
            throw Refused(description: "not JSON")
        }
        do {
            return try TelemetryJSON.decode(type, from: payload)
        } catch let error as DecodingError {
            throw Refused(description: words(error))
        }
    }

    /// A decoding error as a person reads it: the key path in the wire's snake_case.
    static func words(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            keys.map { $0.intValue.map { "[\($0)]" } ?? snakeCase($0.stringValue) }.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
        }
        switch error {
        case .keyNotFound(let key, let context):
            let at = path(context.codingPath)
            return "missing key `\(snakeCase(key.stringValue))`" + (at.isEmpty ? "" : " in `\(at)`")
        case .typeMismatch(let type, let context):
            let at = path(context.codingPath)
            // Every payload is an object: a mismatch at the top is an array, a string, a number.
            return at.isEmpty ? "not a JSON object" : "`\(at)` is not a \(type)"
        case .valueNotFound(let type, let context): return "`\(path(context.codingPath))` is null, not a \(type)"
        case .dataCorrupted(let context):
            let at = path(context.codingPath)
            return at.isEmpty ? "not JSON" : "`\(at)`: \(context.debugDescription)"
        @unknown default: return "does not match its topic's payload"
        }
    }

    static func snakeCase(_ key: String) -> String {
        var out = ""
        for c in key {
            if c.isUppercase {
                out += "_" + c.lowercased()
            } else {
                out.append(c)
            }
        }
        return out
    }

    // MARK: What the view concludes

    /// The robot's telemetry interval: its last window (1 s, the default, before any).
    public func interval(_ robot: Robot) -> Double {
        max(robot.deadlines?.windowS ?? 1, 0.001)
    }

    /// Seconds since the robot's last live `deadlines` (since the view first heard of it, when none yet).
    public func deadlinesAge(_ robot: Robot) -> Double { now - (robot.liveDeadlinesAt ?? robot.firstSeen) }

    /// No live `deadlines` for `staleIntervals` of its interval: what it shows is old.
    public func isStale(_ robot: Robot) -> Bool { deadlinesAge(robot) > settings.staleIntervals * interval(robot) }

    /// Every robot with a `deadlines` has its `queues` and `inputs` too (the same cycle sends them
    /// right after it).
    public var isSettled: Bool { robots.values.allSatisfy { $0.deadlines == nil || ($0.queues != nil && $0.inputs != nil) } }

    /// Every selected robot has reported (for `--once`): the named one, or, for `+`, at least one
    /// and all of those seen.
    public var isComplete: Bool {
        if let id = settings.robotID { return robots[id]?.hasReported ?? false }
        return !robots.isEmpty && robots.values.allSatisfy(\.hasReported)
    }
}

/// Stop causes (the guard's `FaultKind` names on the wire) in words.
public enum StopCauseWords {
    public static func words(_ cause: String) -> String {
        guard let kind = (0..<64).lazy.compactMap(FaultKind.init(rawValue:)).first(where: { $0.description == cause }) else { return cause }
        return words(kind)
    }

    public static func words(_ kind: FaultKind) -> String {
        switch kind {
        case .emergencyStopInput: "e-stop pressed"
        case .deadlineFault: "deadline fault (a critical task missed repeatedly)"
        case .staleSensor: "stale sensor"
        case .workspace: "left the workspace"
        case .actuatorFailure: "actuator failure"
        case .connectionLost: "connection lost"
        case .commandWatchdog: "command watchdog (no fresh command)"
        case .operatorRequest: "operator request"
        case .estopDeviceLost: "e-stop device lost"
        case .silentSensor: "silent sensor (never reported)"
        case .runaway: "runaway wheel"
        case .standstill: "motion during a stop"
        case .dispatchStall: "dispatch stall (handler past its budget)"
        case .valueInterlock: "value interlock (a reading beyond its limit)"
        case .remoteStop: "remote stop (MQTT)"
        case .powerOn: "started latched (power-on)"
        case .invalidSample: "invalid sample"
        case .stalledWheel: "stalled wheel"
        case .estopUnknown: "e-stop level unknown (device opened)"
        }
    }
}
