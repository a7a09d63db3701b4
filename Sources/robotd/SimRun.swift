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

/// One `robotd sim` run: the simulator started, the configuration pointed at it, the daemon run
/// while the ground truth is recorded, then the summary, the criteria and the picture.
enum SimRun {
    /// The simulated world runs SCHED_FIFO (as root) below every robotd thread: on a busy machine a
    /// world starved of CPU would look to robotd like a controller gone silent.
    static var simulatorPriority: Int? { geteuid() == 0 ? 60 : nil }

    static func rover(_ plan: SimPlan) throws {
        var configuration = plan.configuration
        let folder = NSTemporaryDirectory() + "robotd-sim-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var options = SimulatorRunner.Options()
        options.rover.seed = plan.seed
        if let p = configuration.odometry?.initialPose { options.rover.start = Pose2D(x: p.x, y: p.y, yaw: p.yaw) }
        if let obstacles = plan.scenario?.obstacles {
            let a = options.rover.arena
            options.rover.arena = Arena(halfWidth: a.halfWidth, halfHeight: a.halfHeight,
                                        obstacles: obstacles.map { Arena.Obstacle(x: $0.x, y: $0.y, radius: $0.radius) })
        }
        options.roverLinkPath = folder + "/rover"
        options.gamepadFIFO = folder + "/gamepad"
        var script: [SimulatedGamepad.Step] = []
        if let e = plan.estopAt {
            let t = Int64(e * 1e9)
            script += [.init(at: t, [.press("BTN_EAST")]), .init(at: t + 100_000_000, [.release("BTN_EAST")])]
        }
        for r in plan.resetAt {
            let t = Int64(r * 1e9)
            script += [.init(at: t, [.press("BTN_START")]), .init(at: t + 100_000_000, [.release("BTN_START")])]
        }
        options.gamepadScript = script
        options.faults = plan.faults
        options.fifoPriority = simulatorPriority
        let sim = try SimulatorRunner(options: options)
        try sim.start()
        defer { sim.stop() }
        try SimulatorEndpoints.rewrite(&configuration, folder: folder, broker: nil)
        let broker = try SimBroker.prepare(&configuration, given: plan.brokerGiven,
                                           required: RobotDaemon.controlUsesBroker(configuration))
        defer { broker?.stop() }

        var recorder = RunRecorder(robot: configuration.robot.id, seed: plan.seed, rover: sim.rover.config,
                                   faults: injected(plan), waypoints: plan.waypoints)
        try drive(plan, configuration, recorder: &recorder, sample: { r, latched in r.sample(sim.rover.snapshot(), latched: latched) },
                  progress: { daemon, elapsed in progressLine(rover: sim.rover.snapshot(), daemon, elapsed: elapsed) },
                  truthJSON: { roverJSON(sim.rover.snapshot()) },
                  finish: { r, latched in r.sample(sim.rover.snapshot(), latched: latched, force: true) })
    }

