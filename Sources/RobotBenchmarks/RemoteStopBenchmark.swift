import AIOSRobot
import CRealtime
import Foundation
import Glibc
import RobotConfig
import Synchronization
import Transports

/// `robotd bench remote-stop`: how long a remote stop takes while telemetry publishes at its floor
/// (`mqtt.telemetry.interval_ms` 100) and at its default (1000), beside a bare MQTT echo through the
/// same broker in the same run (docs/benchmarks.md).
///
/// One sample: an independent client (a login of its own, as an operator's console) publishes
/// `stop` on `robotd/<id>/estop` (QoS 1) → the broker → robotd's control connection → the remote
/// stop → the guard latches on the dispatch thread → the MQTT back end publishes the heater's safe
/// value (`off`) → the broker → an observer: the time until that `off` arrives, and until the
/// retained `state` says latched (the telemetry thread publishes it on change; its loop looks every
/// 10 ms at most). Then a reset request names the latch, and once the heater is `on` again, after a
/// random pause, the next sample. The floor: the same clients time a message relayed by a third
/// client (subscribe → publish from its callback) — two passes through the broker and one client's
/// network thread, what any remote stop over MQTT pays. Each sample is followed by an echo sample,
/// so the VM's noise hits both alike.
///
/// robotd runs in this process (`RobotDaemon`, as `robotd run` builds it) against a Mosquitto
/// started here; the heater's temperature is published by this benchmark every 100 ms (20 °C: the
/// thermostat wants the heater on). Blocks of samples alternate between the two telemetry intervals,
/// a new daemon for each block.
public struct RemoteStopBenchmark: Sendable {
    public struct Options: Sendable {
        /// Blocks per telemetry interval (they alternate: floor, default, floor, …).
        public var rounds = 3
        /// Stop samples per block.
        public var samplesPerBlock = 10
        /// The telemetry intervals compared: the floor and the default.
        public var floorIntervalMs = TelemetrySettings.minimumIntervalMs
        public var defaultIntervalMs = TelemetrySettings().intervalMs
        /// A sample whose answer has not come within this is lost (counted).
        public var timeoutMilliseconds = 2000
        /// robotd's `scheduler.priority`; nil: its default, as `robotd run` (SCHED_FIFO 80 as root).
        public var priority: Int?
        public init() {}
    }

    /// One telemetry interval's figures, every block pooled.
    public struct Setting: Sendable, Codable, Equatable {
        public var intervalMs: Double
        public var samples: Int
        public var lost: Int
        /// Stop published → robotd's status says latched (read in this process every 0.2 ms): the
        /// way in (broker, robotd's control connection, the dispatch thread).
        public var latchP50Ms: Double
        public var latchP90Ms: Double
        /// Stop published → the heater's `off` seen by the observer.
        public var safeValueP50Ms: Double
        public var safeValueP90Ms: Double
        public var safeValueMaxMs: Double
        /// Stop published → the retained `state` with the latch seen by the observer.
        public var stateP50Ms: Double
        public var stateP90Ms: Double
        /// The telemetry thread's CPU time over the blocks' wall time (%, one core = 100).
        public var telemetryCPUPercent: Double
        /// Telemetry messages published meanwhile.
        public var telemetryPublished: UInt64

        enum CodingKeys: String, CodingKey {
            case samples, lost
            case intervalMs = "interval_ms"
            case latchP50Ms = "latch_p50_ms"
            case latchP90Ms = "latch_p90_ms"
            case safeValueP50Ms = "safe_value_p50_ms"
            case safeValueP90Ms = "safe_value_p90_ms"
            case safeValueMaxMs = "safe_value_max_ms"
            case stateP50Ms = "state_p50_ms"
            case stateP90Ms = "state_p90_ms"
            case telemetryCPUPercent = "telemetry_cpu_percent"
            case telemetryPublished = "telemetry_published"
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(intervalMs, forKey: .intervalMs)
            try c.encode(samples, forKey: .samples)
            try c.encode(lost, forKey: .lost)
            try c.encode(jsonNumber(latchP50Ms), forKey: .latchP50Ms)
            try c.encode(jsonNumber(latchP90Ms), forKey: .latchP90Ms)
            try c.encode(jsonNumber(safeValueP50Ms), forKey: .safeValueP50Ms)
            try c.encode(jsonNumber(safeValueP90Ms), forKey: .safeValueP90Ms)
            try c.encode(jsonNumber(safeValueMaxMs), forKey: .safeValueMaxMs)
            try c.encode(jsonNumber(stateP50Ms), forKey: .stateP50Ms)
            try c.encode(jsonNumber(stateP90Ms), forKey: .stateP90Ms)
            try c.encode(jsonNumber(telemetryCPUPercent), forKey: .telemetryCPUPercent)
            try c.encode(telemetryPublished, forKey: .telemetryPublished)
        }
    }

