/// What the schema cannot say: names that must exist, values that contradict each other, and
/// settings that would let a real machine fail open (move when it should not, or not stop when it
/// should). Runs on the same tree, after the schema pass, and reads values tolerantly: a value of
/// the wrong type was reported there and reads as absent here.
struct SemanticChecker {
    let root: Located
    let catalog: KindCatalog
    var diagnostics: Diagnostics
    /// Look host names up (DNS) for the warnings that compare hosts: `robotd check` only, never a
    /// run (its start must not wait on a resolver); literals are compared either way.
    let lookUpNames: Bool

    /// The first declaration of each name, per section.
    private var channels: [String: Located] = [:]
    private var sensors: [String: Located] = [:]
    private var inputs: [String: Located] = [:]
    private var channelOrder: [String] = []
    private var sensorOrder: [String] = []
    private var inputOrder: [String] = []
    /// Sensors some input feeds; channels some actuator carries (with where, for "carried twice").
    private var fedSensors: Set<String> = []
    private var carriedBy: [String: (actuator: String, line: Int)] = [:]

    init(root: Located, catalog: KindCatalog, diagnostics: Diagnostics, lookUpNames: Bool = false) {
        self.root = root
        self.catalog = catalog
        self.diagnostics = diagnostics
        self.lookUpNames = lookUpNames
    }

    mutating func check() {
        guard root.map != nil else { return }
        (channels, channelOrder) = declare("channels", noun: "channel")
        (sensors, sensorOrder) = declare("sensors", noun: "sensor")
        (inputs, inputOrder) = declare("inputs", noun: "input")
        _ = declare("policies", noun: "policy")
        _ = declare("actuators", noun: "actuator")

        checkRobot()
        checkSafety()
        checkMQTT()
        checkInputs()
        checkSensors()
        checkOdometry()
        checkChannels()
        checkWorkspace()
        checkEStop()
        checkInbound()
        checkPolicies()
        checkActuators()
        checkUnfedSensors()
        checkUncarriedChannels()
        checkAbilities()
        checkPlannerSources()
    }

    // MARK: Names

    /// Records each entry's name; a repeated name is reported at the repeat, naming the first.
    private mutating func declare(_ section: String, noun: String) -> ([String: Located], [String]) {
        var first: [String: Located] = [:]
        var order: [String] = []
        for (index, item) in (root[section]?.items ?? []).enumerated() {
            guard let nameNode = item["name"], let name = nameNode.string else { continue }
            if let earlier = first[name] {
                diagnostics.error(nameNode.position, KeyPath.child(KeyPath.item(section, index), "name"),
                                  "duplicate \(noun) name `\(name)`: already declared at line \(earlier.position.line)",
                                  allowed: "a name used once")
            } else {
                first[name] = item
                order.append(name)
            }
        }
        return (first, order)
    }

    /// Reports `name` unless it is declared in `target`'s section; returns whether it is.
    @discardableResult
    private mutating func reference(_ name: String, at position: SourcePosition, path: String,
                                    _ target: NameReference.Target) -> Bool {
        let (declared, order, section): ([String: Located], [String], String) = switch target {
        case .channel: (channels, channelOrder, "channels")
        case .sensor: (sensors, sensorOrder, "sensors")
        case .input: (inputs, inputOrder, "inputs")
        }
        if declared[name] != nil { return true }
        var message = "unknown \(target.rawValue) `\(name)`: not declared under `\(section)`"
        if let suggestion = closestMatch(to: name, in: order) { message += "; did you mean `\(suggestion)`?" }
        diagnostics.error(position, path, message, allowed: order.isEmpty ? "none declared" : wordList(order))
        return false
    }

    /// The names a kind's field refers to, each with its place.
    private func names(in node: Located, _ reference: NameReference, path: String) -> [(name: String, position: SourcePosition, path: String)] {
        switch node {
        case .scalar:
            return node.string.map { [($0, node.position, path)] } ?? []
        case .list(let list):
            return list.items.enumerated().compactMap { i, item in item.string.map { ($0, item.position, KeyPath.item(path, i)) } }
        case .map(let map):
            if reference.inKeys { return map.entries.map { ($0.key, $0.keyPosition, KeyPath.child(path, $0.key)) } }
            return map.entries.compactMap { e in e.value.string.map { ($0, e.value.position, KeyPath.child(path, e.key)) } }
        }
    }

    /// The catalog's spec for a kinded entry, if its kind is known.
    private func kindSpec(_ item: Located, in kinds: [KindSpec]) -> KindSpec? {
        item["kind"]?.string.flatMap { k in kinds.first { $0.kind == k } }
    }

    // MARK: Sections

    private mutating func checkRobot() {
        guard let id = root["robot"]?["id"], let text = id.string else { return }
        let allowed = text.unicodeScalars.allSatisfy { ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || $0 == "-" || $0 == "_" }
        if text.isEmpty || !allowed {
            diagnostics.error(id.position, "robot.id", "`\(text)` has characters that cannot go into MQTT topics and file names",
                              allowed: "letters, digits, - and _")
        }
    }

    /// `start_latched: false` is allowed (a simulator), but it is the weaker choice: said out loud.
    private mutating func checkSafety() {
        if let node = root["safety"]?["start_latched"], node.bool == false {
            diagnostics.warning(node.position, "safety.start_latched",
                                "false: after a start or a restart (systemd Restart=on-failure) the robot may move without a deliberate reset; keep true on hardware")
        }
    }

    /// Whether a channel moves something: continuous ones unless `motion: false`, discrete ones only
    /// with `motion: true` (the guard's `isMotion` default).
    private func isMotion(_ channel: Located) -> Bool {
        let motion = channel["motion"]?.bool
        return channel["kind"]?.string == "discrete" ? motion == true : motion != false
    }

    /// The heater of each thermostat policy: its first channel.
    private var thermostatHeaters: Set<String> {
        Set((root["policies"]?.items ?? []).compactMap { $0["kind"]?.string == "thermostat" ? $0["channels"]?.items.first?.string : nil })
    }

