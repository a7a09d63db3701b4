import AIOSRobot
import Actuators
import ArgumentParser
import CRealtime
import Foundation
import Glibc
import RTScheduler
import RobotConfig
import RobotSim
import RunReport
import SafetyGuard
import Synchronization
import Transports

/// `robotd sim`: robotd and the bundled simulator together in one command — the configuration's
/// runtime (`RobotDaemon`, exactly what `robotd run` runs) against the simulator on a real pty and
/// FIFO (rover) or a real broker (IoT rig), with faults, scripted inputs, a scenario's success
/// criteria and a picture of the run.
struct Sim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim",
        abstract: "robotd and the bundled simulator in one command: a configuration, a scenario, faults, a picture of the run.",
        discussion: """
        The configuration (--config, or the world's example: examples/rover-sim.yaml, examples/iot-rig-sim.yaml) \
        runs exactly as `robotd run` would, against the simulator on a real pseudo-terminal and FIFO (rover) or a \
        broker it starts (IoT rig); only the device paths and the broker are the simulator's. One progress line per \
        second (pose or temperature, deadlines met and missed, the guard's interventions), or JSON lines with \
        --json; then a summary with every latch and its cause and every refused reset with its reasons. With a \
        scenario (examples/scenarios/) its success criteria are judged on the simulator's ground truth, and the \
        exit status is 1 when one fails. Precedence: flags over the scenario over the configuration.

        MQTT: the broker of --broker (with --username, --password-file or ROBOTD_MQTT_PASSWORD, --ca-file), or the \
        configuration's unless it names robotd-sim's default (127.0.0.1:18830); otherwise a Mosquitto of its own on a \
        free loopback port, said on stderr (`broker: mosquitto on 127.0.0.1:PORT (pid N)`) so that a monitor can be \
        pointed at it. Without mosquitto installed, the rover runs without MQTT (and says so). --robot-id renames the \
        robot (its topics, robotd/ID/…) for several instances of one file.

        `robotd demo` is the same command under its former name. Hardware runs with `robotd run --config FILE`.

        Example:
          # the simulated rover; e-stop at 12 s, reset at 15 s, a picture of the run
          robotd sim --world rover --seconds 20 --estop-at 12 --reset-at 15 --svg run.svg
          # the serial cable pulled at 5 s for 2 s, a reset at 9 s
          robotd sim --fault serial-unplug@5+2 --reset-at 9
          # a scenario and its success criteria
          robotd sim --scenario examples/scenarios/rover-square.yaml
          # the IoT rig over MQTT, an operator's remote stop at 8 s
          robotd sim --world iot-rig --remote-stop-at 8
          # a second rover on a broker that is already running
          robotd sim --broker 127.0.0.1:1883 --robot-id rover-2 --priority 0
          # a goal: the built-in planner's plan, executed by the rover's `route` policy
          robotd sim --world rover --goal "patrol the corners" --planner builtin --seconds 60
        """,
        aliases: ["demo"])

    @Option(help: "The world: rover or iot-rig (default: the scenario's, else rover).")
    var world: DemoWorld?

    @Option(help: "The robot's configuration (default: the scenario's, else the world's example).")
    var config: String?

    @Option(help: "A scenario file: start, obstacles, waypoints, faults, success criteria (examples/scenarios/).")
    var scenario: String?

    @Option(help: "Run for this many seconds (default: the scenario's, else 20; SIGINT/SIGTERM stop earlier, in the safe state).")
    var seconds: Double?

    @Option(help: "Seed of the sensor noise (default: the scenario's, else 1).")
    var seed: UInt64?

    @Option(help: "Rover: press the gamepad's e-stop key (BTN_EAST) this many seconds after the start.")
    var estopAt: Double?

    @Option(help: "Rover: press and release the reset key (BTN_START) this many seconds after the start (repeatable).")
    var resetAt: [Double] = []

    @Option(name: .customLong("fault"), parsing: .singleValue,
            help: ArgumentHelp("Inject a fault KIND@SECONDS[+DURATION] (repeatable; no duration: to the end). Kinds: \(WorldFault.validKinds).",
                               valueName: "kind@s[+s]"),
            transform: WorldFault.parse)
    var faults: [WorldFault] = []

    @Option(help: "Rover: a workspace circle of this radius (m) around the odometry's origin, instead of the configuration's.")
    var workspaceRadius: Double?

    @Option(help: "IoT rig: the thermostat's setpoint (°C).")
    var setpoint: Double?

    @Option(help: "IoT rig: an operator's remote stop this many seconds after the start.")
    var remoteStopAt: Double?

    @Option(help: "IoT rig: an operator's reset this many seconds after the start.")
    var remoteResetAt: Double?

    @Option(help: "A goal for the planner (the configuration needs `abilities`), given once the pose is known: the goal, the plan (or why it was rejected) and its progress are printed on stderr.")
    var goal: String?

    @Option(help: "The planner: builtin (the built-in planner alone), or the base URL of an OpenAI-compatible server (http://HOST:PORT/v1), asked first, with the built-in planner after it. Default: the configuration's.")
    var planner: String?

    @Option(help: "With --planner URL: the model the server is asked for (default: default).")
    var model: String?

    @Option(help: ArgumentHelp("Write a picture of the run (the simulator's ground truth, latches, faults) as SVG to this file.",
                               valueName: "file"))
    var svg: String?

    @Flag(help: "JSON lines instead of the progress lines (robotd's view beside the simulator's ground truth).")
    var json = false

    @Option(help: "SCHED_FIFO priority of the dispatch thread (default: the configuration's; 0: none).")
    var priority: Int?

    @Option(help: "CPU to pin the dispatch thread to.")
    var cpu: Int?

    @OptionGroup var connection: BrokerOptions

    func validate() throws {
        if let seconds, !(seconds > 0) { throw ValidationError("--seconds must be positive") }
        if let priority, !(0...99).contains(priority) { throw ValidationError("--priority must be 0…99") }
        if let r = workspaceRadius, !(r > 0) { throw ValidationError("--workspace-radius must be positive") }
        if let e = estopAt, !(e >= 0) { throw ValidationError("--estop-at must be ≥ 0") }
        if resetAt.contains(where: { !($0 >= 0) }) { throw ValidationError("--reset-at must be ≥ 0") }
        if let c = setpoint, !(c > -40 && c < 150) { throw ValidationError("--setpoint must be within -40…150 °C") }
        if faults.filter({ if case .policy = $0 { true } else { false } }).count > 1 {
            throw ValidationError("one policy-hang or policy-spin fault per run")
        }
        if let svg, let problem = RunRecorder.validate(svg) { throw ValidationError(problem) }
        if let planner, planner != "builtin" {
            let url = URL(string: planner)
            guard let scheme = url?.scheme?.lowercased(), scheme == "http" || scheme == "https", !(url?.host ?? "").isEmpty else {
                throw ValidationError("--planner: builtin, or an http(s):// base URL such as http://127.0.0.1:8080/v1")
            }
        }
        if model != nil && (planner == nil || planner == "builtin") { throw ValidationError("--model needs --planner URL") }
        if let goal, goal.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { throw ValidationError("--goal is empty") }
    }

    func run() throws {
        RealtimeSetup.prepareProcess()
        let plan = try SimPlan(self)
        try plan.run()
    }
}