    public struct Result: Sendable, Codable {
        public var atFloor: Setting
        public var atDefault: Setting
        /// The echo through the same broker: publish → relayed → seen, beside every stop sample.
        public var echoSamples: Int
        public var echoLost: Int
        public var echoP50Ms: Double
        public var echoP90Ms: Double
        /// Safe value p50 at the floor ÷ at the default: what telemetry at its floor costs a stop.
        public var loadRatio: Double
        /// The same for robotd's latch (the way in alone).
        public var latchLoadRatio: Double
        /// Latch p50 ÷ the echo's p50, at the floor and at the default: the way in against a
        /// message relayed by a client through the same broker.
        public var floorLatchEchoRatio: Double
        public var defaultLatchEchoRatio: Double
        /// Safe value p50 ÷ the echo's p50, at the floor and at the default: what robotd adds to
        /// the broker's own two passes.
        public var floorEchoRatio: Double
        public var defaultEchoRatio: Double
        public var notes: [String]

        enum CodingKeys: String, CodingKey {
            case notes
            case atFloor = "at_floor"
            case atDefault = "at_default"
            case echoSamples = "echo_samples"
            case echoLost = "echo_lost"
            case echoP50Ms = "echo_p50_ms"
            case echoP90Ms = "echo_p90_ms"
            case loadRatio = "load_ratio"
            case latchLoadRatio = "latch_load_ratio"
            case floorLatchEchoRatio = "floor_latch_echo_ratio"
            case defaultLatchEchoRatio = "default_latch_echo_ratio"
            case floorEchoRatio = "floor_echo_ratio"
            case defaultEchoRatio = "default_echo_ratio"
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(atFloor, forKey: .atFloor)
            try c.encode(atDefault, forKey: .atDefault)
            try c.encode(echoSamples, forKey: .echoSamples)
            try c.encode(echoLost, forKey: .echoLost)
            try c.encode(jsonNumber(echoP50Ms), forKey: .echoP50Ms)
            try c.encode(jsonNumber(echoP90Ms), forKey: .echoP90Ms)
            try c.encode(jsonNumber(loadRatio), forKey: .loadRatio)
            try c.encode(jsonNumber(latchLoadRatio), forKey: .latchLoadRatio)
            try c.encode(jsonNumber(floorLatchEchoRatio), forKey: .floorLatchEchoRatio)
            try c.encode(jsonNumber(defaultLatchEchoRatio), forKey: .defaultLatchEchoRatio)
            try c.encode(jsonNumber(floorEchoRatio), forKey: .floorEchoRatio)
            try c.encode(jsonNumber(defaultEchoRatio), forKey: .defaultEchoRatio)
            try c.encode(notes, forKey: .notes)
        }
    }

    static let robotID = "bench-stop"
    /// `robotd-telemetry`, as the kernel keeps it (15 characters).
    static let telemetryThreadName = "robotd-telemetr"
    static let user = "bench"
    static let heaterTopic = "bench/stop/heater/set"
    static let temperatureTopic = "bench/stop/temperature"
    static let echoIn = "bench/echo/in"
    static let echoOut = "bench/echo/out"
    static var stopTopic: String { "robotd/\(robotID)/estop" }
    static var resetTopic: String { "robotd/\(robotID)/estop/reset/\(user)" }
    static var stateTopic: String { "robotd/\(robotID)/state" }

