import AIOSRobot
import ArgumentParser
import Foundation
import Glibc
import RobotSim
import RobotdCommandLine
import Synchronization
import Transports

/// The bundled simulator as its own program, an outside peer for robotd (or any other program):
/// the rover behind a pseudo-terminal with its gamepad FIFO at fixed paths, or the IoT rig on an
/// MQTT broker. It runs in real time until `--seconds` or SIGINT/SIGTERM, and removes its paths
/// (and stops the broker it started) on the way out.
@main
struct RobotdSim: ParsableCommand {
    static let defaultDirectory = "/tmp/robotd-sim"
    static let defaultBrokerPort = 18830

    static let configuration = CommandConfiguration(
        commandName: "robotd-sim",
        abstract: "The bundled simulator alone, in real time: the rover on a serial pty with a gamepad FIFO, or the IoT rig over MQTT.",
        discussion: """
        --world rover (the default): the rover's serial port is a symlink to a pseudo-terminal at \
        \(defaultDirectory)/rover and the gamepad an input_event FIFO at \(defaultDirectory)/gamepad \
        (--directory D: D/rover, D/gamepad). Stale links and FIFOs left there are replaced; both paths \
        are removed at exit.

        --world iot-rig: the rig's readings and relays on MQTT under sim/rig/ (temperature, humidity, \
        heater/state, fan/state; commands on heater/set, fan/set). --broker HOST:PORT uses that broker; \
        without it robotd-sim starts its own Mosquitto on 127.0.0.1:\(defaultBrokerPort) and stops it at exit.

        The first line on standard output is {"kind":"ready",…} with the paths or the broker and topics; then \
        the ground truth as JSON lines every --status-every seconds; a summary line at the end.

        Example:
          # terminal 1: the rover
          robotd-sim
          # terminal 2: robotd drives it (the file names /tmp/robotd-sim/rover, …/gamepad)
          robotd run --config examples/rover-sim.yaml
          # or just watch its sensor frames
          robotd echo serial /tmp/robotd-sim/rover --codec frame

          # the IoT rig on its own broker (127.0.0.1:18830), robotd on it, or its readings
          robotd-sim --world iot-rig
          robotd run --config examples/iot-rig-sim.yaml
          robotd echo mqtt --broker 127.0.0.1:18830 --field value 'sim/rig/+'
        """)

    @Option(help: "rover (a rover on a serial pty, a gamepad FIFO) or iot-rig (the IoT rig over MQTT).")
    var world: DemoWorld = .rover

    @Option(help: "rover: directory for the port link (D/rover) and the gamepad FIFO (D/gamepad). Default: \(defaultDirectory).")
    var directory: String?

    @Option(help: "Broker HOST:PORT. iot-rig: default, a Mosquitto of its own on 127.0.0.1:\(defaultBrokerPort). rover: also runs the rig on it.")
    var broker: String?

    @Option(help: "Stop after this many seconds (default: until SIGINT/SIGTERM).")
    var seconds: Double?

    @Option(help: "Seconds between status lines.")
    var statusEvery: Double = 1

    @OptionGroup var scenario: WorldOptions

    func validate() throws {
        if let broker, MQTTOptions.parseBroker(broker) == nil { throw ValidationError("--broker must be HOST:PORT") }
        guard statusEvery > 0 else { throw ValidationError("--status-every must be positive") }
        if let seconds, !(seconds > 0) { throw ValidationError("--seconds must be positive") }
        switch world {
        case .rover:
            if broker == nil, let f = scenario.simulatorFaults.first(where: { $0.kind == .brokerStop }) {
                throw ValidationError("--fault \(f.kind.rawValue) stops the rig's broker link: give --broker or use --world iot-rig")
            }
        case .iotRig:
            if directory != nil { throw ValidationError("--directory is for --world rover (the iot-rig world has no device paths)") }
            if scenario.estopAt != nil || !scenario.resetAt.isEmpty {
                throw ValidationError("--estop-at and --reset-at press the rover's gamepad: use them with --world rover")
            }
            if let f = scenario.simulatorFaults.first(where: { $0.kind != .brokerStop }) {
                throw ValidationError("--fault \(f.kind.rawValue) is a rover fault; the iot-rig world takes broker-stop")
            }
        }
    }