/// What one `robotd sim` run does, with the precedence resolved: flags, then the scenario, then the
/// configuration.
struct SimPlan {
    var world: DemoWorld
    var configuration: RobotConfiguration
    var scenario: Scenario?
    var seconds: Double
    var seed: UInt64
    var estopAt: Double?
    var resetAt: [Double]
    var faults: [SimulatorFault]
    var policyFault: (kind: String, at: Double)?
    var remoteStopAt: Double?
    var remoteResetAt: Double?
    var setpoint: Double?
    var svg: String?
    var json: Bool
    var criteria: [ScenarioCriterion]
    var waypoints: [[Double]]
    var realtime: RealtimeOptions?
    /// A broker named by `--broker` or by the configuration (not robotd-sim's default): the run
    /// uses it instead of starting its own.
    var brokerGiven: Bool

    init(_ command: Sim) throws {
        var scenario: Scenario?
        var scenarioFolder = FileManager.default.currentDirectoryPath
        if let path = command.scenario {
            scenario = try ScenarioFile.load(path)
            scenarioFolder = (path as NSString).deletingLastPathComponent
        }
        self.scenario = scenario
        guard let world = command.world ?? scenario?.world.flatMap(DemoWorld.init(rawValue:)) ?? .rover as DemoWorld? else {
            throw ValidationError("unknown world")
        }
        self.world = world
        let configPath: String
        if let c = command.config {
            configPath = c
        } else if let c = scenario?.config {
            configPath = c.hasPrefix("/") ? c : (scenarioFolder as NSString).appendingPathComponent(c)
        } else {
            configPath = try ExampleFiles.path(world == .rover ? "rover-sim.yaml" : "iot-rig-sim.yaml")
        }
        configuration = try ConfigurationFile.load(configPath)
        try command.connection.apply(to: &configuration)
        brokerGiven = command.connection.broker != nil || configuration.mqtt.map { $0.broker != SimBroker.simulatorDefault } == true
        seconds = command.seconds ?? scenario?.seconds ?? 20
        seed = command.seed ?? scenario?.seed ?? 1
        estopAt = command.estopAt ?? scenario?.estopAtS
        resetAt = command.resetAt.isEmpty ? scenario?.resetAtS ?? [] : command.resetAt
        var worldFaults = command.faults
        if command.faults.isEmpty {
            worldFaults = try (scenario?.faults ?? []).map { try WorldFault.parse($0) }
        }
        faults = worldFaults.compactMap { if case .simulator(let f) = $0 { f } else { nil } }
        policyFault = worldFaults.lazy.compactMap { if case .policy(let k, let at) = $0 { (k, at) } else { nil } }.first
        remoteStopAt = command.remoteStopAt ?? scenario?.remoteStopAtS
        remoteResetAt = command.remoteResetAt ?? scenario?.remoteResetAtS
        setpoint = command.setpoint ?? scenario?.setpoint
        svg = command.svg
        json = command.json
        waypoints = scenario?.waypoints ?? []
        criteria = (scenario?.criteria ?? []).map(\.criterion)
        if command.priority != nil || command.cpu != nil {
            let fifo = command.priority ?? configuration.scheduler.priority ?? (geteuid() == 0 ? 80 : 0)
            realtime = fifo > 0 ? .realtime(priority: fifo, cpu: command.cpu) : RealtimeOptions(cpu: command.cpu)
        }
        if world == .rover, let f = faults.first(where: { $0.kind == .brokerStop }) {
            throw ValidationError("fault \(f.kind.rawValue) is a fault of the IoT rig: use it with --world iot-rig")
        }
        if world == .iotRig, let f = faults.first(where: { $0.kind != .brokerStop }) {
            throw ValidationError("fault \(f.kind.rawValue) is a rover fault; the iot-rig world takes broker-stop")
        }
        if world == .iotRig && (estopAt != nil || !resetAt.isEmpty) {
            throw ValidationError("--estop-at/--reset-at press the rover's gamepad; the rig takes --remote-stop-at/--remote-reset-at")
        }
        if world == .rover && (remoteStopAt != nil || remoteResetAt != nil || setpoint != nil) {
            throw ValidationError("--remote-stop-at, --remote-reset-at and --setpoint need --world iot-rig")
        }
        try applyOverrides(command)
    }

