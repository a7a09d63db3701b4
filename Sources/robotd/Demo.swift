import AIOSRobot
import Actuators
import ArgumentParser
import Foundation
import Glibc
import RTScheduler
import RobotSim
import SafetyGuard
import Transports

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim",
        abstract: "robotd driving a rover: the bundled simulator (default) or real devices via --rover/--gamepad.",
        discussion: """
        Sensor frames come in over the rover's serial port, the obstacle-avoiding policy runs as a critical \
        50 Hz task on the real-time dispatch thread, every wheel command goes through the safety guard and \
        out as motor frames; the gamepad's BTN_EAST latches the e-stop and releasing BTN_START resets it (a \
        reset is refused while any stop cause persists). One JSON status line per second; a summary at the end \
        with every latch and its cause and every refused reset with its reasons.

        With the bundled simulator the rover starts released (it drives at once). On hardware (--rover) robotd \
        starts latched (power-on) and nothing moves until a deliberate reset. With --rover an e-stop device \
        (--gamepad) is required unless --no-estop-device is given. A software e-stop does not replace a \
        hard-wired one that cuts motor power.

        `robotd demo` is the same command under its former name.

        Example:
          # the simulated rover; e-stop at 12 s, reset at 15 s
          robotd sim --seconds 20 --estop-at 12 --reset-at 15
          # the serial cable pulled at 5 s for 2 s, a reset at 9 s
          robotd sim --fault serial-unplug@5+2 --reset-at 9
          # the IoT rig over MQTT, an operator's remote stop at 8 s
          robotd sim --world iot-rig --remote-stop-at 8
          # the same control path on hardware
          robotd sim --rover /dev/ttyUSB0 --gamepad /dev/input/event3
        """,
        aliases: ["demo"])

    @Option(help: "Run for this many seconds (SIGINT/SIGTERM stop earlier, in the safe state).")
    var seconds: Double = 20

    @Option(help: "The rover's serial port (a device, a pty or usb-serial:SERIAL). Default: start the bundled simulator.")
    var rover: String?

    @Option(help: "Input device for e-stop/reset: /dev/input/eventN or an input_event FIFO. Default: the simulator's.")
    var gamepad: String?

    @Option(help: "SCHED_FIFO priority of the dispatch thread (default 80 as root, none otherwise; 0: none).")
    var priority: Int?

    @Option(help: "CPU to pin the dispatch thread to.")
    var cpu: Int?

    @Option(help: "Workspace: a circle of this radius (m) around the odom origin, checked on the odometry pose.")
    var workspaceRadius: Double?

    @Flag(help: "With --rover: run without an e-stop device (warned at start and in the summary).")
    var noEstopDevice = false

    @Option(help: ArgumentHelp("Write a picture of the run (the simulator's ground truth, latches, faults) as SVG to this file.",
                               valueName: "file"))
    var svg: String?

    @OptionGroup var world: WorldOptions

    /// `--world rover|iot-rig` and the rig's options (RigDemo.swift).
    @OptionGroup var rig: RigDemoOptions

    func validate() throws {
        guard seconds > 0 else { throw ValidationError("--seconds must be positive") }
        if let priority, !(0...99).contains(priority) { throw ValidationError("--priority must be 0…99") }
        if let r = workspaceRadius, !(r > 0) { throw ValidationError("--workspace-radius must be positive") }
        if rover != nil && (world.estopAt != nil || !world.resetAt.isEmpty || !world.simulatorFaults.isEmpty) {
            throw ValidationError("--estop-at/--reset-at/--fault script the simulator; with --rover there is no simulator")
        }
        if rig.world == .rover, let f = world.simulatorFaults.first(where: { $0.kind == .brokerStop }) {
            throw ValidationError("--fault \(f.kind.rawValue) is a fault of the IoT rig: use it with --world iot-rig")
        }
        if rig.world == .iotRig, let f = world.faults.first(where: { if case .simulator(let s) = $0 { s.kind != .brokerStop } else { true } }) {
            throw ValidationError("--fault \(f) is a rover fault; the iot-rig world takes broker-stop")
        }
        if world.policyFaults.count > 1 { throw ValidationError("one policy-hang or policy-spin fault per run") }
        if rover != nil && gamepad == nil && !noEstopDevice {
            throw ValidationError("--rover needs an e-stop device (--gamepad DEVICE); to run without one, say so with --no-estop-device")
        }
        if noEstopDevice && gamepad != nil {
            throw ValidationError("--no-estop-device and --gamepad contradict each other")
        }
        if let svg {
            // The picture is drawn from the simulator's ground truth: hardware has none.
            if rover != nil { throw ValidationError("--svg draws the simulator's ground truth; with --rover there is no simulator") }
            if let problem = RunRecorder.validate(svg) { throw ValidationError(problem) }
        }
    }

    func run() throws {
        if rig.world == .iotRig { return try rig.run(seconds: seconds, priority: priority, cpu: cpu, faults: world.simulatorFaults, svg: svg) }
        var runner: SimulatorRunner?
        var directory: String?
        if rover == nil {
            let dir = NSTemporaryDirectory() + "robotd-demo-\(getpid())"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            directory = dir
            let sim = try SimulatorRunner(options: world.simulatorOptions(directory: dir, broker: nil))
            try sim.start()
            runner = sim
        }
        defer {
            runner?.stop()
            if let directory { try? FileManager.default.removeItem(atPath: directory) }
        }

        var options = RoverDaemon.Options(roverPort: SerialEndpoint(rover ?? runner?.roverDevicePath ?? ""))
        options.gamepad = gamepad ?? runner?.gamepadPath
        // On hardware a restart never moves anything by itself; the simulator demo starts released.
        options.runtime.startLatched = rover != nil
        if let policy = world.policyFaults.first {
            // robotd's own test hook (not the simulator's): the drive handler blocks or spins.
            let kind: PolicyFaultHook.Kind = policy.kind == "policy-spin" ? .spin : .hang
            options.runtime.policyFault = PolicyFaultHook(kind: kind, after: .nanoseconds(Int64(policy.at * 1e9)))
            stderrLine("TEST HOOK: the drive handler will \(kind == .spin ? "busy-loop" : "block") from \(policy.at) s (--fault \(policy.kind))")
        }
        if noEstopDevice {
            options.runtime.estopDeviceLostCategory = nil
            stderrLine("WARNING: no e-stop device: robotd has no software e-stop in this run (--no-estop-device)")
        }
        if let start = runner?.rover.config.start {
            options.runtime.initialPose = (start.x, start.y, start.yaw)  // an operator would set this on a robot
        }
        if let r = workspaceRadius {
            options.runtime.workspace = Workspace(radius: r, warnDistance: 0.5, stopDistance: 0.3, stopCategory: .one)
        }
        let fifo = priority ?? (geteuid() == 0 ? 80 : 0)
        options.realtime = fifo > 0 ? .realtime(priority: fifo, cpu: cpu) : RealtimeOptions(cpu: cpu)
        let daemon = try RoverDaemon(options: options, log: stderrLine)
        let report = try daemon.start()
        stderrLine("dispatch thread: \(report)")
        let stopped = SafeStopOnSignals(actuators: daemon.actuators) { signal in stderrLine("signal \(signal): actuators in safe state") }
        defer { stopped.cancel() }

        let begin = Date()
        var history = SafetyHistory(origin: daemon.scheduler.origin, sensorNames: daemon.runtime.sensorNames)
        var last = daemon.runtime.statusPublications
        var recorder = svg == nil ? nil : runner.map { sim in
            RunRecorder(robot: "simulated rover", seed: world.seed, rover: sim.rover.config,
                        faults: RunRecorder.windows(world.simulatorFaults, policy: world.policyFaults))
        }
        while Date().timeIntervalSince(begin) < seconds && daemon.actuators.state(of: "rover-motors") != .finalized {
            let pause = min(1.0, max(0.01, seconds - Date().timeIntervalSince(begin)))
            if recorder != nil {
                recorder?.sleep(pause) { r in
                    if let truth = runner?.rover.snapshot() { r.sample(truth, latched: daemon.runtime.status.latched) }
                }
            } else {
                usleep(UInt32(pause * 1e6))
            }
            let records = daemon.runtime.audit.drain()
            history.note(records)
            recorder?.note(records)
            stdoutLine(statusLine(daemon, runner, elapsed: Date().timeIntervalSince(begin), last: &last))
        }
        options.runtime.policyFault?.release()  // a stuck test-hook handler must return before the dispatch thread is joined
        daemon.stop(reason: "demo finished")
        let records = daemon.runtime.audit.drain()
        history.note(records)
        recorder?.note(records)
        if let truth = runner?.rover.snapshot() { recorder?.sample(truth, latched: daemon.runtime.status.latched, force: true) }
        var summary: JSONLine = statusLine(daemon, runner, elapsed: Date().timeIntervalSince(begin), kind: "summary", last: &last)
        summary.addRaw("latches", json: history.latchesJSON)
        summary.addRaw("refused_resets", json: history.refusalsJSON)
        summary.addRaw("warnings", json: history.warningsJSON)
        summary.add("estop_device", !noEstopDevice)
        stdoutLine(summary.text)
        if let svg, let recorder { try RunRecorder.write(recorder.finish(), to: svg) }
    }

    private func statusLine(_ daemon: RoverDaemon, _ runner: SimulatorRunner?, elapsed: Double, last: inout UInt64) -> String {
        let line: JSONLine = statusLine(daemon, runner, elapsed: elapsed, kind: "status", last: &last)
        return line.text
    }

    private func statusLine(_ daemon: RoverDaemon, _ runner: SimulatorRunner?, elapsed: Double, kind: String,
                            last: inout UInt64) -> JSONLine {
        // The status is read lock-free (as last published). If no handler published since the
        // last line, one is stuck (the supervisor's case): shown as busy.
        let status = daemon.runtime.status
        let publications = daemon.runtime.statusPublications
        let busy = kind == "status" && publications == last
        last = publications
        let snapshot = daemon.scheduler.snapshot()
        var j = JSONLine()
        j.add("kind", kind)
        j.add("t_s", (elapsed * 10).rounded() / 10)
        j.add("control_lock_busy", busy)
        j.add("range_m", status.range)
        j.add("command_left", status.command.left)
        j.add("command_right", status.command.right)
        j.add("turning", status.turning)
        j.add("estop_latched", status.latched)
        j.add("pose_x", status.pose.x)
        j.add("pose_y", status.pose.y)
        j.add("pose_yaw", status.pose.yaw)
        j.add("workspace_hold", status.workspaceHold)
        j.add("verdicts_pass", status.verdicts.passed)
        j.add("verdicts_clamped", status.verdicts.clamped)
        j.add("verdicts_stop", status.verdicts.stopped)
        j.add("deadline_faults", status.deadlineFaults)
        if let cause = status.latchCause { j.add("latch_cause", cause.description) } else { j.addRaw("latch_cause", json: "null") }
        j.add("causes", status.causes.description)
        j.add("in_recovery", status.inRecovery)
        j.add("resets", status.resets)
        j.add("resets_refused", status.refusedResets)
        j.add("stalls", status.stalls)
        j.add("measured_left", status.measured.left)
        j.add("measured_right", status.measured.right)
        if let drive = snapshot.task(named: "drive") {
            j.add("drive_releases", Int(drive.releases))
            j.add("drive_misses", Int(drive.misses))
            j.add("drive_start_p99_us", Double(drive.startLatency.p99) / 1000)
            j.add("drive_response_p99_us", Double(drive.responseTime.p99) / 1000)
            j.add("drive_latency_samples_skipped", Int(drive.latencySamplesSkipped))
        }
        j.add("imu_hz", daemon.runtime.sensors.imuRate.observedHz)
        j.add("frames_rejected", daemon.runtime.sensors.framesRejected)
        if let runner { j.addRaw("sim", json: roverJSON(runner.rover.snapshot())) }
        return j
    }
}

