import Actuators
import CRealtime
import Foundation
import Glibc
import EpisodicMemory
import Logging
import PlannerBackends
import RTScheduler
import RobotConfig
import SafetyGuard
import Synchronization
import Transports

/// A configured robot on real devices and real time: its back ends opened (a missing device is an
/// error at start, not a silent retry loop), the generic runtime on the real-time dispatch thread,
/// the input readers on their own threads (serial ports reconnect by themselves; when a port comes
/// back, the back ends on the same device are reopened and reactivated in their safe state — the
/// guard latched when the link went, so motion needs a reset), the MQTT client, and the safe state
/// on stop. It does not know whether the far ends are hardware or the bundled simulator.
public final class RobotDaemon: Sendable {
    public struct Options: Sendable {
        /// The dispatch thread's real-time setup; nil: from the configuration's `scheduler`.
        public var realtime: RealtimeOptions?
        /// How long `start` waits for the broker before the control path starts.
        public var connectWait: Duration = .seconds(3)
        public var runtime = RobotRuntime.Options()
        /// SO_SNDBUF of the telemetry connection (nil: the system's): the isolation test makes it small.
        public var telemetrySendBufferBytes: Int?
        /// The planner's router instead of the configuration's back ends (tests).
        public var plannerRouter: PlanRouter?
        public init() {}
    }

    public let configuration: RobotConfiguration
    public let scheduler: Scheduler
    public let runtime: RobotRuntime
    public let actuators: ActuatorSet
    public let mqtt: MQTTClient?
    /// Deadline monitoring over MQTT (docs/mqtt.md): with an `mqtt` section, unless
    /// `mqtt.telemetry.enabled` is false.
    public let telemetry: TelemetryMonitor?
    public let realtime: RealtimeOptions
    /// Planning on the async lane (a configuration with `abilities`; docs/planner.md).
    public let planner: PlannerService?
    /// The planner's episodic memory (with `memory` in the configuration; docs/planner.md#memory).
    public let memory: PlanMemoryRecorder?
    private let connectWait: Duration
    private let backends: [BuiltBackend]
    private let readers = Mutex<[any StoppableReader]>([])
    private let log: @Sendable (String) -> Void