    /// A loopback broker (TLS adds nothing that the host's own protection does not give).
    private func isLoopback(_ host: String) -> Bool {
        let h = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        return h == "localhost" || h == "::1" || h.hasPrefix("127.")
    }

    private mutating func checkMQTT() {
        guard let mqtt = root["mqtt"], mqtt.map != nil else { return }
        if let broker = mqtt["broker"], let text = broker.string {
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            let port = parts.count >= 2 ? Int(parts[parts.count - 1]) : nil
            let host = parts.dropLast().joined(separator: ":")
            if parts.count < 2 || host.isEmpty || port == nil || !(1...65535).contains(port ?? 0) {
                diagnostics.error(broker.position, "mqtt.broker", "`\(text)` is not HOST:PORT", allowed: "e.g. 127.0.0.1:1883")
            } else if !isLoopback(host), !mqtt.has("ca_file") {
                diagnostics.warning(broker.position, "mqtt.broker",
                                    "`\(host)` is not this machine and `ca_file` is not set: stops, readings and commands cross the network without TLS (anyone on it can read or forge them)",
                                    allowed: "ca_file: the broker's CA certificate")
            }
        }
        if let env = mqtt.entry("password_env"), let file = mqtt.entry("password_file") {
            diagnostics.error(file.keyPosition, "mqtt.password_file",
                              "both password_env (line \(env.keyPosition.line)) and password_file are set: which one is meant?",
                              allowed: "one of them")
        }
        for key in ["password_env", "password_file"] {
            if let entry = mqtt.entry(key), !mqtt.has("username") {
                diagnostics.error(entry.keyPosition, "mqtt.\(key)", "a password without `username`: MQTT sends a password only with a user name",
                                  allowed: "add username")
            }
        }
        checkTelemetry(mqtt["telemetry"])
        checkHomeAssistant(mqtt["home_assistant"], telemetry: mqtt["telemetry"])
    }

    private mutating func checkInputs() {
        let estopInputs = Set(root["estop"]?["inputs"]?.strings ?? [])
        for (index, item) in (root["inputs"]?.items ?? []).enumerated() {
            let path = KeyPath.item("inputs", index)
            checkNeedsMQTT(item, path: path, noun: "input")
            checkInputLiveness(item, path: path)
            if let spec = kindSpec(item, in: catalog.inputs) {
                for field in spec.fields {
                    guard let ref = field.refersTo, let value = item[field.key] else { continue }
                    for n in names(in: value, ref, path: KeyPath.child(path, field.key)) {
                        if reference(n.name, at: n.position, path: n.path, ref.target), ref.target == .sensor {
                            fedSensors.insert(n.name)
                        }
                    }
                }
            }
            // Without the grab, another program may take the device exclusively (EVIOCGRAB) and
            // robotd would see no key at all: the e-stop and the deadman must not depend on that.
            if item["kind"]?.string == "evdev", let grab = item["grab"], grab.bool == false,
               let name = item["name"]?.string,
               estopInputs.contains(name) || (item["keys"]?.items ?? []).contains(where: { $0["action"]?.string == "deadman" }) {
                diagnostics.warning(grab.position, KeyPath.child(path, "grab"),
                                    "input `\(name)` carries the e-stop or the deadman but is not grabbed: a program that grabs the device makes robotd deaf to it (ignored for an input_event FIFO)",
                                    allowed: "true (the default)")
            }
            // A key mapped to the e-stop on an input the e-stop does not listen to: pressing it
            // would do nothing. That is the one button that must work.
            guard let name = item["name"]?.string, !estopInputs.contains(name) else { continue }
            for (k, key) in (item["keys"]?.items ?? []).enumerated() where isEStopAction(key["action"]?.string) {
                let position = key["action"]?.position ?? key.position
                diagnostics.error(position, KeyPath.child(KeyPath.item(KeyPath.child(path, "keys"), k), "action"),
                                  "this key is mapped to the e-stop but input `\(name)` is not listed in `estop.inputs`: pressing it would not stop the robot",
                                  allowed: "add `\(name)` to estop.inputs, or map the key to another action")
            }
        }
    }

    private func isEStopAction(_ action: String?) -> Bool { action == "estop" || action == "e-stop" }

    /// A link that can go silent must say how long silence may last (`link_timeout_ms`, where the
    /// kind has it), or say `none`; a safety reading over MQTT should not be fire-and-forget.
    private mutating func checkInputLiveness(_ item: Located, path: String) {
        guard let spec = kindSpec(item, in: catalog.inputs) else { return }
        if spec.fields.contains(where: { $0.key == "link_timeout_ms" }) {
            let lpath = KeyPath.child(path, "link_timeout_ms")
            if let node = item["link_timeout_ms"] {
                if node.string == "none" {
                    diagnostics.warning(node.position, lpath,
                                        "none: a link that goes silent is not a lost link; only its sensors' `max_age_ms` notice it")
                }
            } else {
                diagnostics.error(item.position, lpath,
                                  "missing: without it a device that stops talking is never a lost link (a stop); only its sensors' ages might notice",
                                  allowed: "a number of ms, or `none` written out (a warning)")
            }
        }
        if item["kind"]?.string == "mqtt", let qos = item["qos"], qos.integer == 0, let fed = item["feeds"]?.string,
           let sensor = sensors[fed], sensor["reaction"]?.string == "stop" || !(sensor["interlocks"]?.items ?? []).isEmpty {
            diagnostics.warning(qos.position, KeyPath.child(path, "qos"),
                                "0 for sensor `\(fed)`, which stops the robot or locks channels: a reading the broker or the network loses is not sent again",
                                allowed: "1 (the default) or 2")
        }
    }

    private mutating func checkNeedsMQTT(_ item: Located, path: String, noun: String) {
        guard let kind = item["kind"], kind.string == "mqtt", root["mqtt"] == nil else { return }
        diagnostics.error(kind.position, KeyPath.child(path, "kind"), "an `mqtt` \(noun) needs the `mqtt:` section (the broker)",
                          allowed: "add mqtt: {broker: HOST:PORT}")
    }