    static func rig(_ plan: SimPlan) throws {
        var configuration = plan.configuration
        let broker = try SimBroker.prepare(&configuration, given: plan.brokerGiven, required: true)
        defer { broker?.stop() }
        guard let m = configuration.mqtt else { throw ValidationError("--world iot-rig needs a broker") }
        let address = try BrokerAddress(m.broker)
        let login = try SimBroker.login(m)
        var options = SimulatorRunner.Options()
        options.broker = (address.host, address.port)
        (options.brokerUsername, options.brokerPassword, options.brokerCAFile) = (login.username, login.password, login.caFile)
        options.rig.seed = plan.seed
        options.rig.sampleHz = 2
        options.rigReconnectMaxSeconds = 2
        options.faults = plan.faults
        options.fifoPriority = simulatorPriority
        let sim = try SimulatorRunner(options: options)
        try sim.start()
        defer { sim.stop() }
        guard let rig = sim.rig else { throw ValidationError("the simulated rig did not start") }
        try SimulatorEndpoints.rewrite(&configuration, folder: NSTemporaryDirectory(), broker: nil)

        let thermostat = configuration.policies.first { $0.kind == "thermostat" }
        let setpoint = thermostat.flatMap { if case .number(let c)? = $0.settings["setpoint"] { c } else { nil } } ?? .nan
        let band = thermostat.flatMap { if case .number(let b)? = $0.settings["band"] { b } else { nil } } ?? 0.5
        // The operator's console: a separate client, as a person with a phone would be.
        // On a broker of its own (anonymous) it is the first of `reset_users` (else `operator`); on
        // a broker that wants a login, the run's user, whose name the broker's ACL lets it use.
        let console = try MQTTClient(options: MQTTOptions(host: address.host, port: address.port, clientID: "robotd-sim-operator-\(getpid())",
                                                          username: login.username, password: login.password, caFile: login.caFile)) { _ in }
        try console.start()
        defer { console.stop() }
        let topics = configuration.inboundTopics
        var resetUsers: [String] = []
        if case .configured(let e) = configuration.estop { resetUsers = e.remote?.resetUsers ?? [] }
        let operatorName = login.username ?? resetUsers.first ?? "operator"
        if (plan.remoteStopAt != nil || plan.remoteResetAt != nil) && topics == nil {
            throw ValidationError("--remote-stop-at/--remote-reset-at need `estop.remote` in the configuration")
        }
        var stopSent = false, resetSent = false
        var recorder = RunRecorder(robot: configuration.robot.id, seed: plan.seed, rigBand: band,
                                   faults: injected(plan))
        try drive(plan, configuration, recorder: &recorder, sample: { r, latched in
            r.sample(rig.snapshot(), simulatorTime: sim.rover.time, setpoint: setpoint, latched: latched)
        }, act: { daemon, elapsed in
            if let at = plan.remoteStopAt, !stopSent, elapsed >= at, let topic = topics?.stop {
                stopSent = true
                publish(console, topic, "stop")
            }
            if let at = plan.remoteResetAt, !resetSent, elapsed >= at, let topic = topics?.resetTopic(user: operatorName) {
                resetSent = true
                // The latch the operator sees (a console reads it from the `state` topic).
                publish(console, topic, "reset \(daemon.runtime.status.latchSequence)")
            }
        }, progress: { daemon, elapsed in
            // A plan's setpoint (set_temperature, hold) while it holds, else the configuration's.
            let planned = daemon.runtime.planning?.status.setpoint ?? .nan
            return progressLine(rig: rig.snapshot(), setpoint: planned.isFinite ? planned : setpoint, daemon, elapsed: elapsed)
        }, truthJSON: { rigJSON(rig.snapshot()) }, finish: { r, latched in
            // The relays' last state reaches the simulated rig before the summary reads it.
            let deadline = Date().addingTimeInterval(1)
            while rig.snapshot().heaterOn && Date() < deadline { usleep(10_000) }
            r.sample(rig.snapshot(), simulatorTime: sim.rover.time, setpoint: setpoint, latched: latched)
        })
    }

    /// What the run injects on purpose, as windows: the simulator's faults, robotd's policy hook, and
    /// the scripted stops (the gamepad's e-stop press, an operator's remote stop), so that
    /// `never_latched_except_injected` knows them.
    static func injected(_ plan: SimPlan) -> [FaultWindow] {
        var windows = RunRecorder.windows(plan.faults, policy: plan.policyFault.map { [$0] } ?? [])
        if let e = plan.estopAt { windows.append(FaultWindow(kind: "estop-press", start: e, end: e + 0.1)) }
        if let r = plan.remoteStopAt { windows.append(FaultWindow(kind: "remote-stop", start: r, end: r + 0.1)) }
        return windows
    }

    private static func publish(_ console: MQTTClient, _ topic: String, _ word: String) {
        do {
            try console.publish(topic: topic, payload: Array(word.utf8), qos: 1, retain: false)
            stderrLine("operator: \(word) → \(topic)")
        } catch {
            stderrLine("operator: could not publish \(word): \(error)")
        }
    }