    public var options: Options
    public init(options: Options = Options()) { self.options = options }

    /// The robot: one heater relay over MQTT, a thermostat on a temperature read over MQTT, the
    /// remote stop (category 0: the safe value at once) with resets from `bench`.
    static func configurationText(port: Int, intervalMs: Double, priority: Int? = nil) -> String {
        """
        robot: {id: \(robotID)}
        \(priority.map { "scheduler: {priority: \($0)}" } ?? "")
        safety: {start_latched: false, startup_timeout_ms: 5000, guard_period_ms: 20}
        mqtt:
          broker: 127.0.0.1:\(port)
          client_id: robotd-\(robotID)-\(getpid())
          keepalive_s: 5
          telemetry: {interval_ms: \(intervalMs)}
        inputs:
          - {name: temperature_in, kind: mqtt, topic: \(temperatureTopic), field: value, qos: 0, feeds: temperature,
             queue: {capacity: 4, overflow: keep_latest_per_key}, priority: normal, deadline_ms: 100}
        sensors:
          - {name: temperature, max_age_ms: 2000, reaction: stop, stop_category: 0, valid_range: [-40, 150],
             interlocks: [{max: 60, channels: [heater]}]}
        channels:
          - {name: heater, kind: discrete, limits: {states: [0, 1]}, safe_value: 0, stop_category: 0, watchdog_timeout_ms: 1000}
        estop:
          inputs: []
          category: 0
          remote: {category: 0, reset_users: [\(user)], heartbeat_ms: none}
        policies:
          - {name: thermostat, kind: thermostat, period_ms: 50, deadline_ms: 20, channels: [heater], sensor: temperature,
             setpoint: 35, band: 1}
        actuators:
          - name: relay
            kind: mqtt
            channels:
              heater: {topic: \(heaterTopic), states: ["off", "on"], qos: 0}

        """
    }

    /// What the observer has seen, stamped at arrival (network thread).
    final class Seen: Sendable {
        struct Stamps {
            var heater: [(value: String, at: Int64)] = []
            var latchedStates: [Int64] = []
            var echoes: [(id: String, at: Int64)] = []
        }
        let stamps = Mutex(Stamps())
        func note(_ m: MQTTMessage) {
            let text = String(decoding: m.payload, as: UTF8.self)
            stamps.withLock { s in
                switch m.topic {
                case RemoteStopBenchmark.heaterTopic: s.heater.append((text, m.arrival))
                case RemoteStopBenchmark.echoOut: s.echoes.append((text, m.arrival))
                case RemoteStopBenchmark.stateTopic:
                    // `"latched":true` inside `estop`: the only `latched` key of the payload.
                    if !m.retained && text.contains("\"latched\":true") { s.latchedStates.append(m.arrival) }
                default: break
                }
            }
        }
        func firstHeater(_ value: String, after t: Int64) -> Int64? {
            stamps.withLock { $0.heater.first { $0.value == value && $0.at > t }?.at }
        }
        func firstLatchedState(after t: Int64) -> Int64? { stamps.withLock { $0.latchedStates.first { $0 > t } } }
        func echo(_ id: String) -> Int64? { stamps.withLock { $0.echoes.first { $0.id == id }?.at } }
        /// Keeps the lists short between samples.
        func forget(before t: Int64) {
            stamps.withLock { s in
                s.heater.removeAll { $0.at < t }
                s.latchedStates.removeAll { $0 < t }
                s.echoes.removeAll { $0.at < t }
            }
        }
    }