    private mutating func checkSensors() {
        let guardPeriod = root["safety"]?["guard_period_ms"]?.number ?? 10
        for (index, item) in (root["sensors"]?.items ?? []).enumerated() {
            let path = KeyPath.item("sensors", index)
            let reaction = item["reaction"]?.string
            if reaction == "stop", !item.has("stop_category") {
                diagnostics.error(item.position, KeyPath.child(path, "stop_category"), "missing: `reaction: stop` needs a stop category",
                                  allowed: "0, 1 or 2")
            }
            if let entry = item.entry("stop_category"), let reaction, reaction != "stop" {
                diagnostics.error(entry.keyPosition, KeyPath.child(path, "stop_category"),
                                  "is only used with `reaction: stop`, not `\(reaction)`: it would be ignored",
                                  allowed: "remove it, or reaction: stop")
            }
            if let maxAge = item["max_age_ms"], let age = maxAge.number, age < guardPeriod {
                diagnostics.warning(maxAge.position, KeyPath.child(path, "max_age_ms"),
                                    "shorter than safety.guard_period_ms (\(format(guardPeriod))): the guard notices a stale sensor up to a period late")
            }
            if let range = item["valid_range"] {
                let values = range.items.compactMap(\.number)
                if range.items.count > 2 {
                    diagnostics.error(range.position, KeyPath.child(path, "valid_range"), "has \(range.items.count) numbers",
                                      allowed: "[min, max]")
                } else if values.count == 2, !(values[0] < values[1]) {
                    diagnostics.error(range.position, KeyPath.child(path, "valid_range"),
                                      "min \(format(values[0])) is not below max \(format(values[1]))", allowed: "[min, max] with min < max")
                }
            }
            if let unit = item["unit"], let text = unit.string, !Self.isUnit(text) {
                diagnostics.error(unit.position, KeyPath.child(path, "unit"),
                                  "`\(text)` is no unit Home Assistant can show: empty, longer than \(Self.unitMaxLength) characters, or with a control character",
                                  allowed: "a short unit such as °C, m, m/s, % (quoted: \"%\"), or no `unit`")
            }
            for (i, interlock) in (item["interlocks"]?.items ?? []).enumerated() {
                let ipath = KeyPath.item(KeyPath.child(path, "interlocks"), i)
                let low = interlock["min"]?.number, high = interlock["max"]?.number
                if !interlock.has("min") && !interlock.has("max") {
                    diagnostics.error(interlock.position, ipath, "an interlock needs `min` or `max`", allowed: "min, max or both")
                }
                if let low, let high, !(low < high) {
                    diagnostics.error(interlock["min"]?.position ?? interlock.position, KeyPath.child(ipath, "min"),
                                      "min \(format(low)) is not below max \(format(high)): the interlock would always hold",
                                      allowed: "min < max")
                }
                for (c, channel) in (interlock["channels"]?.items ?? []).enumerated() {
                    if let name = channel.string {
                        reference(name, at: channel.position, path: KeyPath.item(KeyPath.child(ipath, "channels"), c), .channel)
                    }
                }
            }
        }
    }

    static let unitMaxLength = 32

    /// A sensor's unit: something to show beside a number (Home Assistant's unit_of_measurement).
    static func isUnit(_ text: String) -> Bool {
        !text.allSatisfy(\.isWhitespace) && text.count <= unitMaxLength
            && !text.unicodeScalars.contains { $0.properties.generalCategory == .control }
    }

    private mutating func checkUnfedSensors() {
        for (index, item) in (root["sensors"]?.items ?? []).enumerated() {
            guard let nameNode = item["name"], let name = nameNode.string, !fedSensors.contains(name),
                  sensors[name].map({ $0.position == item.position }) ?? false else { continue }
            diagnostics.warning(nameNode.position, KeyPath.child(KeyPath.item("sensors", index), "name"),
                                "no input feeds sensor `\(name)`: it never reports, so the guard holds motion and then stops",
                                allowed: "an input's `feeds` naming it")
        }
    }

    private mutating func checkOdometry() {
        guard let odometry = root["odometry"], odometry.map != nil else { return }
        if let encoders = odometry["encoders"], let name = encoders.string {
            reference(name, at: encoders.position, path: "odometry.encoders", .sensor)
        }
        var wheels: [String] = []
        for key in ["left_wheel", "right_wheel"] {
            guard let node = odometry[key], let name = node.string else { continue }
            wheels.append(name)
            guard reference(name, at: node.position, path: "odometry.\(key)", .channel) else { continue }
            if let channel = channels[name], channel["interface"]?.string != "velocity" {
                diagnostics.error(node.position, "odometry.\(key)", "channel `\(name)` is not a velocity channel: wheels are commanded in rad/s",
                                  allowed: "a channel with interface: velocity")
            }
        }
        if wheels.count == 2, wheels[0] == wheels[1], let node = odometry["right_wheel"] {
            diagnostics.error(node.position, "odometry.right_wheel", "the same channel as left_wheel", allowed: "two different channels")
        }
    }

    // MARK: Channels and limits

    /// Which limit keys mean something for each interface, and which must be there.
    private static let limitKeys: [String: (allowed: [String], required: [String], why: String)] = [
        "velocity": (["has_velocity_limits", "max_velocity", "has_acceleration_limits", "max_acceleration",
                      "has_deceleration_limits", "max_deceleration", "has_jerk_limits", "max_jerk"],
                     ["max_velocity"], "without it any speed passes"),
        "position": (["has_position_limits", "min_position", "max_position", "has_velocity_limits", "max_velocity",
                      "has_acceleration_limits", "max_acceleration", "has_jerk_limits", "max_jerk"],
                     ["min_position", "max_position"], "without them any position passes"),
        "effort": (["has_effort_limits", "max_effort"], ["max_effort"], "without it any effort passes"),
        "duty": (["min_duty", "max_duty", "max_duty_rate"], [], ""),
        "discrete": (["states", "min_on_time_s", "min_off_time_s", "max_switches_per_minute"], [], ""),
    ]

