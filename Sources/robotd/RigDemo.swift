import AIOSRobot
import Actuators
import ArgumentParser
import CRealtime
import Foundation
import Glibc
import Logging
import RTScheduler
import RobotSim
import SafetyGuard
import Synchronization
import Transports

/// `robotd demo --world iot-rig`: robotd's rig runtime against the simulated IoT rig over a
/// Mosquitto broker it starts itself on a free loopback port. The options live here so that the
/// rover demo (Demo.swift) only forwards to `run`.
struct RigDemoOptions: ParsableArguments {
    @Option(help: "The world: rover (the default: the rover simulator on a pty) or iot-rig (the IoT rig over MQTT).")
    var world: DemoWorld = .rover

    @Option(help: "iot-rig: publish a remote stop this many seconds after the start, as an operator would.")
    var remoteStopAt: Double?

    @Option(help: "iot-rig: publish a reset this many seconds after the start.")
    var remoteResetAt: Double?

    @Option(help: "iot-rig: the thermostat's setpoint (°C; default 35).")
    var setpoint: Double?

    func validate() throws {
        if world != .iotRig && (remoteStopAt != nil || remoteResetAt != nil || setpoint != nil) {
            throw ValidationError("--remote-stop-at, --remote-reset-at and --setpoint need --world iot-rig")
        }
        if let s = remoteStopAt, !(s >= 0) { throw ValidationError("--remote-stop-at must be ≥ 0") }
        if let r = remoteResetAt, !(r >= 0) { throw ValidationError("--remote-reset-at must be ≥ 0") }
        if let c = setpoint, !(c > -40 && c < 150) { throw ValidationError("--setpoint must be within -40…150 °C") }
    }

    /// The rig's command topics; QoS 0 on purpose: the thermostat re-sends every period, and a
    /// command queued during an outage must not be replayed to the relay after it.
    static func routes(prefix: String) -> [MQTTBackend.Route] {
        [.init(channel: ChannelID(index: 0), name: "heater", topic: "\(prefix)/heater/set", stateNames: ["off", "on"],
               safeValue: .discrete(0), qos: 0),
         .init(channel: ChannelID(index: 1), name: "fan", topic: "\(prefix)/fan/set", safeValue: .continuous(0), qos: 0)]
    }

