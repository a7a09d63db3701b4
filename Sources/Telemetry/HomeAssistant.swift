/// Home Assistant MQTT discovery (docs/mqtt.md, "Home Assistant"): the retained configs under
/// `<discovery_prefix>/<component>/robotd_<robot-id>/<object_id>/config` that make a robot appear
/// in Home Assistant as one device, every entity reading a telemetry topic robotd really
/// publishes, its availability bound to `status`. Pure values: the monitor publishes them.
public struct HomeAssistantDiscovery: Sendable, Equatable {
    /// What the entities are made from (the configuration's view, no runtime needed: `robotd run
    /// --ha-remove` computes the same topics without starting anything).
    public struct Robot: Sendable, Equatable {
        public var robotID: String
        public var version: String
        public var topics: TelemetryTopics
        /// `homeassistant` unless the configuration says otherwise.
        public var discoveryPrefix: String
        /// `deadlines` and `sensors` come this often: the entities expire after three intervals.
        public var intervalMs: Double
        /// The critical tasks (their miss streak is a stop): a p99 and a miss-count sensor each.
        public var criticalTasks: [String]
        /// The configuration's sensors that `sensors` carries: one sensor entity each.
        public var sensors: [Sensor]
        /// `estop.remote.stop_topic`: a "remote stop" button; nil: no button.
        public var remoteStopTopic: String?

        public init(robotID: String, version: String = RobotdVersion.current, topics: TelemetryTopics,
                    discoveryPrefix: String = HomeAssistantDiscovery.defaultPrefix, intervalMs: Double, criticalTasks: [String],
                    sensors: [Sensor], remoteStopTopic: String?) {
            self.robotID = robotID
            self.version = version
            self.topics = topics
            self.discoveryPrefix = discoveryPrefix
            self.intervalMs = intervalMs
            self.criticalTasks = criticalTasks
            self.sensors = sensors
            self.remoteStopTopic = remoteStopTopic
        }
    }

    /// A configured sensor as its entity shows it.
    public struct Sensor: Sendable, Equatable {
        public var name: String
        /// The configuration's `unit`: the entity's `unit_of_measurement`; nil: none.
        public var unit: String?
        public init(name: String, unit: String? = nil) {
            self.name = name
            self.unit = unit
        }
    }

    /// One retained discovery message.
    public struct Message: Sendable, Equatable {
        public var topic: String
        /// `sensor`, `binary_sensor`, `button`.
        public var component: String
        public var objectID: String
        public var payload: [UInt8]
    }

    public static let defaultPrefix = "homeassistant"
    /// What the remote-stop button publishes (any message on the stop topic stops: the word is for people reading the broker).
    public static let pressPayload = "stop"

    public let robot: Robot
    public let messages: [Message]

    public init(_ robot: Robot) {
        self.robot = robot
        messages = Self.build(robot)
    }

    /// `robotd_<robot-id>`: the device's identifier and the discovery topics' node id (the robot
    /// id is letters, digits, `-` and `_`, which is what Home Assistant allows there).
    public static func nodeID(robotID: String) -> String { "robotd_" + robotID }

    /// Every config of this node under the prefix, whatever its component and object id: what
    /// `--ha-remove` also clears (configs an earlier configuration published).
    public static func nodeFilter(discoveryPrefix: String, robotID: String) -> String {
        "\(discoveryPrefix)/+/\(nodeID(robotID: robotID))/+/config"
    }

    /// The empty retained payloads that make Home Assistant forget these entities.
    public var removals: [Message] { messages.map { Message(topic: $0.topic, component: $0.component, objectID: $0.objectID, payload: []) } }

    /// Seconds after which an entity fed by a periodic topic shows as unavailable: three intervals,
    /// whole seconds (Home Assistant's unit), at least one.
    public static func expireAfter(intervalMs: Double) -> Int { max(1, Int((3 * intervalMs / 1000).rounded(.up))) }

    // MARK: Building

    /// The JSON of one discovery config; absent keys are not written.
    struct Config: Encodable {
        var name: String
        var uniqueId: String
        var stateTopic: String?
        var valueTemplate: String?
        var jsonAttributesTopic: String?
        var jsonAttributesTemplate: String?
        var commandTopic: String?
        var payloadPress: String?
        var payloadOn: String?
        var payloadOff: String?
        var deviceClass: String?
        var stateClass: String?
        var unitOfMeasurement: String?
        var expireAfter: Int?
        var icon: String?
        var qos: Int?
        var retain: Bool?
        /// Every entity but the button: available while robotd's `status` says online.
        var availabilityTopic: String?
        var payloadAvailable: String? = TelemetryTopics.statusOnline
        var payloadNotAvailable: String? = TelemetryTopics.statusOffline
        /// The button: available only while robotd is online AND its links are up (the control
        /// connection, and the stop path's keep-alive when it has one): a press then reaches it.
        var availability: [Availability]?
        var availabilityMode: String?
        var device: Device

        struct Availability: Encodable {
            var topic: String
            var valueTemplate: String?
            var payloadAvailable = TelemetryTopics.statusOnline
            var payloadNotAvailable = TelemetryTopics.statusOffline
        }
        var origin: Origin

        struct Device: Encodable {
            var identifiers: [String]
            var name: String
            var manufacturer = "robotd"
            var model = "robotd"
            var swVersion: String
        }