    public func run(progress: (String) -> Void) throws -> Result {
        guard MosquittoBroker.isInstalled else { throw BenchmarkError("mosquitto is not installed (scripts/setup.sh)") }
        let broker = try MosquittoBroker()
        try broker.start()
        defer { broker.stop() }
        progress("broker: mosquitto on 127.0.0.1:\(broker.port)")

        let seen = Seen()
        func client(_ name: String, onMessage: @escaping @Sendable (MQTTMessage) -> Void = { _ in }) throws -> MQTTClient {
            try MQTTClient(options: MQTTOptions(port: broker.port, clientID: "bench-\(name)-\(getpid())", keepaliveSeconds: 5),
                           onMessage: onMessage)
        }
        let observer = try client("observer") { seen.note($0) }
        try observer.subscribe(.init(filter: Self.heaterTopic, qos: 0))
        try observer.subscribe(.init(filter: Self.stateTopic, qos: 1))
        try observer.subscribe(.init(filter: Self.echoOut, qos: 0))
        let operatorClient = try client("operator")
        let feeder = try client("rig")
        let relay = Relay()
        let echo = try client("echo") { m in
            // Relayed from the network thread's callback, as robotd's remote stop is taken there.
            _ = try? relay.client.withLock { $0 }?.publish(topic: RemoteStopBenchmark.echoOut, payload: m.payload, qos: 0, retain: false)
        }
        relay.client.withLock { $0 = echo }
        try echo.subscribe(.init(filter: Self.echoIn, qos: 1))
        for c in [observer, operatorClient, feeder, echo] { try c.start() }
        defer { for c in [observer, operatorClient, feeder, echo] { c.stop() } }
        guard Self.wait(seconds: 10, until: { observer.isSubscribed && echo.isSubscribed && operatorClient.isConnected && feeder.isConnected }) else {
            throw BenchmarkError("the benchmark's clients did not connect to 127.0.0.1:\(broker.port)")
        }

        // The rig's thermometer: 20 °C every 100 ms, for as long as the benchmark runs.
        let feeding = Flag()
        let feederThread = Thread {
            while feeding.on.load(ordering: .relaxed) {
                _ = try? feeder.publish(topic: RemoteStopBenchmark.temperatureTopic, payload: Array(#"{"value": 20.0}"#.utf8), qos: 0, retain: false)
                usleep(100_000)
            }
        }
        feederThread.start()
        defer { feeding.on.store(false, ordering: .relaxed) }

        var notes: [String] = []
        var floorRuns = Runs(), defaultRuns = Runs(), echoes: [Double] = [], echoLost = 0
        var echoSeq = 0
        for round in 0..<options.rounds {
            for (interval, isFloor) in [(options.floorIntervalMs, true), (options.defaultIntervalMs, false)] {
                progress("round \(round + 1)/\(options.rounds): telemetry every \(Int(interval)) ms, \(options.samplesPerBlock) stops")
                let block = try runBlock(intervalMs: interval, port: broker.port, seen: seen, operatorClient: operatorClient) {
                    // An echo beside each stop sample.
                    echoSeq += 1
                    let id = "echo-\(echoSeq)"
                    let t0 = rt_monotonic_ns()
                    try operatorClient.publish(topic: Self.echoIn, payload: Array(id.utf8), qos: 1, retain: false)
                    if Self.wait(seconds: Double(options.timeoutMilliseconds) / 1000, until: { seen.echo(id) != nil }), let at = seen.echo(id) {
                        echoes.append(Double(at - t0) / 1e6)
                    } else {
                        echoLost += 1
                    }
                }
                notes += block.notes
                if isFloor { floorRuns.add(block) } else { defaultRuns.add(block) }
            }
        }
        let atFloor = floorRuns.setting(intervalMs: options.floorIntervalMs)
        let atDefault = defaultRuns.setting(intervalMs: options.defaultIntervalMs)
        let echoP50 = Self.percentile(echoes, 0.5)
        return Result(atFloor: atFloor, atDefault: atDefault, echoSamples: echoes.count, echoLost: echoLost,
                      echoP50Ms: echoP50, echoP90Ms: Self.percentile(echoes, 0.9),
                      loadRatio: atFloor.safeValueP50Ms / atDefault.safeValueP50Ms,
                      latchLoadRatio: atFloor.latchP50Ms / atDefault.latchP50Ms,
                      floorLatchEchoRatio: atFloor.latchP50Ms / echoP50, defaultLatchEchoRatio: atDefault.latchP50Ms / echoP50,
                      floorEchoRatio: atFloor.safeValueP50Ms / echoP50, defaultEchoRatio: atDefault.safeValueP50Ms / echoP50,
                      notes: notes)
    }

    /// The echo client, for its own callback.
    final class Relay: Sendable {
        let client = Mutex<MQTTClient?>(nil)
    }

    final class Flag: Sendable {
        let on = Atomic<Bool>(true)
    }

    final class Lines: Sendable {
        let list = Mutex<[String]>([])
    }

    /// One block's samples and costs.
    struct Block {
        var latch: [Double] = []
        var safeValue: [Double] = []
        var state: [Double] = []
        var lost = 0
        var telemetryCPUSeconds = 0.0
        var wallSeconds = 0.0
        var telemetryPublished: UInt64 = 0
        var notes: [String] = []
    }

    struct Runs {
        var latch: [Double] = []
        var safeValue: [Double] = []
        var state: [Double] = []
        var lost = 0
        var cpu = 0.0
        var wall = 0.0
        var published: UInt64 = 0
        mutating func add(_ b: Block) {
            latch += b.latch
            safeValue += b.safeValue
            state += b.state
            lost += b.lost
            cpu += b.telemetryCPUSeconds
            wall += b.wallSeconds
            published += b.telemetryPublished
        }
        func setting(intervalMs: Double) -> Setting {
            Setting(intervalMs: intervalMs, samples: safeValue.count, lost: lost,
                    latchP50Ms: percentile(latch, 0.5), latchP90Ms: percentile(latch, 0.9),
                    safeValueP50Ms: percentile(safeValue, 0.5), safeValueP90Ms: percentile(safeValue, 0.9),
                    safeValueMaxMs: safeValue.max() ?? .nan,
                    stateP50Ms: percentile(state, 0.5), stateP90Ms: percentile(state, 0.9),
                    telemetryCPUPercent: wall > 0 ? cpu / wall * 100 : .nan, telemetryPublished: published)
        }
        private func percentile(_ values: [Double], _ q: Double) -> Double { RemoteStopBenchmark.percentile(values, q) }
    }

    /// A daemon with telemetry every `intervalMs`, then `samplesPerBlock` stops, each followed by
    /// `afterSample` (the echo) and a reset.
    private func runBlock(intervalMs: Double, port: Int, seen: Seen, operatorClient: MQTTClient,
                          afterSample: () throws -> Void) throws -> Block {
        let report = RobotFileCheck.load(text: Self.configurationText(port: port, intervalMs: intervalMs, priority: options.priority),
                                         file: "bench-remote-stop.yaml")
        guard let configuration = report.configuration else {
            throw BenchmarkError("the benchmark's configuration does not pass check: \(report.errors.map(\.description))")
        }
        let log = Lines()
        let daemon = try RobotDaemon(configuration: configuration) { line in log.list.withLock { $0.append(line) } }
        // This daemon's telemetry thread is the one of that name that was not there before (a test
        // process may run other daemons).
        let earlier = ThreadCPU.all(named: Self.telemetryThreadName)
        try daemon.start()
        defer { daemon.stop(reason: "benchmark block done") }
        var block = Block()
        let timeout = Double(options.timeoutMilliseconds) / 1000
        // Running, the heater on (a reading has come, the thermostat asked for heat).
        let started = rt_monotonic_ns()
        guard Self.wait(seconds: 10, until: { !daemon.runtime.status.latched && seen.firstHeater("on", after: started) != nil }) else {
            throw BenchmarkError("the robot did not start heating within 10 s: \(log.list.withLock { Array($0.suffix(5)) })")
        }
        let new = ThreadCPU.all(named: Self.telemetryThreadName).filter { !earlier.contains($0) }
        let telemetryThread = new.count == 1 ? new.first : nil
        if telemetryThread == nil {
            block.notes.append("telemetry every \(Int(intervalMs)) ms: \(new.count) new threads named \(Self.telemetryThreadName): its CPU is not measured")
        }
        let cpu0 = telemetryThread?.seconds(), wall0 = rt_monotonic_ns()
        let published0 = daemon.telemetry?.counters.published.load(ordering: .relaxed) ?? 0
        var lastReset: Int64 = 0
        for _ in 0..<options.samplesPerBlock {
            // A random pause, so the stops fall anywhere in telemetry's cycle.
            usleep(UInt32.random(in: 150_000...450_000))
            seen.forget(before: rt_monotonic_ns() - 5_000_000_000)
            let t0 = rt_monotonic_ns()
            try operatorClient.publish(topic: Self.stopTopic, payload: Array("stop".utf8), qos: 1, retain: false)
            if Self.wait(seconds: timeout, until: { daemon.runtime.status.latched }) {
                block.latch.append(Double(rt_monotonic_ns() - t0) / 1e6)
            }
            if Self.wait(seconds: timeout, until: { seen.firstHeater("off", after: t0) != nil }), let off = seen.firstHeater("off", after: t0) {
                block.safeValue.append(Double(off - t0) / 1e6)
            } else {
                block.lost += 1
            }
            if Self.wait(seconds: timeout, until: { seen.firstLatchedState(after: t0) != nil }), let state = seen.firstLatchedState(after: t0) {
                block.state.append(Double(state - t0) / 1e6)
            }
            try afterSample()
            // The reset: naming the latch, at most twice a second (the user's bucket), then heating again.
            guard Self.wait(seconds: timeout, until: { daemon.runtime.status.latched }) else {
                throw BenchmarkError("the remote stop did not latch within \(options.timeoutMilliseconds) ms")
            }
            let wait = lastReset + 600_000_000 - rt_monotonic_ns()
            if wait > 0 { usleep(UInt32(wait / 1000)) }
            lastReset = rt_monotonic_ns()
            let latch = daemon.runtime.status.latchSequence
            try operatorClient.publish(topic: Self.resetTopic, payload: Array("reset \(latch)".utf8), qos: 1, retain: false)
            let resetAt = rt_monotonic_ns()
            guard Self.wait(seconds: 5, until: { !daemon.runtime.status.latched && seen.firstHeater("on", after: resetAt) != nil }) else {
                throw BenchmarkError("the reset of latch \(latch) did not restart heating within 5 s: \(log.list.withLock { Array($0.suffix(5)) })")
            }
        }
        block.wallSeconds = Double(rt_monotonic_ns() - wall0) / 1e9
        if let cpu0, let cpu1 = telemetryThread?.seconds() {
            block.telemetryCPUSeconds = cpu1 - cpu0
        } else {
            block.telemetryCPUSeconds = .nan  // not measured: the whole setting's figure is NaN (null in JSON)
        }
        block.telemetryPublished = (daemon.telemetry?.counters.published.load(ordering: .relaxed) ?? 0) - published0
        return block
    }

    static func wait(seconds: Double, until condition: () -> Bool) -> Bool {
        let deadline = rt_monotonic_ns() + Int64(seconds * 1e9)
        while rt_monotonic_ns() < deadline {
            if condition() { return true }
            usleep(200)
        }
        return condition()
    }

    /// Nearest-rank percentile; NaN without values.
    static func percentile(_ values: [Double], _ q: Double) -> Double {
        guard !values.isEmpty else { return .nan }
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, max(0, Int((q * Double(sorted.count)).rounded(.up)) - 1))]
    }
}

/// One thread of this process by its name (/proc/self/task/*/comm; names are cut at 15
/// characters), and its time on a CPU (/proc/self/task/<tid>/schedstat, in ns).
struct ThreadCPU: Hashable {
    let tid: String

    /// This process's threads of that name now.
    static func all(named name: String) -> Set<ThreadCPU> {
        guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task") else { return [] }
        return Set(tasks.filter { tid in
            let comm = (try? String(contentsOfFile: "/proc/self/task/\(tid)/comm", encoding: .utf8)) ?? ""
            return comm.trimmingCharacters(in: .whitespacesAndNewlines) == name
        }.map(ThreadCPU.init))
    }

    /// Seconds on a CPU so far; nil once the thread is gone.
    func seconds() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/self/task/\(tid)/schedstat", encoding: .utf8) else { return nil }
        return Self.seconds(schedstat: text)
    }

    /// The first field of a schedstat line: ns on a CPU; nil if it is not a number.
    static func seconds(schedstat: String) -> Double? {
        guard let first = schedstat.split(separator: " ").first, let ns = Double(first) else { return nil }
        return ns / 1e9
    }
}
