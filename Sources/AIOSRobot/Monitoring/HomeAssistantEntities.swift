import Foundation
import Glibc
import Platform
import RobotConfig
import Synchronization
import Telemetry
import Transports

/// The Home Assistant entities of a configuration (docs/mqtt.md, "Home Assistant"), and their
/// removal (`robotd run --ha-remove`). Made from the configuration alone, so that the removal
/// computes exactly the topics a run publishes without starting the robot.
public enum HomeAssistantEntities {
    /// The discovery configs a run publishes; nil: no `mqtt`, telemetry off, or `home_assistant` off.
    public static func discovery(for configuration: RobotConfiguration) -> HomeAssistantDiscovery? {
        guard let mqtt = configuration.mqtt, let settings = mqtt.homeAssistant else { return nil }
        let telemetry = mqtt.telemetry ?? TelemetrySettings()
        guard telemetry.enabled else { return nil }
        return HomeAssistantDiscovery(robot(configuration, discoveryPrefix: settings.discoveryPrefix, telemetry: telemetry))
    }

    /// What the entities are made from, for any discovery prefix (the removal's, when the
    /// configuration has discovery off).
    public static func robot(_ configuration: RobotConfiguration, discoveryPrefix: String,
                             telemetry: TelemetrySettings? = nil) -> HomeAssistantDiscovery.Robot {
        let telemetry = telemetry ?? configuration.mqtt?.telemetry ?? TelemetrySettings()
        let remoteStop = configuration.inboundTopics?.stop
        return HomeAssistantDiscovery.Robot(
            robotID: configuration.robot.id, topics: TelemetryTopics(prefix: configuration.topicPrefix),
            discoveryPrefix: discoveryPrefix, intervalMs: telemetry.intervalMs, criticalTasks: criticalTasks(configuration),
            sensors: sensorsPublished(configuration).map { name in
                HomeAssistantDiscovery.Sensor(name: name, unit: configuration.sensors.first { $0.name == name }?.unit)
            }, remoteStopTopic: remoteStop)
    }

    /// The scheduler's critical tasks as the runtime builds them: each proposing policy marked
    /// `critical`, then the guard's own task.
    public static func criticalTasks(_ configuration: RobotConfiguration) -> [String] {
        configuration.policies.filter { $0.critical && !(RobotKinds.policy($0.kind)?.spec.isFilter ?? false) }.map(\.name)
            + [RobotRuntime.guardTaskName]
    }

    /// The configuration's sensors that `sensors` carries (the runtime's status holds the first
    /// `RuntimeStatus.sensorCapacity`).
    public static func sensorsPublished(_ configuration: RobotConfiguration) -> [String] {
        Array(configuration.sensors.map(\.name).prefix(RuntimeStatus.sensorCapacity))
    }

    /// What `--ha-remove` did.
    public struct Removal: Sendable {
        public var discoveryPrefix: String
        /// Every topic cleared: the configuration's entities and any other config of this robot's
        /// node found retained (an earlier configuration's), sorted.
        public var topics: [String]
        /// Of those, the ones found retained under the node before the removal.
        public var foundRetained: [String]
    }

    public struct RemovalError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Publishes the empty retained payloads that make Home Assistant forget this robot's entities:
    /// those this configuration publishes, and every other config found retained under its node
    /// (`<prefix>/+/robotd_<id>/+/config`: a task renamed since). Waits until the broker has
    /// acknowledged each (QoS 1), then disconnects.
    public static func remove(_ configuration: RobotConfiguration, settle: Duration = .milliseconds(500),
                              timeout: Duration = .seconds(10)) throws -> Removal {
        guard let m = configuration.mqtt else { throw RemovalError(description: "the configuration has no `mqtt` section: no broker to remove entities from") }
        let prefix = m.homeAssistant?.discoveryPrefix ?? HomeAssistantDiscovery.defaultPrefix
        let expected = HomeAssistantDiscovery(robot(configuration, discoveryPrefix: prefix)).removals.map(\.topic)
        let found = Mutex<Set<String>>([])
        let node = HomeAssistantDiscovery.nodeFilter(discoveryPrefix: prefix, robotID: configuration.robot.id)
        let base = m.clientID ?? "robotd-\(configuration.robot.id)"
        let broker = try BrokerAddress(m.broker)
        let client = try MQTTClient(options: MQTTOptions(
            host: broker.host, port: broker.port, clientID: "\(base)-ha-remove-\(getpid())",
            username: m.username, password: try RobotDaemon.password(m), caFile: m.caFile,
            keepaliveSeconds: max(1, Int(m.keepaliveS)))) { message in
            // A retained, non-empty config is one Home Assistant still has.
            if message.retained && !message.payload.isEmpty { found.withLock { _ = $0.insert(message.topic) } }
        }
        try client.subscribe(.init(filter: node, qos: 1))
        try client.start()
        defer { client.stop() }
        let deadline = ContinuousClock.now + timeout
        while !(client.isConnected && client.counters.subscribed.load(ordering: .relaxed) >= 1) {
            guard ContinuousClock.now < deadline else {
                throw RemovalError(description: "no answer from the broker \(m.broker) within \(timeout): nothing removed")
            }
            usleep(10_000)
        }
        // The broker sends the retained messages right after the SUBACK: a moment for them.
        usleep(UInt32(settle.components.seconds * 1_000_000 + settle.components.attoseconds / 1_000_000_000_000))
        let foundTopics = found.withLock { $0 }
        let topics = Set(expected).union(foundTopics).sorted()
        for topic in topics { try client.publish(topic: topic, payload: [], qos: 1, retain: true) }
        while client.queuedMessages > 0 {
            guard ContinuousClock.now < deadline else {
                throw RemovalError(description: "the broker did not acknowledge \(client.queuedMessages) of \(topics.count) removals within \(timeout)")
            }
            usleep(10_000)
        }
        return Removal(discoveryPrefix: prefix, topics: topics, foundRetained: foundTopics.sorted())
    }
}
