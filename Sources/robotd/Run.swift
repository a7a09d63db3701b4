import AIOSRobot
import Actuators
import ArgumentParser
import Foundation
import Glibc
import RTScheduler
import RobotConfig
import Synchronization
import Telemetry

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The daemon: a robot or rig as its configuration file describes it, on real devices.",
        discussion: """
        Opens the devices and the broker the file names (hardware, or the endpoints of a simulator started \
        separately with robotd-sim), runs the policies under the safety guard on the real-time dispatch thread, \
        and prints one JSON status line per second. It starts latched unless the file says \
        `safety: {start_latched: false}`: after a restart nothing moves until a deliberate reset. SIGINT or \
        SIGTERM puts every actuator in its safe state first, then prints a summary (every latch with its cause, \
        every refused reset with its reasons). A file that does not pass `robotd check` never starts.

        --broker, --robot-id, --username, --password-file and --ca-file override the file's `mqtt` section and \
        `robot.id` (the password from a file or the environment variable ROBOTD_MQTT_PASSWORD, never the command line).

        Example:
          robotd-sim --world rover &          # the simulated rover on /tmp/robotd-sim/rover
          robotd run --config examples/rover-sim.yaml
          # the rig on a broker that wants a login (examples/mosquitto/)
          robotd run --config examples/iot-rig-sim.yaml --broker 127.0.0.1:1883 \
            --robot-id rig-2 --username rig-2 --password-file ~/.robotd-mqtt-password
          robotd run --config examples/iot-rig-sim.yaml --ha-remove   # its Home Assistant entities gone
        """)

    @Option(help: "The robot's configuration (YAML; see docs/configuration.md).")
    var config: String

    @Option(help: "Stop after this many seconds (default: until SIGINT/SIGTERM).")
    var seconds: Double?

    @OptionGroup var connection: BrokerOptions
    @Flag(name: .customLong("ha-remove"),
          help: "Remove this robot's Home Assistant entities (empty retained discovery configs on the file's broker), then exit.")
    var haRemove = false

    func validate() throws {
        if let seconds, !(seconds > 0) { throw ValidationError("--seconds must be positive") }
    }

    func run() throws {
        if haRemove { return try removeHomeAssistantEntities() }
        RealtimeSetup.prepareProcess()
        var configuration = try ConfigurationFile.load(config)
        try connection.apply(to: &configuration)
        let daemon: RobotDaemon
        do {
            daemon = try RobotDaemon(configuration: configuration, log: stderrLine)
        } catch {
            stderrLine("robotd run: \(error)")
            throw ExitCode.failure
        }
        let running = try RunningDaemon(daemon)
        var nextLine = 1.0
        while !running.signalled && (seconds.map { running.elapsed < $0 } ?? true) {
            usleep(50_000)
            guard running.elapsed >= nextLine else { continue }
            nextLine += 1
            _ = running.drainAudit()
            stdoutLine(RunStatusLine.make(daemon, elapsed: running.elapsed, kind: "status", last: &running.lastPublications).text)
        }
        running.stop()
        _ = running.drainAudit()
        var summary = RunStatusLine.make(daemon, elapsed: running.elapsed, kind: "summary", last: &running.lastPublications)
        summary.addRaw("latches", json: running.history.latchesJSON)
        summary.addRaw("refused_resets", json: running.history.refusalsJSON)
        summary.addRaw("warnings", json: running.history.warningsJSON)
        summary.addRaw("remote_resets", json: RunStatusLine.remoteResetsJSON(daemon))
        stdoutLine(summary.text)
    }
}

extension Run {
    /// `--ha-remove`: nothing is started; one JSON line says what was cleared.
    func removeHomeAssistantEntities() throws {
        var configuration = try ConfigurationFile.load(config)
        try connection.apply(to: &configuration)
        do {
            let removal = try HomeAssistantEntities.remove(configuration)
            var line = JSONLine()
            line.add("kind", "ha-remove")
            line.add("discovery_prefix", removal.discoveryPrefix)
            line.add("removed", removal.topics.count)
            line.add("topics", strings: removal.topics)
            line.add("found_retained", strings: removal.foundRetained)
            stdoutLine(line.text)
        } catch {
            stderrLine("robotd run --ha-remove: \(error)")
            throw ExitCode.failure
        }
    }
}