    /// Runs the daemon on `configuration` for the plan's seconds (or until SIGINT/SIGTERM), samples
    /// the ground truth, prints progress, then the summary and the criteria; exits 1 when one fails.
    private static func drive(_ plan: SimPlan, _ configuration: RobotConfiguration, recorder: inout RunRecorder,
                              sample: (inout RunRecorder, Bool) -> Void, act: (RobotDaemon, Double) -> Void = { _, _ in },
                              progress: (RobotDaemon, Double) -> String,
                              truthJSON: () -> String, finish: (inout RunRecorder, Bool) -> Void) throws {
        var daemonOptions = RobotDaemon.Options()
        daemonOptions.realtime = plan.realtime
        if let policy = plan.policyFault {
            // robotd's own test hook (not the simulator's): the first critical policy's handler blocks or spins.
            let kind: PolicyFaultHook.Kind = policy.kind == "policy-spin" ? .spin : .hang
            daemonOptions.runtime.policyFault = PolicyFaultHook(kind: kind, after: .nanoseconds(Int64(policy.at * 1e9)))
            stderrLine("TEST HOOK: the first critical policy's handler will \(kind == .spin ? "busy-loop" : "block") from \(policy.at) s (--fault \(policy.kind))")
        }
        let daemon = try RobotDaemon(configuration: configuration, options: daemonOptions, log: stderrLine)
        let running = try RunningDaemon(daemon)
        var nextLine = 1.0
        while !running.signalled {
            let elapsed = running.elapsed
            if elapsed >= plan.seconds { break }
            recorder.sleep(min(0.1, plan.seconds - elapsed)) { r in sample(&r, daemon.runtime.isLatched) }
            let now = running.elapsed
            act(daemon, now)
            guard now >= nextLine else { continue }
            nextLine += 1
            recorder.note(running.drainAudit())
            if plan.json {
                var line = RunStatusLine.make(daemon, elapsed: now, kind: "status", last: &running.lastPublications)
                line.addRaw("sim", json: truthJSON())
                stdoutLine(line.text)
            } else {
                stdoutLine(progress(daemon, now))
            }
        }
        // A stuck test-hook handler must return before the dispatch thread is joined.
        daemonOptions.runtime.policyFault?.release()
        running.stop()
        recorder.note(running.drainAudit())
        finish(&recorder, daemon.runtime.isLatched)
        let elapsed = running.elapsed
        let history = running.history
        var last = running.lastPublications
        let trace = recorder.finish()
        let criticalMisses = criticalMissCount(daemon)
        let results = ScenarioCriteria(plan.criteria).evaluate(trace, criticalMisses: criticalMisses)
        if plan.json {
            var summary = RunStatusLine.make(daemon, elapsed: elapsed, kind: "summary", last: &last)
            summary.addRaw("latches", json: history.latchesJSON)
            summary.addRaw("refused_resets", json: history.refusalsJSON)
            summary.addRaw("warnings", json: history.warningsJSON)
            summary.addRaw("remote_resets", json: RunStatusLine.remoteResetsJSON(daemon))
            summary.addRaw("sim", json: truthJSON())
            summary.add("critical_misses", criticalMisses)
            summary.addRaw("criteria", json: "[" + results.map { r in
                var j = JSONLine()
                j.add("passed", r.passed)
                j.add("reason", r.reason)
                return j.text
            }.joined(separator: ",") + "]")
            stdoutLine(summary.text)
        } else {
            for line in summaryLines(daemon, trace: trace, history: history, elapsed: elapsed, criticalMisses: criticalMisses) { stdoutLine(line) }
            for r in results { stdoutLine("  \(r.passed ? "PASS" : "FAIL")  \(r.reason)") }
        }
        if let svg = plan.svg {
            try RunRecorder.write(trace, to: svg)
        }
        if results.contains(where: { !$0.passed }) {
            stderrLine("scenario: \(results.filter { !$0.passed }.count) of \(results.count) criteria failed")
            throw ExitCode.failure
        }
    }