    public init(configuration: RobotConfiguration, options: Options = Options(), log: @escaping @Sendable (String) -> Void) throws {
        self.configuration = configuration
        self.log = log
        let scheduler = Scheduler(clock: MonotonicClock(), logger: Logger(label: "robotd.scheduler"))
        self.scheduler = scheduler
        let s = configuration.scheduler
        let fifo = s.priority ?? (geteuid() == 0 ? 80 : 0)
        var realtime = options.realtime ?? (fifo > 0 ? .realtime(priority: fifo, cpu: s.dispatchCPU) : RealtimeOptions(cpu: s.dispatchCPU))
        if options.realtime == nil && !s.lockMemory { realtime.lockMemory = false }
        self.realtime = realtime
        connectWait = options.connectWait
        try Self.checkEStopDevices(configuration)

        // Weak: the runtime owns the actuator set, whose callbacks must not own the runtime back.
        let holder = Mutex(WeakRobotRuntime())
        var client: MQTTClient?
        // The control connection only when control uses the broker: a broker that carries nothing
        // but telemetry must not be a stop cause (it has a connection of its own).
        if let m = configuration.mqtt, Self.controlUsesBroker(configuration) || Self.goalsOverMQTT(configuration) {
            let endpoint = try BrokerAddress(m.broker)
            let password = try Self.password(m)
            client = try MQTTClient(options: MQTTOptions(
                host: endpoint.host, port: endpoint.port, clientID: m.clientID ?? "robotd-\(configuration.robot.id)-\(getpid())",
                username: m.username, password: password, caFile: m.caFile, keepaliveSeconds: max(5, Int(m.keepaliveS)),
                // Bounded: what libmosquitto keeps through an outage counts against it. The `mqtt`
                // back ends keep at most one command per channel outstanding, and their safe values
                // are never refused by the bound (MQTTClient.publishCommand).
                reconnectMaxSeconds: 4, maxQueuedMessages: 1000, commandConfirmationSeconds: m.commandConfirmationS), onEvent: { event in
                switch event {
                case .connected:
                    // Back in their safe state before anything else goes out; motion needs a reset.
                    // That safe value follows the one command per channel libmosquitto re-sends.
                    if let runtime = holder.withLock({ $0.runtime }) {
                        for actuator in configuration.actuators where actuator.kind == "mqtt" {
                            runtime.requestReactivation(of: actuator.name, at: Instant(nanoseconds: rt_monotonic_ns()))
                        }
                    }
                    log("broker \(m.broker): connected")
                case .disconnected(code: 0): break  // our own clean DISCONNECT at stop
                case .disconnected: log("broker \(m.broker): link lost: \(event.reason)")
                case .connectRefused, .connectFailed: log("broker \(m.broker): cannot connect: \(event.reason)")
                }
            }) { message in
                guard let runtime = holder.withLock({ $0.runtime }) else { return }
                for (_, endpoint) in runtime.endpoints {
                    if case .mqtt(let m) = endpoint { m.handle(message) }
                }
            }
        }
        mqtt = client
        let backends = try BackendFactory(configuration: configuration, publisher: client).build()
        self.backends = backends
        var runtimeOptions = options.runtime
        // The link counts as up only once every subscription of the connection is granted: after
        // a reconnect the CONNACK comes before the SUBACKs, and a stop published in between is
        // never delivered; a subscription the broker refused (an ACL deny) keeps it down. The
        // remote stop or a reading would be deaf without anything else showing it. Only when
        // control depends on the broker (`controlUsesBroker`): a broker that carries nothing but
        // goals is no stop cause.
        if let client, Self.controlUsesBroker(configuration) {
            runtimeOptions.brokerLink = { client.isSubscribed }
        }
        // Threaded: device writes run on the back ends' writer threads, SCHED_FIFO just below the
        // dispatch thread; faults are reported (and logged) there, never on the dispatch thread.
        // Direct back ends (`write: direct`): the dispatch thread writes when that costs no wait.
        let writers = ActuatorSet.WriterOptions(fifoPriority: realtime.fifoPriority.map { max(1, $0 - 1) },
                                                directWrites: Set(backends.filter(\.directWrite).map(\.backend.name)))
        let runtime = try RobotRuntime(configuration: configuration, scheduler: scheduler, options: runtimeOptions) { seal in
            try ActuatorSet(seal: seal, backends: backends.map(\.backend), clock: scheduler.clock, mode: .threaded(writers)) { fault in
                log("actuator \(fault.backend): \(fault.error) (safe state \(fault.safeStateApplied ? "applied" : "not applied"))")
                // The back end is inactive now: a level until it is reactivated (a reset is refused meanwhile).
                _ = holder.withLock { $0.runtime }?.reportActuatorFault(
                    lostLink: fault.error.code == .disconnected || fault.error.code == .stalled, at: Instant(nanoseconds: rt_monotonic_ns()))
            }
        }
        holder.withLock { $0.runtime = runtime }
        self.runtime = runtime
        actuators = runtime.actuators
        // The episodic memory, for a robot that plans and has a `memory` section. A file that
        // cannot be kept costs the robot its memory, never its start (said once, in words).
        var memory: PlanMemoryRecorder?
        if runtime.planning != nil, let settings = configuration.memory {
            let file = EpisodicMemory.openOrUnavailable(.init(settings, robotID: configuration.robot.id)) { problem in
                log("memory: \(problem)")
            }
            if let why = file.status.unavailable { log("memory: not kept: \(why)") }
            memory = PlanMemoryRecorder(memory: file, audit: runtime.audit, vocabulary: PlanMemoryEntries.vocabulary(configuration))
        }
        self.memory = memory
        var summary: (@Sendable () -> String)?
        if let recorder = memory { summary = { recorder.summary.text } }
        // The MQTT connections' sockets, which a planner back end must never take for its own and
        // reset (the control connection carries the remote stop): owned here, given to the back ends.
        let excludedSockets = ExcludedSockets()
        if let client { excludedSockets.add { client.socketDescriptor } }
        let planner = runtime.planning == nil ? nil
            : try PlannerService(runtime: runtime, scheduler: scheduler, router: options.plannerRouter,
                                 memorySummary: summary, excludedSockets: excludedSockets, log: log)
        self.planner = planner
        telemetry = try Self.telemetry(configuration, options: options, scheduler: scheduler, runtime: runtime, control: client,
                                       plan: planner?.journal)
        if let monitor = telemetry {
            let telemetryClient = monitor.client
            excludedSockets.add { telemetryClient.socketDescriptor }
        }
        if let client {
            for (_, endpoint) in runtime.endpoints {
                guard case .mqtt(let m) = endpoint else { continue }
                for s in m.subscriptions { try client.subscribe(.init(filter: s.filter, qos: s.qos)) }
            }
        }
    }

