import AIOSRobot
import ArgumentParser
import CRealtime
import Foundation
import Glibc
import RobotSim
import Transports

/// One `--fault KIND@SECONDS[+DURATION]`: a fault the simulator injects, or a `policy-*` fault
/// that robotd injects into its own policy (a test hook, not the simulator's).
enum WorldFault: Sendable, Equatable {
    case simulator(SimulatorFault)
    case policy(kind: String, at: Double)

    static let policyKinds = ["policy-hang", "policy-spin"]
    static var validKinds: String { (SimulatorFault.Kind.allCases.map(\.rawValue) + policyKinds).joined(separator: ", ") }

    static func parse(_ text: String) throws -> WorldFault {
        let spec: (kind: String, at: Double, duration: Double?)
        do { spec = try SimulatorFault.parseSpecification(text) } catch {
            throw ValidationError("\(error.description); kinds: \(validKinds)")
        }
        if policyKinds.contains(spec.kind) {
            // The policy hook has no release before the end of the run.
            guard spec.duration == nil else { throw ValidationError("'\(text)': \(spec.kind) lasts to the end of the run; no +DURATION") }
            return .policy(kind: spec.kind, at: spec.at)
        }
        guard SimulatorFault.Kind(rawValue: spec.kind) != nil, let fault = try? SimulatorFault(parsing: text) else {
            throw ValidationError("'\(text)': unknown fault '\(spec.kind)'; kinds: \(validKinds)")
        }
        return .simulator(fault)
    }
}

/// Options that describe the simulated world and its scripted gamepad, shared by `sim` and `demo`.
struct WorldOptions: ParsableArguments {
    @Option(help: "Seed of the sensor noise.")
    var seed: UInt64 = 1

    @Option(help: "Press the gamepad's e-stop key (BTN_EAST) this many seconds after the start.")
    var estopAt: Double?

    @Option(help: "Press and release the reset key (BTN_START) this many seconds after the start (repeatable).")
    var resetAt: [Double] = []

    @Option(name: .customLong("fault"), parsing: .singleValue,
            help: ArgumentHelp("Inject a fault KIND@SECONDS[+DURATION] (repeatable; no duration: to the end). Kinds: \(WorldFault.validKinds).",
                               valueName: "kind@s[+s]"),
            transform: WorldFault.parse)
    var faults: [WorldFault] = []

    /// The faults for the simulator (`SimulatorRunner.Options.faults`).
    var simulatorFaults: [SimulatorFault] { faults.compactMap { if case .simulator(let f) = $0 { f } else { nil } } }

    /// `policy-hang`/`policy-spin` and their start (s), for robotd's own policy test hook.
    var policyFaults: [(kind: String, at: Double)] {
        faults.compactMap { if case .policy(let kind, let at) = $0 { (kind, at) } else { nil } }
    }

    func validate() throws {
        if let e = estopAt, e < 0 { throw ValidationError("--estop-at must be ≥ 0") }
        if resetAt.contains(where: { !($0 >= 0) }) { throw ValidationError("--reset-at must be ≥ 0") }
    }

    func simulatorOptions(directory: String, broker: (host: String, port: Int)?) -> SimulatorRunner.Options {
        var options = SimulatorRunner.Options()
        options.rover.seed = seed
        options.roverLinkPath = directory + "/rover"
        options.gamepadFIFO = directory + "/gamepad"
        options.broker = broker
        var script: [SimulatedGamepad.Step] = []
        if let e = estopAt {
            let t = Int64(e * 1e9)
            script += [.init(at: t, [.press("BTN_EAST")]), .init(at: t + 100_000_000, [.release("BTN_EAST")])]
        }
        for r in resetAt {
            let t = Int64(r * 1e9)
            script += [.init(at: t, [.press("BTN_START")]), .init(at: t + 100_000_000, [.release("BTN_START")])]
        }
        options.gamepadScript = script
        options.faults = simulatorFaults
        return options
    }
}

/// Waits for SIGINT/SIGTERM (through the self-pipe) or a time-out.
struct SignalWait {
    let fd: Int32
    init() { fd = [SIGINT, SIGTERM].withUnsafeBufferPointer { rt_signal_pipe_install($0.baseAddress, 2) } }
    /// True if a signal arrived within `seconds`.
    func wait(seconds: Double) -> Bool {
        guard fd >= 0 else { usleep(UInt32(seconds * 1e6)); return false }
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&poller, 1, Int32(seconds * 1000)) > 0
    }
    func remove() { [SIGINT, SIGTERM].withUnsafeBufferPointer { rt_signal_pipe_remove($0.baseAddress, 2) } }
}