    /// The flags' and the scenario's changes to the configuration.
    private mutating func applyOverrides(_ command: Sim) throws {
        if let r = command.workspaceRadius {
            configuration.workspace = WorkspaceSettings(polygon: nil, radius: r, center: nil, warnMargin: 0.5, stopMargin: 0.3, stopCategory: 1)
        }
        if let s = scenario?.start, var odometry = configuration.odometry {
            odometry.initialPose = s  // the simulated rover starts there: so does its odometry
            configuration.odometry = odometry
        }
        if !waypoints.isEmpty {
            guard let i = configuration.policies.firstIndex(where: { $0.kind == "waypoints" }) else {
                throw ValidationError("the scenario has waypoints but the configuration has no `waypoints` policy")
            }
            configuration.policies[i].settings = configuration.policies[i].settings.setting("points", to: .list(waypoints.map { .list($0.map(ConfigValue.number)) }))
        }
        if let setpoint {
            guard let i = configuration.policies.firstIndex(where: { $0.kind == "thermostat" }) else {
                throw ValidationError("--setpoint needs a `thermostat` policy in the configuration")
            }
            configuration.policies[i].settings = configuration.policies[i].settings.setting("setpoint", to: .number(setpoint))
        }
        if command.goal != nil || command.planner != nil {
            guard !configuration.abilities.isEmpty else {
                throw ValidationError("--goal and --planner need `abilities` in the configuration (docs/planner.md)")
            }
        }
        if let goal = command.goal { configuration.planner.goals.initial = goal }
        switch command.planner {
        case "builtin"?:
            configuration.planner.backends = []
            configuration.planner.builtin = true
        case let url?:
            var backend = PlannerBackendSettings(name: "model", baseURL: url, model: command.model ?? "default")
            backend.deadlineMs = min(backend.deadlineMs, configuration.planner.budgetMs)
            configuration.planner.backends = [backend]
            configuration.planner.builtin = true
        case nil:
            break
        }
    }