    /// The telemetry monitor on its own connection: same broker, credentials and CA as `mqtt`,
    /// client id `<client_id>-telemetry`.
    static func telemetry(_ configuration: RobotConfiguration, options: Options, scheduler: Scheduler, runtime: RobotRuntime,
                          control: MQTTClient?, plan: PlanJournal?) throws -> TelemetryMonitor? {
        guard let m = configuration.mqtt else { return nil }
        let settings = m.telemetry ?? TelemetrySettings()
        guard settings.enabled else { return nil }
        let base = control?.options.clientID ?? m.clientID ?? "robotd-\(configuration.robot.id)-\(getpid())"
        let monitorOptions = TelemetryMonitor.Options(
            settings: settings, broker: try BrokerAddress(m.broker), clientID: base + "-telemetry", username: m.username,
            password: try password(m), caFile: m.caFile, keepaliveSeconds: max(5, Int(m.keepaliveS)),
            sendBufferBytes: options.telemetrySendBufferBytes)
        return try TelemetryMonitor(options: monitorOptions, scheduler: scheduler, runtime: runtime, control: control, plan: plan)
    }

    /// An e-stop device behind a stream (a FIFO, a file) has no unplug event, and a writer that
    /// stays but goes quiet looks like a device at rest: it must be supervised by keep-alive frames
    /// (`estop.liveness_ms`). Only a path that is a character device now (evdev, which reports its
    /// own removal) may go without; a path that does not exist yet may become a FIFO: refused too.
    static func checkEStopDevices(_ configuration: RobotConfiguration) throws {
        guard case .configured(let e) = configuration.estop, e.livenessMs == nil else { return }
        for name in e.inputs {
            guard let input = configuration.inputs.first(where: { $0.name == name }),
                  case .string(let path)? = input.settings["path"] else { continue }
            var info = stat()
            if stat(path, &info) != 0 || (info.st_mode & S_IFMT) != S_IFCHR {
                throw KindError("estop: input \(name) (\(path)) is not a character device now (a FIFO or a missing path): a stream has no unplug event, so set estop.liveness_ms (keep-alive frames)")
            }
        }
    }

    /// Whether a back end's serial path names the device an input just opened at `opened`.
    static func sameDevice(_ backendPath: String?, as input: SerialEndpoint, openedAt opened: String) -> Bool {
        guard let backendPath else { return false }
        if backendPath == input.description { return true }
        guard let resolved = try? SerialPortOpener.resolve(SerialEndpoint(backendPath)) else { return false }
        var a = stat(), b = stat()
        guard stat(resolved, &a) == 0, stat(opened, &b) == 0 else { return false }
        return (a.st_mode & S_IFMT) == S_IFCHR && a.st_rdev == b.st_rdev
    }