/// Every latch with its cause and every refused reset with its reasons, from the guard's audit
/// (drained once a second), for the demo's summary.
struct SafetyHistory {
    let origin: Instant
    let sensorNames: [String]
    private(set) var latches: [(at: Double, cause: String, category: Int)] = []
    private(set) var refusals: [(at: Double, causes: String)] = []
    private(set) var warnings: [(at: Double, fault: String)] = []

    init(origin: Instant, sensorNames: [String]) {
        self.origin = origin
        self.sensorNames = sensorNames
    }

    mutating func note(_ records: [AuditRecord]) {
        for r in records {
            let at = (Double(r.at.nanoseconds(since: origin)) / 1e6).rounded() / 1e3
            switch r.kind {
            case .latched: latches.append((at, r.fault?.description ?? "?", r.category?.rawValue ?? -1))
            case .resetRefused: refusals.append((at, r.causes.description))
            case .warn:
                let sensor = (r.fault == .staleSensor || r.fault == .silentSensor) && sensorNames.indices.contains(r.channel)
                    ? " (\(sensorNames[r.channel]))" : ""
                warnings.append((at, (r.fault?.description ?? "?") + sensor))
            default: break
            }
        }
    }

    var latchesJSON: String {
        "[" + latches.map { l in
            var j = JSONLine()
            j.add("t_s", l.at)
            j.add("cause", l.cause)
            j.add("category", l.category)
            return j.text
        }.joined(separator: ",") + "]"
    }

    /// Warnings, at most one per fault kind and second (a flapping one stays readable).
    var warningsJSON: String {
        var seen = Set<String>()
        return "[" + warnings.filter { seen.insert("\($0.fault)@\(Int($0.at))").inserted }.map { w in
            var j = JSONLine()
            j.add("t_s", w.at)
            j.add("fault", w.fault)
            return j.text
        }.joined(separator: ",") + "]"
    }

    var refusalsJSON: String {
        "[" + refusals.map { r in
            var j = JSONLine()
            j.add("t_s", r.at)
            j.add("causes", r.causes)
            return j.text
        }.joined(separator: ",") + "]"
    }
}