    /// ros2_control's flags and the values they enable.
    private static let limitFlags: [(flag: String, values: [String])] = [
        ("has_position_limits", ["min_position", "max_position"]),
        ("has_velocity_limits", ["max_velocity"]),
        ("has_acceleration_limits", ["max_acceleration"]),
        ("has_deceleration_limits", ["max_deceleration"]),
        ("has_jerk_limits", ["max_jerk"]),
        ("has_effort_limits", ["max_effort"]),
    ]

    private mutating func checkChannels() {
        let guardPeriod = root["safety"]?["guard_period_ms"]?.number ?? 10
        let wheels = Set(["left_wheel", "right_wheel"].compactMap { root["odometry"]?[$0]?.string })
        for (index, item) in (root["channels"]?.items ?? []).enumerated() {
            guard item.map != nil else { continue }
            let path = KeyPath.item("channels", index)
            let kind = item["kind"]?.string
            var interface: String?
            switch kind {
            case "continuous":
                if let node = item["interface"] {
                    interface = node.string.flatMap { Self.limitKeys[$0] != nil && $0 != "discrete" ? $0 : nil }
                } else {
                    diagnostics.error(item.position, KeyPath.child(path, "interface"),
                                      "missing: a continuous channel says what its value is; it decides what each limit bounds",
                                      allowed: "velocity, position, effort or duty")
                }
            case "discrete":
                interface = "discrete"
                if let entry = item.entry("interface") {
                    diagnostics.error(entry.keyPosition, KeyPath.child(path, "interface"),
                                      "a discrete channel has states, not an interface: it would be ignored", allowed: "remove it")
                }
            default:
                break
            }
            guard let interface else { continue }
            let limits = item["limits"]
            if let limits, limits.map != nil {
                checkLimits(limits, interface: interface, path: KeyPath.child(path, "limits"), isEnvelope: false)
            }
            for entry in item["envelopes"]?.map?.entries ?? [] {
                let epath = KeyPath.child(KeyPath.child(path, "envelopes"), entry.key)
                let origins = ["policy", "teleop", "planner"]
                if !origins.contains(entry.key) {
                    var message = "unknown command origin `\(entry.key)`"
                    if let s = closestMatch(to: entry.key, in: origins) { message += "; did you mean `\(s)`?" }
                    diagnostics.error(entry.keyPosition, epath, message, allowed: wordList(origins))
                }
                if entry.value.map != nil {
                    checkLimits(entry.value, interface: interface, path: epath, isEnvelope: true)
                    if let limits { checkEnvelopeNarrows(entry.value, base: limits, path: epath) }
                }
            }
            if interface == "velocity", let node = item["motion"], node.bool == false {
                diagnostics.error(node.position, KeyPath.child(path, "motion"),
                                  "a velocity channel moves something: with `motion: false` a hold (workspace edge, a sensor not yet reporting) would leave it moving",
                                  allowed: "true, or remove it")
            }
            if interface == "position" || interface == "effort", let node = item["motion"], node.bool == false {
                diagnostics.warning(node.position, KeyPath.child(path, "motion"),
                                    "false on a\(interface == "effort" ? "n" : "") \(interface) channel, which moves a joint: a hold (workspace edge, a sensor not yet reporting) would not stop it")
            }
            if let limits, limits.map != nil, interface == "velocity" || interface == "position", isMotion(item) {
                checkAccelerationLimit(limits, interface: interface, path: KeyPath.child(path, "limits"))
            }
            checkSafeValue(item, interface: interface, limits: limits, path: path)
            checkWatchdog(item, interface: interface, guardPeriod: guardPeriod, path: path)
            if interface == "discrete", let entry = item.entry("stop_rate") {
                diagnostics.error(entry.keyPosition, KeyPath.child(path, "stop_rate"),
                                  "a discrete channel switches, it has no ramp: it would be ignored", allowed: "remove it")
            }
            let mpath = KeyPath.child(path, "motion_monitor")
            let monitor = item.entry("motion_monitor")
            let isWheel = item["name"]?.string.map { wheels.contains($0) } ?? false
            if let monitor, monitor.value.string == "none" {
                if isWheel {
                    diagnostics.warning(monitor.value.position, mpath,
                                        "none: this wheel's measured speed is not compared with its command: a runaway, a wheel that does not stop or a stalled wheel goes unseen")
                }
            } else if let monitor, !isWheel {
                diagnostics.error(monitor.keyPosition, mpath,
                                  "needs a measured speed, and only the odometry wheels have one: it would never trip",
                                  allowed: "odometry.left_wheel or right_wheel channels")
            } else if monitor == nil, isWheel {
                diagnostics.error(item.position, mpath,
                                  "missing: this wheel has a measured speed (odometry); without a monitor a runaway, a wheel that does not stop or a stalled wheel goes unseen",
                                  allowed: "{tolerance: …, time_ms: …}, or `none` written out (a warning)")
            }
        }
    }

    /// A motion channel's speed must not jump: an acceleration limit, or `has_acceleration_limits:
    /// false` written out (a warning).
    private mutating func checkAccelerationLimit(_ limits: Located, interface: String, path: String) {
        guard !limits.has("max_acceleration") else { return }
        let flag = limits["has_acceleration_limits"]
        switch flag?.bool {
        case false?:
            diagnostics.warning(flag?.position ?? limits.position, KeyPath.child(path, "has_acceleration_limits"),
                                "false on a motion channel: any step in \(interface == "velocity" ? "speed" : "rate") passes the guard (standstill to full speed in one command)")
        case true?:
            break  // "is true but max_acceleration is missing" is reported by checkLimits
        case nil:
            diagnostics.error(limits.position, KeyPath.child(path, "max_acceleration"),
                              "missing: a motion channel needs an acceleration limit; without it any step in \(interface == "velocity" ? "speed" : "rate") passes (standstill to full speed in one command)",
                              allowed: "a number > 0, or has_acceleration_limits: false written out (a warning)")
        }
    }