    /// `mqtt` inputs or actuators, or the remote stop.
    public static func controlUsesBroker(_ configuration: RobotConfiguration) -> Bool {
        configuration.inputs.contains { $0.kind == "mqtt" } || configuration.actuators.contains { $0.kind == "mqtt" }
            || configuration.inboundTopics != nil
    }

    /// Goals over MQTT (`planner.goals.mqtt`) on a robot that can plan.
    public static func goalsOverMQTT(_ configuration: RobotConfiguration) -> Bool {
        configuration.planner.goals.mqtt && !configuration.abilities.isEmpty
    }

    static func password(_ m: MQTTSettings) throws -> String? {
        do {
            return try MQTTPassword.read(environment: m.passwordEnv, file: m.passwordFile)
        } catch {
            throw KindError("mqtt: \(error)")
        }
    }

    /// Actuators to their safe state and active, the dispatch thread up, then the readers and the
    /// broker connection.
    /// A start that fails part way (an input device that cannot be opened after the dispatch
    /// thread is up) ends like a stop: the actuators in their safe state, every thread stopped.
    @discardableResult
    public func start() throws -> RealtimeReport {
        do {
            return try startInOrder()
        } catch {
            stop(reason: "start failed: \(error)")
            throw error
        }
    }

    private func startInOrder() throws -> RealtimeReport {
        // Before the broker: a goal it replays at subscribe (a retained one, to be ignored) finds
        // the planner listening. Goals taken now wait in the planner's queue for the dispatch thread.
        if let planner { memory?.start(journal: planner.journal) }
        planner?.start()
        if let mqtt {
            // The broker first: the guard's first tick re-checks the link, and a start that races
            // the connection would latch `connection-lost` for nothing. A broker that is down stays
            // a latched stop (fail closed) until it is back and a reset is given.
            try mqtt.start()
            let deadline = rt_monotonic_ns() + Int64(connectWait.nanoseconds)
            while !mqtt.isSubscribed && !mqtt.hasRefusedSubscription && rt_monotonic_ns() < deadline {
                usleep(10_000)
            }
            if !mqtt.isConnected { log("broker \(configuration.mqtt?.broker ?? "?"): not connected after \(connectWait); starting latched on connection-lost") }
        }
        actuators.start()
        var supervision = SupervisorOptions()
        if let budget = configuration.scheduler.supervisorBudgetMs { supervision.defaultBudget = .milliseconds(budget) }
        let report = try scheduler.start(realtime: realtime, supervisor: supervision)
        let runtime = self.runtime, log = self.log
        let dispatch = realtime.fifoPriority
        let priorities = configuration.scheduler.inputPriorities
        let sensorPriority = priorities?.sensors ?? dispatch.map { max(1, $0 - 3) }
        let estopPriority = priorities?.estop ?? dispatch.map { max(1, $0 - 2) }
        var started: [any StoppableReader] = []
        defer { readers.withLock { $0 += started } }
        for (name, endpoint) in runtime.endpoints {
            switch endpoint {
            case .serial(let s):
                // Back ends on the same device are reopened (and reactivated in their safe state)
                // after every reconnection but the first. Same device: the same name in the file,
                // or the same device node now (a by-id link and its ttyUSB0, a usb-serial: name).
                let backends = self.backends, inputEndpoint = s.endpoint
                let counter = ConnectionCounter()
                let reader = try SerialReader(endpoint: s.endpoint, settings: s.settings, fifoPriority: sensorPriority, onEvent: { event in
                    let now = Instant(nanoseconds: rt_monotonic_ns())
                    switch event {
                    case .connected(let path, let backend):
                        log("input \(name): \(path) open (\(backend))")
                        guard counter.value.add(1, ordering: .relaxed).newValue > 1 else { break }
                        runtime.setLink(name, up: true, at: now)
                        for b in backends where Self.sameDevice(b.serialPath, as: inputEndpoint, openedAt: path) {
                            do {
                                try b.serialLink?.reconnect()
                                runtime.requestReactivation(of: b.backend.name, at: now)
                                log("actuator \(b.backend.name): link reopened; reactivation in the safe state requested")
                            } catch {
                                log("actuator \(b.backend.name): \(error)")
                            }
                        }
                    case .disconnected(let path, let reason):
                        log("input \(name): \(path) lost: \(reason)")
                        runtime.setLink(name, up: false, at: now)
                    case .openFailed(let path, let reason, let retry):
                        log("input \(name): cannot open \(path): \(reason); retrying in \(retry) ms")
                    }
                }, onBytes: s.feed)
                started.append(reader)
                if sensorPriority != nil && !reader.runsAtFIFO { log("warning: input \(name)'s reader runs without SCHED_FIFO (not permitted)") }
            case .inputDevice(let d):
                let priority = d.isEStop ? estopPriority : sensorPriority
                let reader = try InputDeviceReader(path: d.path, grab: d.grab, axes: d.gamepad.mapping.axes.map(\.code),
                                                   keys: d.gamepad.keysReadAtOpen, fifoPriority: priority, onNotice: { notice, arrival in
                    log("input \(name): \(runtime.handle(notice, arrival: arrival, input: name))")
                }) { event, arrival in d.gamepad.feed(event: event, arrival: arrival) }
                started.append(reader)
                if priority != nil && !reader.runsAtFIFO { log("warning: input \(name)'s reader runs without SCHED_FIFO (not permitted)") }
            case .mqtt:
                break  // subscribed at init; the client delivers
            }
        }
        // Last, and without waiting for its broker: telemetry never holds up the start, and a
        // telemetry that cannot start (its thread) leaves the robot running without it, said.
        do {
            try telemetry?.start()
        } catch {
            log("telemetry: cannot start: \(error); running without telemetry")
        }
        return report
    }