        struct Origin: Encodable {
            var name = "robotd"
            var swVersion: String
        }
    }

    private static func build(_ robot: Robot) -> [Message] {
        let node = nodeID(robotID: robot.robotID)
        let device = Config.Device(identifiers: [node], name: robot.robotID, swVersion: robot.version)
        let origin = Config.Origin(swVersion: robot.version)
        let expire = expireAfter(intervalMs: robot.intervalMs)
        var used: Set<String> = []
        var messages: [Message] = []

        func add(_ component: String, _ object: String, _ fill: (inout Config) -> Void, name: String) {
            let objectID = unique(objectID(object), in: &used)
            var config = Config(name: name, uniqueId: node + "_" + objectID, availabilityTopic: robot.topics.status, device: device, origin: origin)
            fill(&config)
            messages.append(Message(topic: "\(robot.discoveryPrefix)/\(component)/\(node)/\(objectID)/config", component: component,
                                    objectID: objectID, payload: TelemetryJSON.encode(config)))
        }

        // Latched or not, from the retained `state`; why, in its attributes.
        add("binary_sensor", "stopped", { c in
            c.stateTopic = robot.topics.state
            c.valueTemplate = "{{ 'ON' if value_json.estop.latched or value_json.mode == 'stalled' else 'OFF' }}"
            c.payloadOn = "ON"
            c.payloadOff = "OFF"
            c.deviceClass = "problem"
            c.jsonAttributesTopic = robot.topics.state
            c.jsonAttributesTemplate = "{{ {'mode': value_json.mode, 'latch_cause': value_json.estop.latch_cause | default(none), "
                + "'active_causes': value_json.estop.active_causes} | tojson }}"
        }, name: "Stopped")

        for task in robot.criticalTasks {
            let name = jinjaString(task)
            // A window without a response sample renders nothing: Home Assistant keeps the last
            // value (an empty state is ignored), and expire_after shows a silent robot.
            add("sensor", task + "_response_p99", { c in
                c.stateTopic = robot.topics.deadlines
                c.valueTemplate = "{% for t in value_json.tasks if t.name == \(name) and t.window.response.count > 0 %}"
                    + "{{ t.window.response.p99_us }}{% endfor %}"
                c.deviceClass = "duration"
                c.stateClass = "measurement"
                // Home Assistant's spelling of µs (Greek mu), which its duration class converts.
                c.unitOfMeasurement = "\u{03BC}s"
                c.expireAfter = expire
                c.icon = "mdi:timer-outline"
            }, name: "\(task) response p99")
            // Since start: it only grows within a run and starts again at 0 with the next one,
            // which is what total_increasing means (Home Assistant's statistics add across restarts).
            add("sensor", task + "_misses", { c in
                c.stateTopic = robot.topics.deadlines
                c.valueTemplate = "{% for t in value_json.tasks if t.name == \(name) %}{{ t.since_start.misses }}{% endfor %}"
                c.stateClass = "total_increasing"
                c.expireAfter = expire
                c.icon = "mdi:timer-alert-outline"
            }, name: "\(task) deadline misses")
        }

        for sensor in robot.sensors {
            // No fresh value: `None`, which Home Assistant shows as unknown.
            add("sensor", "sensor_" + sensor.name, { c in
                c.stateTopic = robot.topics.sensors
                c.valueTemplate = "{% for s in value_json.sensors if s.name == \(jinjaString(sensor.name)) %}{{ s.value | default('None') }}{% endfor %}"
                c.stateClass = "measurement"
                c.unitOfMeasurement = sensor.unit
                c.expireAfter = expire
            }, name: sensor.name)
        }

        if let stop = robot.remoteStopTopic {
            add("button", "remote_stop", { c in
                c.availabilityTopic = nil
                c.payloadAvailable = nil
                c.payloadNotAvailable = nil
                c.availability = [Config.Availability(topic: robot.topics.status),
                                  Config.Availability(topic: robot.topics.state,
                                                      valueTemplate: "{{ 'online' if value_json.estop.links_up else 'offline' }}")]
                c.availabilityMode = "all"
                c.commandTopic = stop
                c.payloadPress = pressPayload
                c.qos = 1
                c.retain = false
                c.icon = "mdi:stop-circle-outline"
            }, name: "Remote stop (software, not an e-stop)")
        }
        return messages
    }

    /// Home Assistant's object ids: letters, digits, `_` and `-`; anything else becomes `_`.
    static func objectID(_ text: String) -> String {
        String(text.unicodeScalars.map { s -> Character in
            let ok = (s >= "a" && s <= "z") || (s >= "A" && s <= "Z") || (s >= "0" && s <= "9") || s == "_" || s == "-"
            return ok ? Character(s) : "_"
        })
    }

    /// Two names that map to the same object id get `_2`, `_3`…: unique ids must stay unique.
    static func unique(_ id: String, in used: inout Set<String>) -> String {
        var candidate = id
        var n = 2
        while used.contains(candidate) {
            candidate = "\(id)_\(n)"
            n += 1
        }
        used.insert(candidate)
        return candidate
    }

    /// A Jinja string literal: single-quoted, `\` and `'` escaped.
    static func jinjaString(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
    }
}