    private mutating func checkLimits(_ limits: Located, interface: String, path: String, isEnvelope: Bool) {
        guard let rules = Self.limitKeys[interface], let map = limits.map else { return }
        let what = interface == "discrete" ? "a discrete channel" : "a \(interface) channel"
        for entry in map.entries where !rules.allowed.contains(entry.key) && ConfigurationSchema.limits.contains(where: { $0.key == entry.key }) {
            diagnostics.error(entry.keyPosition, KeyPath.child(path, entry.key),
                              "`\(entry.key)` is not a limit of \(what): it would be ignored",
                              allowed: wordList(rules.allowed))
        }
        for (flag, values) in Self.limitFlags where rules.allowed.contains(flag) {
            guard let flagNode = limits[flag], let enabled = flagNode.bool else { continue }
            let present = values.filter { limits.has($0) }
            if !enabled, let value = present.first, let line = limits.entry(value)?.keyPosition.line {
                diagnostics.error(flagNode.position, KeyPath.child(path, flag),
                                  "is false but `\(value)` is set (line \(line)): ros2_control would silently ignore the value",
                                  allowed: "remove the flag (a value enables its limit) or the value")
            }
            if enabled {
                for value in values where !limits.has(value) {
                    diagnostics.error(flagNode.position, KeyPath.child(path, flag), "is true but `\(value)` is missing",
                                      allowed: "set \(value)")
                }
            }
        }
        if !isEnvelope {
            for key in rules.required where !limits.has(key) {
                diagnostics.error(limits.position, KeyPath.child(path, key), "missing: \(what) needs \(key); \(rules.why)",
                                  allowed: describeLimit(key))
            }
        }
        for (low, high) in [("min_position", "max_position"), ("min_duty", "max_duty")] {
            if let lo = limits[low]?.number, let hi = limits[high]?.number, lo > hi, let node = limits[low] {
                diagnostics.error(node.position, KeyPath.child(path, low),
                                  "\(low) \(format(lo)) is above \(high) \(format(hi)) (line \(limits[high]?.position.line ?? 0))",
                                  allowed: "\(low) ≤ \(high)")
            }
        }
        if let states = limits["states"] {
            var seen: Set<Int> = []
            for (i, state) in states.items.enumerated() {
                if let s = state.integer, !seen.insert(s).inserted {
                    diagnostics.error(state.position, KeyPath.item(KeyPath.child(path, "states"), i), "state \(s) is listed twice",
                                      allowed: "each state once")
                }
            }
        }
    }

    private func describeLimit(_ key: String) -> String {
        ConfigurationSchema.limits.first { $0.key == key }?.type.allowedText ?? "a number"
    }

    /// Envelopes only narrow (the guard takes the tighter of the two): a wider one has no effect.
    private mutating func checkEnvelopeNarrows(_ envelope: Located, base: Located, path: String) {
        for key in ["max_velocity", "max_acceleration", "max_deceleration", "max_jerk", "max_effort", "max_duty_rate", "max_duty", "max_position"] {
            if let e = envelope[key]?.number, let b = base[key]?.number, e > b, let node = envelope[key] {
                diagnostics.warning(node.position, KeyPath.child(path, key),
                                    "\(format(e)) is wider than the channel's \(format(b)): an envelope only narrows, this one has no effect")
            }
        }
        for key in ["min_position", "min_duty"] {
            if let e = envelope[key]?.number, let b = base[key]?.number, e < b, let node = envelope[key] {
                diagnostics.warning(node.position, KeyPath.child(path, key),
                                    "\(format(e)) is wider than the channel's \(format(b)): an envelope only narrows, this one has no effect")
            }
        }
    }

    private mutating func checkSafeValue(_ item: Located, interface: String, limits: Located?, path: String) {
        guard let node = item["safe_value"], let value = node.number else { return }
        let spath = KeyPath.child(path, "safe_value")
        func outside(_ allowed: String) {
            diagnostics.error(node.position, spath, "\(format(value)) is outside the channel's limits: the guard could never apply it",
                              allowed: allowed)
        }
        switch interface {
        case "velocity":
            if value != 0 {
                diagnostics.error(node.position, spath, "a velocity channel's safe value is 0 (standstill): \(format(value)) would keep it moving in every stop",
                                  allowed: "0")
            }
        case "position":
            if let lo = limits?["min_position"]?.number, let hi = limits?["max_position"]?.number, lo <= hi, !(lo...hi).contains(value) {
                outside("\(format(lo))…\(format(hi))")
            }
        case "effort":
            if let max = limits?["max_effort"]?.number, abs(value) > max { outside("-\(format(max))…\(format(max))") }
        case "duty":
            let lo = limits?["min_duty"]?.number ?? 0, hi = limits?["max_duty"]?.number ?? 1
            if lo <= hi, !(lo...hi).contains(value) { outside("\(format(lo))…\(format(hi))") }
        case "discrete":
            let states = limits?["states"].map { $0.items.compactMap(\.integer) } ?? [0, 1]
            guard let state = node.integer, states.contains(state) else {
                diagnostics.error(node.position, spath, "\(format(value)) is not one of the channel's states",
                                  allowed: wordList(states.map(String.init)))
                return
            }
            if state != 0 {
                // An interlock or a thermostat relies on "safe" meaning off: there a state other
                // than 0 would switch the device on exactly when it must be off.
                let name = item["name"]?.string ?? ""
                let interlocked = (root["sensors"]?.items ?? []).contains { sensor in
                    (sensor["interlocks"]?.items ?? []).contains { ($0["channels"]?.strings ?? []).contains(name) }
                }
                let thermostat = (root["policies"]?.items ?? []).contains {
                    $0["kind"]?.string == "thermostat" && ($0["channels"]?.strings ?? []).contains(name)
                }
                if interlocked || thermostat {
                    diagnostics.error(node.position, spath, "state \(state) is not off (0), and the channel is \(interlocked ? "interlocked" : "a thermostat's"): its stop or lock would switch the device on",
                                      allowed: "0")
                } else {
                    diagnostics.warning(node.position, spath, "state \(state) is not off (0): every stop would leave the device on")
                }
            }
        default:
            break
        }
    }