    func run() throws {
        // From the start: a Ctrl-C while the devices or the broker come up still cleans up.
        let signals = SignalWait()
        defer { signals.remove() }
        let begin = Date()  // --seconds counts from here, start-up included
        switch world {
        case .rover: try runRover(signals, begin)
        case .iotRig: try runRig(signals, begin)
        }
    }

    // MARK: rover

    private func runRover(_ signals: SignalWait, _ begin: Date) throws {
        let paths = try DevicePaths(directory: directory ?? Self.defaultDirectory)
        defer { paths.remove() }
        let brokerAddress = broker.flatMap(MQTTOptions.parseBroker)
        var options = scenario.simulatorOptions(directory: paths.directory, broker: brokerAddress)
        options.onRigLink = rigLinkLogger(broker ?? "")
        let runner = try SimulatorRunner(options: options)
        try runner.start()
        let pty = (try? FileManager.default.destinationOfSymbolicLink(atPath: paths.rover)) ?? ""
        var ready = JSONLine()
        ready.add("kind", "ready")
        ready.add("world", "rover")
        ready.add("rover", paths.rover)
        ready.add("pty", pty)
        ready.add("gamepad", paths.gamepad)
        if let broker {
            ready.add("broker", broker)
            ready.addRaw("topics", json: topicsJSON(runner.rig))
        }
        stdoutLine(ready.text)
        let drive = paths.directory == Self.defaultDirectory
            ? "robotd run --config examples/rover-sim.yaml"
            : "robotd run --config FILE   (a copy of examples/rover-sim.yaml with these two paths)"
        stderrLine("""
        robotd-sim: the rover's serial port is \(paths.rover) (→ \(pty)), its gamepad \(paths.gamepad)
          drive it:  \(drive)
          watch it:  robotd echo serial \(paths.rover) --codec frame
        """)
        loop(runner, signals, begin)
        runner.stop()
        let stats = runner.statistics
        stdoutLine("{\"kind\":\"summary\",\"rover\":\(roverJSON(runner.rover.snapshot())),\"ticks\":\(stats.ticks),\"late_ticks\":\(stats.lateTicks),\"unheard_bytes\":\(stats.roverBytesUnheard)}")
    }

    // MARK: iot-rig

    private func runRig(_ signals: SignalWait, _ begin: Date) throws {
        var ownBroker: MosquittoBroker?
        let address: (host: String, port: Int)
        if let broker, let parsed = MQTTOptions.parseBroker(broker) {
            address = parsed
        } else {
            guard MosquittoBroker.isInstalled else {
                throw SimCommandError("no /usr/sbin/mosquitto to start a broker (scripts/setup.sh installs it); or give --broker HOST:PORT")
            }
            let port = Self.defaultBrokerPort
            guard !MosquittoBroker.accepts(port: port) else {
                throw SimCommandError("something already listens on 127.0.0.1:\(port) (another robotd-sim --world iot-rig?): "
                                      + "use it with --broker 127.0.0.1:\(port), or stop it")
            }
            let started = try MosquittoBroker(port: port)
            try started.start()
            ownBroker = started
            address = ("127.0.0.1", port)
            stderrLine("robotd-sim: started mosquitto on 127.0.0.1:\(port) (pid \(started.pid ?? -1)); it stops when robotd-sim does")
        }
        defer { ownBroker?.stop() }
        let brokerText = "\(address.host):\(address.port)"
        var options = SimulatorRunner.Options()
        options.broker = address
        options.rigReconnectMaxSeconds = 2
        options.faults = scenario.simulatorFaults
        options.onRigLink = rigLinkLogger(brokerText)
        let runner = try SimulatorRunner(options: options)
        try runner.start()
        // "ready" once the rig listens for commands (both SUBACKs), or after 5 s with the reason
        // already on standard error.
        let deadline = Date().addingTimeInterval(min(5, seconds ?? 5))
        var interrupted = false
        while runner.rigSubscriptions < 2 && Date() < deadline && !interrupted { interrupted = signals.wait(seconds: 0.02) }
        var ready = JSONLine()
        ready.add("kind", "ready")
        ready.add("world", "iot-rig")
        ready.add("broker", brokerText)
        ready.add("broker_started", ownBroker != nil)
        ready.add("connected", runner.isRigConnected)
        ready.addRaw("topics", json: topicsJSON(runner.rig))
        stdoutLine(ready.text)
        let prefix = runner.rig?.config.topicPrefix ?? "sim/rig"
        stderrLine("""
        robotd-sim: the IoT rig on \(brokerText): readings on \(prefix)/temperature and \(prefix)/humidity, relay states on \
        \(prefix)/heater/state and \(prefix)/fan/state; commands on \(prefix)/heater/set (on/off) and \(prefix)/fan/set (0…1)
          drive it:  robotd run --config examples/iot-rig-sim.yaml   (broker 127.0.0.1:\(Self.defaultBrokerPort))
          watch it:  robotd echo mqtt --broker \(brokerText) --field value '\(prefix)/+'
        """)
        loop(runner, signals, begin)
        runner.stop()
        let stats = runner.statistics
        var summary = JSONLine()
        summary.add("kind", "summary")
        summary.add("world", "iot-rig")
        if let rig = runner.rig { summary.addRaw("rig", json: rigJSON(rig.snapshot())) }
        summary.add("ticks", stats.ticks)
        summary.add("late_ticks", stats.lateTicks)
        summary.add("rig_publish_failures", stats.rigPublishFailures)
        stdoutLine(summary.text)
    }