/// One line to standard output, unbuffered (status lines are read live by pipes and tests).
func stdoutLine(_ text: String) { FileHandle.standardOutput.write(Data((text + "\n").utf8)) }

func roverJSON(_ s: RoverSnapshot) -> String {
    var j = JSONLine()
    j.add("time_s", Double(s.time) / 1e9)
    j.add("x", s.pose.x)
    j.add("y", s.pose.y)
    j.add("yaw", s.pose.yaw)
    j.add("speed_mps", s.linearVelocity)
    j.add("yaw_rate", s.angularVelocity)
    j.add("energised", s.leftEnergised || s.rightEnergised)
    j.add("odometer_m", s.odometer)
    j.add("collisions", s.collisions)
    j.add("commands", s.firmware.commandsApplied)
    j.add("deenergise_commands", s.firmware.deenergiseCommands)
    j.add("ignored", s.firmware.commandsIgnored)
    j.add("rejected_frames", s.firmware.framesRejected)
    j.add("firmware_watchdog_trips", s.firmware.watchdogTrips)
    j.add("link_up", s.linkUp)
    j.addRaw("active_faults", json: jsonStrings(s.activeFaults))
    return j.text
}

/// Fault names are plain ASCII kinds ("range-dead"): quoting them needs no escaping.
func jsonStrings(_ names: [String]) -> String { "[" + names.map { "\"\($0)\"" }.joined(separator: ",") + "]" }

struct Sim: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the bundled simulator in real time: the rover on a pty, the gamepad as an input_event FIFO, the IoT rig on MQTT.")

    @Option(help: "Directory for the rover's port link and the gamepad FIFO.")
    var directory = "/tmp/robotd-sim"

    @Option(help: "Broker (HOST:PORT) for the IoT rig; without it the rig does not run.")
    var broker: String?

    @Option(help: "Stop after this many seconds (default: until SIGINT/SIGTERM).")
    var seconds: Double?

    @Option(help: "Seconds between status lines.")
    var statusEvery: Double = 1

    @OptionGroup var world: WorldOptions

    func validate() throws {
        if let broker, MQTTOptions.parseBroker(broker) == nil { throw ValidationError("--broker must be HOST:PORT") }
        guard statusEvery > 0 else { throw ValidationError("--status-every must be positive") }
        if let policy = world.policyFaults.first {
            throw ValidationError("--fault \(policy.kind) is robotd's own policy fault: use it with `robotd demo`")
        }
    }

    func run() throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let runner = try SimulatorRunner(options: world.simulatorOptions(directory: directory, broker: broker.flatMap(MQTTOptions.parseBroker)))
        try runner.start()
        var ready = JSONLine()
        ready.add("kind", "ready")
        ready.add("rover", runner.roverDevicePath)
        ready.add("gamepad", runner.gamepadPath ?? "")
        if let broker { ready.add("rig", "mqtt://\(broker)/sim/rig") }
        stdoutLine(ready.text)
        let signals = SignalWait()
        let begin = Date()
        while true {
            let left = seconds.map { $0 - Date().timeIntervalSince(begin) } ?? statusEvery
            if left <= 0 || signals.wait(seconds: min(statusEvery, left)) { break }
            stdoutLine("{\"kind\":\"rover\",\"state\":\(roverJSON(runner.rover.snapshot()))}")
            if let rig = runner.rig?.snapshot() {
                var j = JSONLine()
                j.add("kind", "rig")
                j.add("temperature_c", rig.temperature)
                j.add("humidity_pct", rig.relativeHumidity)
                j.add("heater", rig.heaterOn)
                j.add("fan", rig.fanDuty)
                j.add("fuse_blown", rig.fuseBlown)
                j.add("link_up", rig.linkUp)
                j.addRaw("active_faults", json: jsonStrings(rig.activeFaults))
                stdoutLine(j.text)
            }
        }
        signals.remove()
        runner.stop()
        let stats = runner.statistics
        stdoutLine("{\"kind\":\"summary\",\"rover\":\(roverJSON(runner.rover.snapshot())),\"ticks\":\(stats.ticks),\"late_ticks\":\(stats.lateTicks),\"unheard_bytes\":\(stats.roverBytesUnheard)}")
    }
}