    /// For a supervisor (watchdog) thread: every actuator to its safe state without any lock the
    /// dispatch thread or a writer may hold.
    @discardableResult
    public func emergencySafeState() -> Bool { actuators.emergencySafeState() }

    /// Safe state first, then everything else stops.
    public func stop(reason: String) {
        actuators.safeStop(reason: reason)
        planner?.stop()
        // After the planner: its last messages (a cancelled plan) are queued for the memory. The
        // file is closed last, with a bounded wait: appends to a slow or locked file (up to 1024
        // of 0.5 s each) must not keep the readers, the scheduler and telemetry running.
        memory?.stopRecording()
        readers.withLock { list in
            for r in list { r.stop() }
            list.removeAll()
        }
        scheduler.stop()
        // After the scheduler: its last figures are final. Before the control connection.
        telemetry?.stop()
        mqtt?.stop()
        for b in backends { b.serialLink?.close() }
        if let memory {
            let closed = memory.close(within: Self.memoryCloseLimit)
            if !closed.closedInTime {
                log("memory: not closed within \(Self.memoryCloseLimit): \(closed.unwritten) record(s) not written (\(memory.memory.path))")
            }
        }
    }

    /// How long the stop waits for the memory's queued appends before giving them up.
    static let memoryCloseLimit = Duration.seconds(2)
}

/// What a reader thread offers the daemon: a way to stop it.
protocol StoppableReader: Sendable {
    func stop()
}

extension SerialReader: StoppableReader {}
extension InputDeviceReader: StoppableReader {}

private final class ConnectionCounter: Sendable {
    let value = Atomic<Int>(0)
}

private struct WeakRobotRuntime: Sendable {
    weak var runtime: RobotRuntime?
}

/// `HOST:PORT` (IPv6 in brackets: `[::1]:1883`).
public struct BrokerAddress: Sendable, Equatable {
    public var host: String
    public var port: Int

    public init(_ text: String) throws {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else {
            throw KindError("mqtt.broker: \(text) is not HOST:PORT")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw KindError("mqtt.broker: \(text) has no host") }
        self.host = host
        self.port = port
    }
}