    private mutating func checkWatchdog(_ item: Located, interface: String, guardPeriod: Double, path: String) {
        let wpath = KeyPath.child(path, "watchdog_timeout_ms")
        guard let node = item["watchdog_timeout_ms"] else {
            let message = "missing: without a watchdog the last approved command stays applied when its policy stops sending"
            switch interface {
            case "velocity", "effort":
                diagnostics.error(item.position, wpath, message, allowed: "a number > 0 (ms)")
            case "discrete" where item["name"]?.string.map({ thermostatHeaters.contains($0) }) ?? false:
                diagnostics.error(item.position, wpath, message + " (a heater left on)", allowed: "a number > 0 (ms)")
            case "duty", "discrete":
                diagnostics.warning(item.position, wpath, message, allowed: "a number > 0 (ms)")
            default:
                break  // a position channel holds its last position, which is its safe behaviour
            }
            return
        }
        if let timeout = node.number, timeout < guardPeriod {
            diagnostics.warning(node.position, wpath,
                                "shorter than safety.guard_period_ms (\(format(guardPeriod))): the guard checks it once a period, so it trips up to a period late")
        }
    }

    private mutating func checkUncarriedChannels() {
        for (index, item) in (root["channels"]?.items ?? []).enumerated() {
            guard let nameNode = item["name"], let name = nameNode.string, carriedBy[name] == nil,
                  channels[name].map({ $0.position == item.position }) ?? false else { continue }
            diagnostics.error(nameNode.position, KeyPath.child(KeyPath.item("channels", index), "name"),
                              "no actuator carries channel `\(name)`: its commands and its safe value would reach no device",
                              allowed: "an actuator's `channels` naming it")
        }
    }

    // MARK: Workspace and e-stop

    private mutating func checkWorkspace() {
        guard let workspace = root["workspace"], workspace.map != nil else { return }
        let polygon = workspace["polygon"]
        if polygon == nil && !workspace.has("radius") {
            diagnostics.error(workspace.position, "workspace", "has neither `polygon` nor `radius`: it bounds nothing",
                              allowed: "polygon: [[x, y], …] (3 points or more), radius: R, or both")
        }
        if let polygon {
            var points: [(Double, Double)] = []
            for (i, point) in polygon.items.enumerated() {
                let xy = point.items.compactMap(\.number)
                if point.items.count > 2 {
                    diagnostics.error(point.position, KeyPath.item("workspace.polygon", i), "a point has 2 coordinates, not \(point.items.count)",
                                      allowed: "[x, y]")
                } else if xy.count == 2 {
                    points.append((xy[0], xy[1]))
                }
            }
            if points.count >= 3 && points.count == polygon.items.count {
                var area = 0.0
                for i in points.indices {
                    let (x1, y1) = points[i], (x2, y2) = points[(i + 1) % points.count]
                    area += x1 * y2 - x2 * y1
                }
                if abs(area) < 1e-9 {
                    diagnostics.error(polygon.position, "workspace.polygon", "the points enclose no area", allowed: "3 or more points, not on one line")
                }
            }
        }
        if let center = workspace["center"] {
            if center.items.count > 2 {
                diagnostics.error(center.position, "workspace.center", "has \(center.items.count) numbers", allowed: "[x, y]")
            }
            if !workspace.has("radius"), let entry = workspace.entry("center") {
                diagnostics.error(entry.keyPosition, "workspace.center", "is only used with `radius`: it would be ignored",
                                  allowed: "add radius, or remove center")
            }
        }
        if root["odometry"] == nil {
            diagnostics.error(workspace.position, "workspace", "needs a pose, and nothing estimates one: it would never trip",
                              allowed: "add an `odometry` section")
        }
    }

    private mutating func checkEStop() {
        guard let estop = root["estop"] else { return }
        if estop.string == "none" {
            diagnostics.warning(estop.position, "estop",
                                "no e-stop input: only software stops (watchdogs, interlocks, remote stop) can stop this robot; have a hard-wired e-stop that cuts power")
            return
        }
        guard estop.map != nil else { return }
        let listed = estop["inputs"]
        var seen: [String: Int] = [:]
        for (i, node) in (listed?.items ?? []).enumerated() {
            guard let name = node.string else { continue }
            let path = KeyPath.item("estop.inputs", i)
            if let line = seen[name] {
                diagnostics.error(node.position, path, "input `\(name)` is listed twice (line \(line))", allowed: "each input once")
                continue
            }
            seen[name] = node.position.line
            guard reference(name, at: node.position, path: path, .input), let input = inputs[name] else { continue }
            if !(input["keys"]?.items ?? []).contains(where: { isEStopAction($0["action"]?.string) }) {
                diagnostics.error(node.position, path, "input `\(name)` has no key with `action: estop`: nothing on it can latch the e-stop",
                                  allowed: "an input whose keys include {code: …, action: estop}")
            }
        }
        if let listed, listed.items.isEmpty, !estop.has("remote") {
            diagnostics.error(listed.position, "estop.inputs", "no e-stop input and no remote stop: a robot without one must say `estop: none`",
                              allowed: "input names, or estop: none")
        }
        if let remote = estop["remote"], remote.map != nil {
            if root["mqtt"] == nil, let entry = estop.entry("remote") {
                diagnostics.error(entry.keyPosition, "estop.remote", "a remote stop needs the `mqtt:` section (the broker)",
                                  allowed: "add mqtt: {broker: HOST:PORT}")
            }
            if let stop = remote["stop_topic"]?.string, let resetNode = remote["reset_topic"], resetNode.string == stop {
                diagnostics.error(resetNode.position, "estop.remote.reset_topic", "is the stop topic: a stop message would also ask for a reset",
                                  allowed: "a different topic")
            }
        }
    }

    // MARK: Policies and actuators