    // MARK: shared

    /// Status lines until `--seconds` or SIGINT/SIGTERM.
    private func loop(_ runner: SimulatorRunner, _ signals: SignalWait, _ begin: Date) {
        while true {
            let left = seconds.map { $0 - Date().timeIntervalSince(begin) } ?? statusEvery
            if left <= 0 || signals.wait(seconds: min(statusEvery, left)) { break }
            if world == .rover { stdoutLine("{\"kind\":\"rover\",\"state\":\(roverJSON(runner.rover.snapshot()))}") }
            if let rig = runner.rig {
                stdoutLine("{\"kind\":\"rig\",\"state\":\(rigJSON(rig.snapshot()))}")
            }
        }
    }

    private func rigJSON(_ rig: RigSnapshot) -> String {
        var j = JSONLine()
        j.add("time_s", Double(rig.time) / 1e9)
        j.add("temperature_c", (rig.temperature * 100).rounded() / 100)
        j.add("humidity_pct", (rig.relativeHumidity * 10).rounded() / 10)
        j.add("heater", rig.heaterOn)
        j.add("fan", rig.fanDuty)
        j.add("fuse_blown", rig.fuseBlown)
        j.add("link_up", rig.linkUp)
        j.add("relay_timeouts", rig.counters.relayTimeouts)
        j.addRaw("active_faults", json: jsonStrings(rig.activeFaults))
        return j.text
    }

    private func topicsJSON(_ rig: RigSimulation?) -> String {
        let prefix = rig?.config.topicPrefix ?? "sim/rig"
        var j = JSONLine()
        j.add("temperature", "\(prefix)/temperature")
        j.add("humidity", "\(prefix)/humidity")
        j.add("heater_state", "\(prefix)/heater/state")
        j.add("fan_state", "\(prefix)/fan/state")
        j.add("heater_set", "\(prefix)/heater/set")
        j.add("fan_set", "\(prefix)/fan/set")
        return j.text
    }
}

/// The rig's broker link in words on standard error: each change once (a refused connection is
/// retried with backoff and not repeated).
private func rigLinkLogger(_ broker: String) -> @Sendable (MQTTClient.LinkEvent) -> Void {
    let last = LastLine()
    return { event in
        let line = switch event {
        case .connected: "robotd-sim: rig connected to \(broker)"
        case .disconnected(code: 0): ""  // our own clean DISCONNECT at the end
        case .disconnected: "robotd-sim: rig lost \(broker): \(event.reason); reconnecting"
        case .connectRefused, .connectFailed: "robotd-sim: rig cannot connect to \(broker): \(event.reason); retrying"
        }
        if !line.isEmpty && last.changed(to: line) { stderrLine(line) }
    }
}

/// The last line logged, to say each change once.
private final class LastLine: Sendable {
    private let text = Mutex<String?>(nil)
    func changed(to line: String) -> Bool {
        text.withLock { last in
            defer { last = line }
            return last != line
        }
    }
}