    /// Misses of the critical tasks (the guard's and the critical policies').
    static func criticalMissCount(_ daemon: RobotDaemon) -> Int {
        let critical = Set(daemon.configuration.policies.filter(\.critical).map(\.name) + ["guard"])
        return daemon.scheduler.snapshot().tasks.filter { critical.contains($0.name) }.reduce(0) { $0 + Int($1.misses) }
    }

    /// Deadlines met and missed over every task, and the guard's interventions, in words.
    private static func deadlinesAndGuard(_ daemon: RobotDaemon) -> String {
        let tasks = daemon.scheduler.snapshot().tasks
        let releases = tasks.reduce(0) { $0 + Int($1.releases) }, misses = tasks.reduce(0) { $0 + Int($1.misses) }
        let s = daemon.runtime.status
        let state = s.latched ? "LATCHED (\(s.latchCause?.description ?? "?"))" + (s.causes.isEmpty ? "" : ", causes: \(s.causes)")
            : s.holding ? "holding (\(s.holdCauses))" : "running"
        return "deadlines \(releases - misses) met, \(misses) missed · guard \(s.verdicts.clamped) clamped, \(s.verdicts.rejected) rejected, \(s.filtered) filtered · \(state)"
    }

    private static func who(_ daemon: RobotDaemon, channel: Int) -> String {
        let by = Int(daemon.runtime.status.commandedBy[channel])
        return daemon.runtime.policyNames.indices.contains(by) ? daemon.runtime.policyNames[by] : "nobody"
    }

    static func progressLine(rover s: RoverSnapshot, _ daemon: RobotDaemon, elapsed: Double) -> String {
        let pose = String(format: "(%5.2f, %5.2f) %4.0f°", s.pose.x, s.pose.y, s.pose.yaw * 180 / .pi)
        return String(format: "%6.1f s  ", elapsed) + "rover \(pose) " + String(format: "%4.2f m/s", s.linearVelocity)
            + " · \(who(daemon, channel: 0))" + planWords(daemon) + " · " + deadlinesAndGuard(daemon)
    }

    /// ` · goal 3 step 2/4 patrol` while a plan runs, ` · goal 3 failed (timeout)` after; nothing before any.
    private static func planWords(_ daemon: RobotDaemon) -> String {
        guard let p = daemon.runtime.planning?.status.payload(abilities: daemon.configuration.abilities.map(\.name)),
              p.planGoalId != 0 else { return "" }
        if p.state == "running" { return " · goal \(p.planGoalId) step \(p.step ?? 0)/\(p.stepCount ?? 0)" + (p.ability.map { " " + $0 } ?? "") }
        return " · goal \(p.planGoalId) \(p.state)" + (p.reason.map { " (\($0))" } ?? "")
    }

    static func progressLine(rig s: RigSnapshot, setpoint: Double, _ daemon: RobotDaemon, elapsed: Double) -> String {
        String(format: "%6.1f s  chamber %5.2f °C (setpoint %.1f) heater %@ fan %.2f", elapsed, s.temperature, setpoint,
               s.heaterOn ? "on " : "off", s.fanDuty) + planWords(daemon) + " · " + deadlinesAndGuard(daemon)
    }

    static func rigJSON(_ truth: RigSnapshot) -> String {
        var s = JSONLine()
        s.add("time_s", Double(truth.time) / 1e9)
        s.add("temperature_c", (truth.temperature * 100).rounded() / 100)
        s.add("heater", truth.heaterOn)
        s.add("fan", truth.fanDuty)
        s.add("fuse_blown", truth.fuseBlown)
        s.add("heater_commands", truth.counters.heaterCommands)
        s.add("relay_timeouts", truth.counters.relayTimeouts)
        s.add("ignored", truth.counters.commandsIgnored)
        return s.text
    }