    func run() throws {
        switch world {
        case .rover: try SimRun.rover(self)
        case .iotRig: try SimRun.rig(self)
        }
    }
}

extension Scenario.CriterionSettings {
    var criterion: ScenarioCriterion {
        switch self {
        case .noCollision: .noCollision
        case .zeroCriticalMisses: .zeroCriticalMisses
        case .neverLatchedExceptInjected(let grace): .neverLatchedExceptInjected(grace: grace ?? 1)
        case .reachWaypoint(let k, let within, let tolerance): .reachWaypoint(waypoint: k, within: within, tolerance: tolerance ?? 0.2)
        case .temperatureWithin(let celsius, let after): .temperatureWithin(celsius: celsius, afterSettling: after)
        }
    }
}

extension ConfigValue {
    /// This map with `key` set to `value` (added at the end if absent).
    func setting(_ key: String, to value: ConfigValue) -> ConfigValue {
        guard case .map(var entries) = self else { return .map([.init(key: key, value: value)]) }
        if let i = entries.firstIndex(where: { $0.key == key }) { entries[i].value = value } else { entries.append(.init(key: key, value: value)) }
        return .map(entries)
    }
}

/// The example configurations (`--world` without `--config`): found in the repository the binary
/// was built in (`swift run`, .build/…/robotd), or next to an installed binary under
/// ../share/robotd/examples.
enum ExampleFiles {
    static func path(_ name: String) throws -> String {
        var candidates: [String] = []
        var folder = URL(fileURLWithPath: CommandLine.arguments.first ?? ".").resolvingSymlinksInPath().deletingLastPathComponent()
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            folder = URL(fileURLWithPath: exe).deletingLastPathComponent()
        }
        candidates.append(folder.appendingPathComponent("../share/robotd/examples").path)
        for _ in 0..<6 {
            candidates.append(folder.appendingPathComponent("examples").path)
            folder = folder.deletingLastPathComponent()
        }
        candidates.append(FileManager.default.currentDirectoryPath + "/examples")
        for c in candidates where FileManager.default.fileExists(atPath: c + "/" + name) {
            return (c as NSString).standardizingPath + "/" + name
        }
        throw ValidationError("cannot find examples/\(name) (looked next to the binary and in the current folder); pass --config FILE")
    }
}

/// The paths and broker in a configuration that name the simulator's defaults (`robotd-sim`'s
/// /tmp/robotd-sim/…, broker 127.0.0.1:18830) point at this run's simulator instead.
enum SimulatorEndpoints {
    static let defaultFolder = "/tmp/robotd-sim/"

    /// A device path outside the simulator's folder is refused: `robotd sim` must never open a
    /// real device (a hardware configuration runs with `robotd run`).
    static func rewrite(_ configuration: inout RobotConfiguration, folder: String, broker: String?) throws {
        for (owner, settings) in configuration.inputs.map({ ("input \($0.name)", $0.settings) }) + configuration.actuators.map({ ("actuator \($0.name)", $0.settings) }) {
            if case .string(let path)? = settings["path"], !path.hasPrefix(defaultFolder) {
                throw ValidationError("\(owner): \(path) is not a simulator path (\(defaultFolder)…): robotd sim never opens a real device; run hardware with robotd run --config")
            }
        }
        func moved(_ value: ConfigValue) -> ConfigValue {
            guard case .string(let path)? = value["path"], path.hasPrefix(defaultFolder) else { return value }
            return value.setting("path", to: .string(folder + "/" + path.dropFirst(defaultFolder.count)))
        }
        for i in configuration.inputs.indices { configuration.inputs[i].settings = moved(configuration.inputs[i].settings) }
        for i in configuration.actuators.indices { configuration.actuators[i].settings = moved(configuration.actuators[i].settings) }
        if let broker, configuration.mqtt != nil { configuration.mqtt?.broker = broker }
    }
}