    private mutating func checkPolicies() {
        var claims: [(priority: Int, channels: Set<String>, name: String, line: Int)] = []
        for (index, item) in (root["policies"]?.items ?? []).enumerated() {
            guard item.map != nil else { continue }
            let path = KeyPath.item("policies", index)
            let spec = kindSpec(item, in: catalog.policies)
            if let spec, spec.isFilter {
                for key in ["period_ms", "deadline_ms", "critical", "priority", "timeout_ms"] {
                    guard let entry = item.entry(key) else { continue }
                    diagnostics.error(entry.keyPosition, KeyPath.child(path, key),
                                      "`\(spec.kind)` is a filter: it runs inside the step of whichever policy wins its channels, so `\(key)` would be ignored",
                                      allowed: "remove it")
                }
            } else if spec != nil, !item.has("period_ms") {
                diagnostics.error(item.position, KeyPath.child(path, "period_ms"), "missing: a policy that proposes commands runs periodically",
                                  allowed: "a number > 0 (ms)")
            }
            let period = item["period_ms"]?.number.flatMap { $0 > 0 ? $0 : nil }
            if let node = item["deadline_ms"], let deadline = node.number, let period, deadline > period {
                diagnostics.error(node.position, KeyPath.child(path, "deadline_ms"),
                                  "\(format(deadline)) is longer than period_ms \(format(period)): a late run would overlap the next one",
                                  allowed: "≤ \(format(period))")
            }
            if let node = item["timeout_ms"], let timeout = node.number, let period, timeout < period {
                diagnostics.error(node.position, KeyPath.child(path, "timeout_ms"),
                                  "\(format(timeout)) is shorter than period_ms \(format(period)): its output would go stale between runs and lose arbitration",
                                  allowed: "≥ \(format(period))")
            }
            var commanded: Set<String> = []
            if let list = item["channels"] {
                for (i, node) in list.items.enumerated() {
                    guard let name = node.string else { continue }
                    let cpath = KeyPath.item(KeyPath.child(path, "channels"), i)
                    if !commanded.insert(name).inserted {
                        diagnostics.error(node.position, cpath, "channel `\(name)` is listed twice", allowed: "each channel once")
                    } else {
                        reference(name, at: node.position, path: cpath, .channel)
                    }
                }
            }
            if commanded.isEmpty, item["channels"]?.items.isEmpty ?? true {
                diagnostics.error(item["channels"]?.position ?? item.position, KeyPath.child(path, "channels"),
                                  "a policy commands at least one channel", allowed: "channel names")
            }
            if let node = item["priority"], let priority = node.integer, let name = item["name"]?.string {
                if let clash = claims.first(where: { $0.priority == priority && !$0.channels.isDisjoint(with: commanded) }) {
                    diagnostics.error(node.position, KeyPath.child(path, "priority"),
                                      "same priority as policy `\(clash.name)` (line \(clash.line)) on the same channels: arbitration could not choose",
                                      allowed: "a different priority")
                }
                claims.append((priority, commanded, name, node.position.line))
            }
            if let spec { checkKindReferences(item, spec: spec, path: path) }
            if let spec, !spec.isFilter { checkCritical(item, commanded: list(of: item), path: path) }
            switch item["kind"]?.string {
            case "teleop": checkTeleop(item, index: index, path: path)
            case "thermostat": checkThermostat(item, path: path)
            default: break
            }
        }
    }

    private func list(of policy: Located) -> [String] { policy["channels"]?.items.compactMap(\.string) ?? [] }

    /// A policy that commands a motion channel must say whether its miss streak is a stop.
    private mutating func checkCritical(_ item: Located, commanded: [String], path: String) {
        guard let moving = commanded.first(where: { name in channels[name].map { isMotion($0) } ?? false }) else { return }
        let cpath = KeyPath.child(path, "critical")
        if let node = item["critical"] {
            if node.bool == false {
                diagnostics.warning(node.position, cpath,
                                    "false, and it commands motion channel `\(moving)`: its missed deadlines are counted but never stop the robot (only the channel's watchdog acts once it goes silent)")
            }
        } else {
            diagnostics.error(item.position, cpath,
                              "missing: it commands motion channel `\(moving)`; a critical policy's miss streak is a stop",
                              allowed: "true, or false written out (a warning)")
        }
    }

    /// Teleop's deadman is an enabling device: after its release teleop holds the wheels stopped
    /// until the input's `handback` key, unless `on_release: yield` is written out (a warning).
    private mutating func checkTeleop(_ item: Located, index: Int, path: String) {
        let onRelease = item["on_release"]
        if let onRelease, onRelease.string == "yield" {
            diagnostics.warning(onRelease.position, KeyPath.child(path, "on_release"),
                                "yield: after the deadman's release (or a stop) teleop stops for release_hold_ms, then the policies below it drive again by themselves, with nobody asking for it")
            return
        }
        if let entry = item.entry("release_hold_ms") {
            diagnostics.error(entry.keyPosition, KeyPath.child(path, "release_hold_ms"),
                              "is only used with `on_release: yield`: with hold (the default) teleop holds the stop until the hand-back key; it would be ignored",
                              allowed: "remove it, or on_release: yield")
        }
        guard let inputNode = item["input"], let inputName = inputNode.string, let input = inputs[inputName] else { return }
        let hasHandback = (input["keys"]?.items ?? []).contains { $0["action"]?.string == "handback" }
        guard !hasHandback else { return }
        let mine = Set(list(of: item))
        let below = (root["policies"]?.items ?? []).enumerated().first { i, other in
            i != index && kindSpec(other, in: catalog.policies).map { !$0.isFilter } == true && !mine.isDisjoint(with: list(of: other))
        }
        guard let below, let name = below.element["name"]?.string else { return }
        diagnostics.error(inputNode.position, KeyPath.child(path, "input"),
                          "input `\(inputName)` has no key with `action: handback`: after the deadman's release teleop holds the wheels stopped until one is pressed, so `\(name)` could never drive again",
                          allowed: "a key {code: …, action: handback} on input \(inputName), or on_release: yield written out (a warning)")
    }