    static func summaryLines(_ daemon: RobotDaemon, trace: RunTrace, history: SafetyHistory, elapsed: Double, criticalMisses: Int) -> [String] {
        var lines = [String(format: "summary: %.1f s of %@", elapsed, daemon.configuration.robot.id)]
        if let rover = trace.rover, let last = rover.samples.last {
            let travelled = zip(rover.samples.dropFirst(), rover.samples).reduce(0.0) { $0 + hypot($1.0.x - $1.1.x, $1.0.y - $1.1.y) }
            lines.append(String(format: "  rover: travelled %.1f m, ended at (%.2f, %.2f), %d collisions", travelled, last.x, last.y, rover.collisions.count))
        }
        if let rig = trace.rig, let last = rig.samples.last {
            lines.append(String(format: "  rig: ended at %.2f °C, heater %@", last.temperature, last.heaterOn ? "on" : "off"))
        }
        lines.append("  " + deadlinesAndGuard(daemon) + " · critical misses \(criticalMisses)")
        lines.append("  latches: " + (history.latches.isEmpty ? "none" : history.latches.map { String(format: "%.1f s %@ (category %d)", $0.at, $0.cause, $0.category) }.joined(separator: "; ")))
        lines.append("  refused resets: " + (history.refusals.isEmpty ? "none" : history.refusals.map { String(format: "%.1f s (%@)", $0.at, $0.causes) }.joined(separator: "; ")))
        if let plan = daemon.runtime.planning?.status, plan.planGoalID != 0 {
            let ability = plan.abilityName(in: daemon.configuration.abilities.map(\.name)).map { " " + $0 } ?? ""
            let why = plan.reason == .none ? "" : " (\(plan.reason.word))"
            lines.append("  plan: goal \(plan.planGoalID) \(plan.state.word)\(why), step \(plan.step + 1)/\(plan.stepCount)\(ability); "
                         + "plans completed \(plan.completed), failed \(plan.failed), cancelled \(plan.cancelled), refused \(plan.refused)")
        }
        let memory = RealtimeSetup.memory
        lines.append(String(format: "  footprint: %.1f MiB resident, %.1f MiB locked", Double(memory.residentKiB) / 1024, Double(memory.lockedKiB) / 1024))
        return lines
    }
}

/// The broker of one `robotd sim` run: the one `--broker` or the configuration names (other than
/// robotd-sim's default, 127.0.0.1:18830, which stands for "the simulator's broker"), else a
/// Mosquitto of its own on a free loopback port, said on stderr so that a monitor can be pointed
/// at it. Without mosquitto, a configuration whose control needs no broker runs without MQTT (and
/// says so); one that needs it cannot run.
enum SimBroker {
    static let simulatorDefault = "127.0.0.1:18830"

    static func prepare(_ configuration: inout RobotConfiguration, given: Bool, required: Bool) throws -> MosquittoBroker? {
        if given, let m = configuration.mqtt {
            stderrLine("broker: \(m.broker)")
            return nil
        }
        guard MosquittoBroker.isInstalled else {
            if required { throw ValidationError("this run needs a broker: install mosquitto (/usr/sbin/mosquitto) or give --broker HOST:PORT") }
            configuration.mqtt = nil
            stderrLine("broker: none (mosquitto is not installed): running without MQTT")
            return nil
        }
        let broker = try MosquittoBroker()
        try broker.start()
        let address = "127.0.0.1:\(broker.port)"
        if configuration.mqtt == nil { configuration.mqtt = MQTTSettings(broker: address) } else { configuration.mqtt?.broker = address }
        stderrLine("broker: mosquitto on \(address) (pid \(broker.pid ?? -1))")
        return broker
    }

    /// The run's login, for the clients that stand for the world (the simulated rig, the operator's console).
    static func login(_ m: MQTTSettings) throws -> (username: String?, password: String?, caFile: String?) {
        do {
            return (m.username, try MQTTPassword.read(environment: m.passwordEnv, file: m.passwordFile), m.caFile)
        } catch {
            throw ValidationError("mqtt: \(error)")
        }
    }
}