    /// `svg`: a file for the picture of the run (checked by `Demo.validate`).
    func run(seconds: Double, priority: Int?, cpu: Int?, faults: [SimulatorFault] = [], svg: String? = nil) throws {
        guard MosquittoBroker.isInstalled else { throw ValidationError("--world iot-rig needs mosquitto (/usr/sbin/mosquitto)") }
        let broker = try MosquittoBroker()
        try broker.start()
        defer { broker.stop() }
        stderrLine("broker: mosquitto on 127.0.0.1:\(broker.port) (pid \(broker.pid ?? -1))")

        var simOptions = SimulatorRunner.Options()
        simOptions.broker = ("127.0.0.1", broker.port)
        simOptions.rig.sampleHz = 2
        simOptions.rigReconnectMaxSeconds = 2
        simOptions.faults = faults
        let sim = try SimulatorRunner(options: simOptions)
        try sim.start()
        defer { sim.stop() }
        guard let rig = sim.rig else { throw ValidationError("the simulated rig did not start") }

        let scheduler = Scheduler(clock: MonotonicClock(), logger: Logger(label: "robotd.scheduler"))
        // Cleared at the end: the client's and the actuators' callbacks must not keep the runtime.
        let holder = Mutex<RigRuntime?>(nil)
        let client = try MQTTClient(options: MQTTOptions(port: broker.port, clientID: "robotd-rig-\(getpid())", reconnectMaxSeconds: 2),
                                    onEvent: { event in
            switch event {
            case .connected:
                // Back in its safe state before anything else goes out; the heater needs a reset.
                holder.withLock { $0 }?.requestReactivation(of: "rig", at: Instant(nanoseconds: rt_monotonic_ns()))
                stderrLine("broker link up")
            case .disconnected: stderrLine("broker link lost: \(event.reason)")
            case .connectRefused, .connectFailed: break
            }
        }) { message in holder.withLock { $0 }?.handle(message) }
        let backend = MQTTBackend(name: "rig", routes: Self.routes(prefix: rig.config.topicPrefix), client: client)
        let fifo = priority ?? (geteuid() == 0 ? 80 : 0)
        let writers = ActuatorSet.WriterOptions(fifoPriority: fifo > 0 ? max(1, fifo - 1) : nil)
        var configuration = RigRuntime.Configuration()
        configuration.temperatureTopic = "\(rig.config.topicPrefix)/temperature"
        if let setpoint { configuration.thermostat.setpoint = setpoint }
        let runtime = try RigRuntime(configuration: configuration, scheduler: scheduler, link: { client.isConnected }) { seal in
            try ActuatorSet(seal: seal, backends: [backend], clock: scheduler.clock, mode: .threaded(writers)) { fault in
                stderrLine("actuator fault: \(fault.error) (safe state \(fault.safeStateApplied ? "applied" : "not applied"))")
                holder.withLock { $0 }?.report(fault.error.code == .disconnected ? .connectionLost : .actuatorFailure,
                                               at: Instant(nanoseconds: rt_monotonic_ns()))
            }
        }
        holder.withLock { $0 = runtime }
        defer { holder.withLock { $0 = nil } }
        try runtime.subscribe(on: client)
        try client.start()
        defer { client.stop() }
        // The operator's console: a separate client, as a person with a phone would be.
        let console = try MQTTClient(options: MQTTOptions(port: broker.port, clientID: "robotd-rig-operator-\(getpid())")) { _ in }
        try console.start()
        defer { console.stop() }
        let ready = waitFor(seconds: 5) {
            client.counters.subscribed.load(ordering: .relaxed) >= 3 && sim.rigSubscriptions >= 2 && console.isConnected
        }
        if !ready { stderrLine("warning: not every MQTT subscription was confirmed within 5 s") }

        runtime.actuators.start()
        let report = try scheduler.start(realtime: fifo > 0 ? .realtime(priority: fifo, cpu: cpu) : RealtimeOptions(cpu: cpu))
        stderrLine("dispatch thread: \(report)")
        let stopped = SafeStopOnSignals(actuators: runtime.actuators) { signal in stderrLine("signal \(signal): relays in safe state") }
        defer { stopped.cancel() }

        let origin = Instant(nanoseconds: rt_monotonic_ns())
        var journal = RigJournal(origin: origin)
        var recorder = svg.map { _ in
            RunRecorder(robot: "simulated IoT rig", seed: rig.config.seed, rigBand: configuration.thermostat.band,
                        faults: RunRecorder.windows(faults))
        }
        let setpoint = configuration.thermostat.setpoint
        var stopSent = false
        var resetSent = false
        var nextStatus = 1.0
        let begin = Date()
        while runtime.actuators.state(of: "rig") != .finalized {
            let elapsed = Date().timeIntervalSince(begin)
            if elapsed >= seconds { break }
            if let at = remoteStopAt, !stopSent, elapsed >= at {
                stopSent = true
                publish(console, configuration.remoteStopTopic, "stop")
            }
            if let at = remoteResetAt, !resetSent, elapsed >= at {
                resetSent = true
                publish(console, configuration.remoteResetTopic, "reset")
            }
            let records = runtime.audit.drain()
            journal.note(records)
            recorder?.note(records)
            recorder?.sample(rig.snapshot(), simulatorTime: sim.rover.time, setpoint: setpoint, latched: runtime.status.latched)
            if elapsed >= nextStatus {
                nextStatus += 1
                stdoutLine(statusLine(runtime, scheduler, rig, client, elapsed: elapsed))
            }
            usleep(20_000)
        }
        runtime.actuators.safeStop(reason: "demo finished")
        scheduler.stop()
        // The relays' last state reaches the simulated rig before the summary reads it.
        _ = waitFor(seconds: 1) { !rig.snapshot().heaterOn }
        let records = runtime.audit.drain()
        journal.note(records)
        recorder?.note(records)
        recorder?.sample(rig.snapshot(), simulatorTime: sim.rover.time, setpoint: setpoint, latched: runtime.status.latched)
        var summary = statusLineJSON(runtime, scheduler, rig, client, elapsed: Date().timeIntervalSince(begin), kind: "summary")
        summary.addRaw("latches", json: "[" + journal.latches.joined(separator: ",") + "]")
        summary.addRaw("refused_resets", json: "[" + journal.refusals.joined(separator: ",") + "]")
        summary.add("remote_retained_ignored", Int(runtime.remoteRetainedIgnored.load(ordering: .relaxed)))
        stdoutLine(summary.text)
        if let svg, let recorder { try RunRecorder.write(recorder.finish(), to: svg) }
    }