    /// A thermostat's heater needs an over-temperature interlock (a sensor's `max` locking it off),
    /// or `interlock: none` written out (a warning).
    private mutating func checkThermostat(_ item: Located, path: String) {
        guard let heater = item["channels"]?.items.first?.string else { return }
        let interlocked = (root["sensors"]?.items ?? []).contains { sensor in
            (sensor["interlocks"]?.items ?? []).contains { $0.has("max") && ($0["channels"]?.strings ?? []).contains(heater) }
        }
        let ipath = KeyPath.child(path, "interlock")
        if let node = item["interlock"], node.string == "none" {
            if !interlocked {
                diagnostics.warning(node.position, ipath,
                                    "none: nothing but this policy switches heater `\(heater)` off when it overheats (a stuck policy, a wrong setpoint, a relay that sticks on a reading)")
            }
        } else if !interlocked {
            diagnostics.error(item.position, ipath,
                              "missing: no sensor interlock with `max` locks heater `\(heater)` off on over-temperature; only this policy would switch it off",
                              allowed: "a sensor interlock {max: °C, channels: [\(heater)]}, or interlock: none written out (a warning)")
        }
    }

    private mutating func checkKindReferences(_ item: Located, spec: KindSpec, path: String) {
        for field in spec.fields {
            guard let ref = field.refersTo, let value = item[field.key] else { continue }
            for n in names(in: value, ref, path: KeyPath.child(path, field.key)) {
                reference(n.name, at: n.position, path: n.path, ref.target)
            }
        }
    }

    private mutating func checkActuators() {
        for (index, item) in (root["actuators"]?.items ?? []).enumerated() {
            guard item.map != nil else { continue }
            let path = KeyPath.item("actuators", index)
            let name = item["name"]?.string ?? "#\(index)"
            checkNeedsMQTT(item, path: path, noun: "actuator")
            checkNoRetain(item, path: path)
            guard let spec = kindSpec(item, in: catalog.actuators) else { continue }
            for field in spec.fields {
                guard let ref = field.refersTo, let value = item[field.key] else { continue }
                let fpath = KeyPath.child(path, field.key)
                var motors: [Int: (channel: String, line: Int)] = [:]
                for n in names(in: value, ref, path: fpath) {
                    guard reference(n.name, at: n.position, path: n.path, ref.target), ref.target == .channel else { continue }
                    if let earlier = carriedBy[n.name] {
                        diagnostics.error(n.position, n.path,
                                          "channel `\(n.name)` is already carried by actuator `\(earlier.actuator)` (line \(earlier.line)): two devices would get its commands",
                                          allowed: "one actuator per channel")
                    } else {
                        carriedBy[n.name] = (name, n.position.line)
                    }
                    // What the mapping of one channel says about the device must fit the channel.
                    guard ref.inKeys, let mapping = value[n.name], let channel = channels[n.name] else { continue }
                    checkChannelMapping(mapping, channel: channel, channelName: n.name, path: n.path,
                                        defaultMode: spec.kind == "serial_frames" ? "velocity" : nil, motors: &motors)
                }
            }
        }
    }

    private mutating func checkChannelMapping(_ mapping: Located, channel: Located, channelName: String, path: String,
                                              defaultMode: String?, motors: inout [Int: (channel: String, line: Int)]) {
        let interface = channel["kind"]?.string == "discrete" ? "discrete" : channel["interface"]?.string
        if let node = mapping["mode"], let mode = node.string, let interface, mode != interface {
            diagnostics.error(node.position, KeyPath.child(path, "mode"),
                              "`\(mode)` but channel `\(channelName)` is a \(interface) channel: the device would read its value as something else",
                              allowed: interface)
        } else if mapping.map != nil, !mapping.has("mode"), let defaultMode, let interface, interface != defaultMode {
            diagnostics.error(mapping.position, KeyPath.child(path, "mode"),
                              "missing, so \(defaultMode) (the default), but channel `\(channelName)` is a \(interface) channel: the device would read its value as something else",
                              allowed: interface)
        }
        if let node = mapping["motor"], let motor = node.integer {
            if let earlier = motors[motor] {
                diagnostics.error(node.position, KeyPath.child(path, "motor"),
                                  "motor \(motor) already carries channel `\(earlier.channel)` (line \(earlier.line))",
                                  allowed: "one channel per motor")
            } else {
                motors[motor] = (channelName, node.position.line)
            }
        }
        if let node = mapping["states"] {
            if interface != "discrete" {
                diagnostics.error(node.position, KeyPath.child(path, "states"),
                                  "channel `\(channelName)` is continuous: state names would be ignored", allowed: "remove it")
            } else {
                let states = channel["limits"]?["states"].map { $0.items.compactMap(\.integer) } ?? [0, 1]
                if let highest = states.max(), highest >= node.items.count {
                    diagnostics.error(node.position, KeyPath.child(path, "states"),
                                      "names \(node.items.count) state\(node.items.count == 1 ? "" : "s") but channel `\(channelName)` has state \(highest)",
                                      allowed: "a name for each state 0…\(highest)")
                }
            }
        }
    }

    static let neverRetained = "actuator commands over MQTT are never retained: a retained command would be replayed to the device whenever it reconnects"

    /// MQTT commands are never retained: a retained "on" would switch a device on again whenever
    /// it (re)connects, long after robotd decided otherwise.
    private mutating func checkNoRetain(_ node: Located, path: String) {
        switch node {
        case .map(let map):
            for entry in map.entries {
                let epath = KeyPath.child(path, entry.key)
                if entry.key == "retain", entry.value.bool == true {
                    // A kind without a `retain` key had it refused as unknown already.
                    if !diagnostics.hasProblem(at: epath) {
                        diagnostics.error(entry.value.position, epath, Self.neverRetained, allowed: "false")
                    }
                } else {
                    checkNoRetain(entry.value, path: epath)
                }
            }
        case .list(let list):
            for (i, item) in list.items.enumerated() { checkNoRetain(item, path: KeyPath.item(path, i)) }
        case .scalar:
            break
        }
    }
}

/// Numbers in messages as the user wrote them: `12`, not `12.0`.
func format(_ value: Double) -> String {
    value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
}
