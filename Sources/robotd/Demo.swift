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
        abstract: "robotd driving a rover: the bundled simulator (default) or real devices via --rover/--gamepad.",
        discussion: """
        Sensor frames come in over the rover's serial port, the obstacle-avoiding policy runs as a critical \
        50 Hz task on the real-time dispatch thread, every wheel command goes through the safety guard and \
        out as motor frames; the gamepad's BTN_EAST latches the e-stop and BTN_START resets it. One JSON \
        status line per second; a summary at the end.
        """)

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

    @OptionGroup var world: WorldOptions

    /// `--world rover|iot-rig` and the rig's options (RigDemo.swift).
    @OptionGroup var rig: RigDemoOptions

    func validate() throws {
        guard seconds > 0 else { throw ValidationError("--seconds must be positive") }
        if let priority, !(0...99).contains(priority) { throw ValidationError("--priority must be 0…99") }
        if let r = workspaceRadius, !(r > 0) { throw ValidationError("--workspace-radius must be positive") }
        if rover != nil && (world.estopAt != nil || world.resetAt != nil) {
            throw ValidationError("--estop-at/--reset-at script the simulator's gamepad; with --rover there is no simulator")
        }
    }

    func run() throws {
        if rig.world == .iotRig { return try rig.run(seconds: seconds, priority: priority, cpu: cpu) }
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
        while Date().timeIntervalSince(begin) < seconds && daemon.actuators.state(of: "rover-motors") != .finalized {
            usleep(UInt32(min(1.0, max(0.01, seconds - Date().timeIntervalSince(begin))) * 1e6))
            stdoutLine(statusLine(daemon, runner, elapsed: Date().timeIntervalSince(begin)))
        }
        daemon.stop(reason: "demo finished")
        stdoutLine(statusLine(daemon, runner, elapsed: Date().timeIntervalSince(begin), kind: "summary"))
    }

    private func statusLine(_ daemon: RoverDaemon, _ runner: SimulatorRunner?, elapsed: Double, kind: String = "status") -> String {
        let status = daemon.runtime.status
        let snapshot = daemon.scheduler.snapshot()
        var j = JSONLine()
        j.add("kind", kind)
        j.add("t_s", (elapsed * 10).rounded() / 10)
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
        if let drive = snapshot.task(named: "drive") {
            j.add("drive_releases", Int(drive.releases))
            j.add("drive_misses", Int(drive.misses))
            j.add("drive_start_p99_us", Double(drive.startLatency.p99) / 1000)
            j.add("drive_response_p99_us", Double(drive.responseTime.p99) / 1000)
        }
        j.add("imu_hz", daemon.runtime.sensors.imuRate.observedHz)
        j.add("frames_rejected", daemon.runtime.sensors.framesRejected)
        if let runner { j.addRaw("sim", json: roverJSON(runner.rover.snapshot())) }
        return j.text
    }
}