/// One JSON status line of a configured robot: the guard's state, each channel's wanted, approved
/// and measured values and who commanded it, the sensors, each task's deadline figures.
enum RunStatusLine {
    static func make(_ daemon: RobotDaemon, elapsed: Double, kind: String, last: inout UInt64) -> JSONLine {
        let runtime = daemon.runtime
        let status = runtime.status
        let publications = runtime.statusPublications
        var j = JSONLine()
        j.add("kind", kind)
        j.add("t_s", (elapsed * 10).rounded() / 10)
        // No handler published since the last line: one is stuck (the supervisor's case).
        j.add("control_lock_busy", kind == "status" && publications == last)
        last = publications
        j.add("latched", status.latched)
        if let cause = status.latchCause { j.add("latch_cause", cause.description) } else { j.addRaw("latch_cause", json: "null") }
        j.add("causes", status.causes.description)
        j.add("links_up", status.linksUp)
        j.add("holding", status.holding)
        j.add("hold_causes", status.holdCauses.description)
        j.add("resets", status.resets)
        j.add("resets_refused", status.refusedResets)
        j.add("deadline_faults", status.deadlineFaults)
        j.add("stalls", status.stalls)
        j.add("remote_stops", status.remoteStops)
        // What a remote reset request must name (`reset N`).
        j.add("latch_sequence", Int(status.latchSequence))
        j.add("verdicts_pass", status.verdicts.passed)
        j.add("verdicts_clamped", status.verdicts.clamped)
        j.add("verdicts_rejected", status.verdicts.rejected)
        j.add("verdicts_stop", status.verdicts.stopped)
        if status.pose.x.isFinite {
            j.add("pose_x", status.pose.x)
            j.add("pose_y", status.pose.y)
            j.add("pose_yaw", status.pose.yaw)
        }
        // The plan executor (a configuration with abilities): the `state` topic's `plan`, in its words.
        if let plan = runtime.planning?.status.payload(abilities: daemon.configuration.abilities.map(\.name)) {
            j.addRaw("plan", json: String(decoding: TelemetryJSON.encode(plan), as: UTF8.self))
        }
        var channels: [String] = []
        for (i, name) in runtime.channelNames.enumerated() where i < RuntimeStatus.channelCapacity {
            var c = JSONLine()
            c.add("name", name)
            c.add("wanted", status.wanted[i])
            c.add("approved", status.approved[i])
            if status.measured[i].isFinite { c.add("measured", status.measured[i]) }
            let by = Int(status.commandedBy[i])
            if runtime.policyNames.indices.contains(by) { c.add("by", runtime.policyNames[by]) } else { c.addRaw("by", json: "null") }
            channels.append(c.text)
        }
        j.addRaw("channels", json: "[" + channels.joined(separator: ",") + "]")
        var sensors = JSONLine()
        for (i, name) in runtime.sensorNames.enumerated() where i < RuntimeStatus.sensorCapacity { sensors.add(name, status.sensors[i]) }
        j.addRaw("sensors", json: sensors.text)
        var tasks: [String] = []
        for task in daemon.scheduler.snapshot().tasks {
            var t = JSONLine()
            t.add("name", task.name)
            t.add("releases", Int(task.releases))
            t.add("misses", Int(task.misses))
            t.add("start_p99_us", Double(task.startLatency.p99) / 1000)
            t.add("response_p99_us", Double(task.responseTime.p99) / 1000)
            tasks.append(t.text)
        }
        j.addRaw("tasks", json: "[" + tasks.joined(separator: ",") + "]")
        // The process's footprint: resident and locked memory, CPU time over the run.
        let memory = RealtimeSetup.memory
        j.add("rss_mib", (Double(memory.residentKiB) / 102.4).rounded() / 10)
        j.add("locked_mib", (Double(memory.lockedKiB) / 102.4).rounded() / 10)
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let cpu = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
        j.add("cpu_percent", elapsed > 0 ? (cpu / elapsed * 1000).rounded() / 10 : 0)
        return j
    }

    /// The remote reset requests kept (the latest 64): when (s since the start), who, the latch
    /// named, the outcome and its reasons.
    static func remoteResetsJSON(_ daemon: RobotDaemon) -> String {
        let origin = daemon.scheduler.origin
        return "[" + daemon.runtime.remoteResets.records().map { r in
            var j = JSONLine()
            j.add("t_s", (Double(r.at.nanoseconds(since: origin)) / 1e6).rounded() / 1e3)
            j.add("user", r.user)
            if let latch = r.latch { j.add("latch", Int(latch)) } else { j.addRaw("latch", json: "null") }
            j.add("outcome", r.outcome.rawValue)
            j.addRaw("reasons", json: "[" + r.reasons.map { "\"\($0)\"" }.joined(separator: ",") + "]")
            return j.text
        }.joined(separator: ",") + "]"
    }
}