    private func publish(_ console: MQTTClient, _ topic: String, _ word: String) {
        do {
            try console.publish(topic: topic, payload: Array(word.utf8), qos: 1, retain: false)
            stderrLine("operator: \(word) → \(topic)")
        } catch {
            stderrLine("operator: could not publish \(word): \(error)")
        }
    }

    private func statusLine(_ runtime: RigRuntime, _ scheduler: Scheduler, _ rig: RigSimulation, _ client: MQTTClient,
                            elapsed: Double) -> String {
        statusLineJSON(runtime, scheduler, rig, client, elapsed: elapsed, kind: "status").text
    }

    /// robotd's view beside the simulator's ground truth (`sim`).
    private func statusLineJSON(_ runtime: RigRuntime, _ scheduler: Scheduler, _ rig: RigSimulation, _ client: MQTTClient,
                                elapsed: Double, kind: String) -> JSONLine {
        let status = runtime.status
        var j = JSONLine()
        j.add("kind", kind)
        j.add("world", "iot-rig")
        j.add("t_s", (elapsed * 10).rounded() / 10)
        j.add("temperature_c", status.temperature)
        j.add("heater_wanted", status.wantedHeater)
        j.add("heater_approved", status.approvedHeater)
        j.add("fan_wanted", status.wantedFan)
        j.add("fan_approved", status.approvedFan)
        j.add("latched", status.latched)
        j.add("latch_cause", status.latchCause?.description ?? "")
        j.add("causes", status.causes.description)
        j.add("link_up", status.linkUp)
        j.add("verdicts_pass", status.verdicts.passed)
        j.add("verdicts_clamped", status.verdicts.clamped)
        j.add("verdicts_rejected", status.verdicts.rejected)
        j.add("verdicts_stop", status.verdicts.stopped)
        j.add("remote_stops", status.remoteStops)
        j.add("resets", status.resets)
        j.add("refused_reset_count", status.refusedResets)
        j.add("deadline_faults", status.deadlineFaults)
        if let task = scheduler.snapshot().task(named: "thermostat") {
            j.add("thermostat_releases", Int(task.releases))
            j.add("thermostat_misses", Int(task.misses))
            j.add("thermostat_start_p99_us", Double(task.startLatency.p99) / 1000)
            j.add("thermostat_response_p99_us", Double(task.responseTime.p99) / 1000)
        }
        let truth = rig.snapshot()
        var s = JSONLine()
        s.add("time_s", Double(truth.time) / 1e9)
        s.add("temperature_c", (truth.temperature * 100).rounded() / 100)
        s.add("heater", truth.heaterOn)
        s.add("fan", truth.fanDuty)
        s.add("fuse_blown", truth.fuseBlown)
        s.add("heater_commands", truth.counters.heaterCommands)
        s.add("relay_timeouts", truth.counters.relayTimeouts)
        s.add("ignored", truth.counters.commandsIgnored)
        j.addRaw("sim", json: s.text)
        return j
    }
}

/// Latches and refused resets from the guard's audit, for the summary.
private struct RigJournal {
    let origin: Instant
    var latches: [String] = []
    var refusals: [String] = []

    mutating func note(_ records: [AuditRecord]) {
        for record in records {
            let t = (Double(record.at.nanoseconds(since: origin)) / 1e8).rounded() / 10
            switch record.kind {
            case .latched:
                var j = JSONLine()
                j.add("t_s", t)
                j.add("cause", record.fault?.description ?? "")
                j.add("category", record.category?.rawValue ?? -1)
                latches.append(j.text)
            case .resetRefused:
                var j = JSONLine()
                j.add("t_s", t)
                j.add("causes", record.causes.description)
                refusals.append(j.text)
            default: break
            }
        }
    }
}

/// Polls `condition` every 10 ms for up to `seconds`.
private func waitFor(seconds: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}
