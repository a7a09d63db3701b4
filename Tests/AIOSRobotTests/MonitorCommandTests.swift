import Foundation
import Glibc
import Testing
import TestSupport
import Transports

/// A robot as a person runs one: a Mosquitto broker on a free port, `robotd-sim --world iot-rig`
/// on it, and `robotd run` on examples/iot-rig-sim.yaml (thermostat every 100 ms, telemetry every
/// 250 ms) — three processes, the monitor a fourth.
private final class RunningRig {
    let directory: String
    let broker: MosquittoBroker
    let sim: Subprocess
    let robotd: Subprocess

    init() throws {
        directory = try temporaryDirectory("robotd-monitor")
        broker = try MosquittoBroker()
        try broker.start()
        sim = try Subprocess(builtProduct("robotd-sim"), ["--world", "iot-rig", "--broker", "127.0.0.1:\(broker.port)", "--seconds", "120"])
        #expect(sim.waitFor("\"ready\""), "robotd-sim: \(sim.stderr)")
        _ = try rigConfiguration(in: directory, port: broker.port, telemetry: "{interval_ms: 250}")
        robotd = try Subprocess(builtProduct("robotd"), ["run", "--config", directory + "/iot-rig-sim.yaml", "--seconds", "120"])
    }

    var address: String { "127.0.0.1:\(broker.port)" }

    func stop() {
        robotd.signal(SIGTERM)
        _ = robotd.wait(seconds: 15)
        sim.signal(SIGTERM)
        _ = sim.wait(seconds: 10)
        broker.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// `robotd monitor` run to its end; its exit status, standard output and error.
private func monitor(_ arguments: [String], seconds: Double = 40) throws -> (status: Int32?, stdout: String, stderr: String) {
    let run = try Subprocess(builtProduct("robotd"), ["monitor"] + arguments)
    let status = run.wait(seconds: seconds)
    return (status, run.stdout, run.stderr)
}

private func jsonObject(_ text: String) -> [String: Any]? {
    try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
}

@Suite("robotd monitor against a real broker", .serialized, .enabled(if: MosquittoBroker.isInstalled, "mosquitto is not installed"))
struct MonitorCommandTests {
    @Test func when_a_robot_runs_expect_once_json_to_list_it_with_its_deadline_figures_then_offline_after_it_stops() throws {
        let rig = try RunningRig()
        defer { rig.stop() }
        // It waits for the robot (it connects within a second or two) and its state and deadlines.
        let started = Date()
        let once = try monitor(["--broker", rig.address, "--robot-id", "+", "--once", "--json", "--timeout", "20"])
        #expect(once.status == 0, "\(once.stderr) robotd: \(rig.robotd.stderr.suffix(2000))")
        let snapshot = try #require(jsonObject(once.stdout), "not one JSON object: \(once.stdout)")
        let robots = try #require(snapshot["robots"] as? [[String: Any]])
        #expect(robots.count == 1)
        let robot = try #require(robots.first)
        #expect(robot["id"] as? String == "iot-rig-sim")
        #expect(robot["status"] as? String == "online")
        #expect(robot["stale"] as? Bool == false)
        #expect(robot["bad_payloads"] as? Int == 0)
        #expect((robot["state"] as? [String: Any])?["robot_id"] as? String == "iot-rig-sim")
        let deadlines = try #require(robot["deadlines"] as? [String: Any])
        let tasks = try #require(deadlines["tasks"] as? [[String: Any]])
        let thermostat = try #require(tasks.first { $0["name"] as? String == "thermostat" }, "tasks: \(tasks.map { $0["name"] ?? "?" })")
        #expect(thermostat["period_us"] as? Double == 100_000)
        #expect(thermostat["deadline_us"] as? Double == 20_000)
        let total = try #require(thermostat["since_start"] as? [String: Any])
        #expect((total["releases"] as? Int ?? 0) >= 1)
        let window = try #require(thermostat["window"] as? [String: Any])
        let response = try #require(window["response"] as? [String: Any])
        #expect((response["p99_us"] as? Double ?? 0) > 0, "no p99 in the window: \(window)")
        #expect(tasks.contains { $0["name"] as? String == "guard" })
        #expect(robot["queues"] is [String: Any] && robot["inputs"] is [String: Any], "queues and inputs come in the same cycle")
        let inputs = try #require((robot["inputs"] as? [String: Any])?["inputs"] as? [[String: Any]])
        #expect(inputs.first?["name"] as? String == "chamber_temperature")
        #expect(Date().timeIntervalSince(started) < 20, "it waited for the time-out instead of the robot")

        // Stopped cleanly, the robot says `offline` (retained): a later snapshot shows it, at once.
        rig.robotd.signal(SIGTERM)
        #expect(rig.robotd.wait(seconds: 15) == 0)
        let after = try monitor(["--broker", rig.address, "--once", "--json", "--timeout", "10"])
        #expect(after.status == 0, "\(after.stderr)")
        let gone = try #require((jsonObject(after.stdout)?["robots"] as? [[String: Any]])?.first, "\(after.stdout)")
        #expect(gone["status"] as? String == "offline")
        #expect((gone["state"] as? [String: Any])?["robot_id"] as? String == "iot-rig-sim")  // retained
    }

    @Test func when_no_broker_listens_expect_exit_1_and_connection_refused_in_words() throws {
        let closed = try MosquittoBroker()  // a free port, nothing started on it
        let run = try monitor(["--broker", "127.0.0.1:\(closed.port)", "--once", "--json", "--timeout", "1.5"])
        #expect(run.status == 1)
        #expect(run.stdout.isEmpty)
        #expect(run.stderr.contains("robotd monitor: cannot connect to 127.0.0.1:\(closed.port): connection refused"), "\(run.stderr)")
    }

    @Test func when_the_robot_is_not_there_or_sends_garbage_expect_it_said_in_words() throws {
        let broker = try MosquittoBroker()
        try broker.start()
        defer { broker.stop() }
        let address = "127.0.0.1:\(broker.port)"
        // A retained payload that is not JSON under a robot's topic: seen, counted, shown — no crash.
        let client = try MQTTClient(options: MQTTOptions(port: broker.port, clientID: "monitor-test-\(getpid())")) { _ in }
        try client.start()
        defer { client.stop() }
        #expect(waitUntil { client.isConnected })
        try client.publish(topic: "robotd/ghost/state", payload: Array("<html>not json</html>".utf8), qos: 1, retain: true)
        #expect(waitUntil { client.queuedMessages == 0 })

        let missing = try monitor(["--broker", address, "--robot-id", "rover-1", "--once", "--json", "--timeout", "1.5"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("robotd monitor: robot rover-1 was not seen on \(address) under robotd/rover-1/ within 1.5 s"), "\(missing.stderr)")

        let none = try monitor(["--broker", address, "--prefix", "plant/", "--once", "--json", "--timeout", "1.5"])
        #expect(none.status == 1)
        #expect(none.stderr.contains("robotd monitor: no robot seen on \(address) under plant/+/ within 1.5 s"), "\(none.stderr)")

        let ghost = try monitor(["--broker", address, "--robot-id", "ghost", "--once", "--json", "--timeout", "1.5"])
        #expect(ghost.status == 0, "\(ghost.stderr)")
        #expect(ghost.stderr.contains("robotd monitor: ghost: no state and deadlines within 1.5 s"), "\(ghost.stderr)")
        let robot = try #require((jsonObject(ghost.stdout)?["robots"] as? [[String: Any]])?.first, "\(ghost.stdout)")
        #expect(robot["bad_payloads"] as? Int == 1)
        #expect(robot["last_bad_payload"] as? String == "state: not JSON")
        #expect(robot["state"] is NSNull)

        // The table says it too.
        let table = try monitor(["--broker", address, "--robot-id", "ghost", "--once", "--timeout", "1.5"])
        #expect(table.status == 0)
        #expect(table.stdout.contains("ghost  status unknown  mode unknown"), "\(table.stdout)")
        #expect(table.stdout.contains("bad payloads 1 (last: state: not JSON)"), "\(table.stdout)")
    }
}

/// Every connection honours a login: the monitor's password from a file, a wrong one refused by
/// the broker and said in words.
@Suite("robotd monitor: credentials", .serialized,
       .enabled(if: MosquittoBroker.isInstalled && FileManager.default.isExecutableFile(atPath: "/usr/bin/mosquitto_passwd"), "mosquitto is not installed"))
struct MonitorCredentialsTests {
    @Test func when_the_broker_wants_a_login_expect_the_robot_with_the_right_password_and_a_refusal_in_words_with_a_wrong_one() throws {
        let folder = try temporaryDirectory("robotd-monitor-login")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let broker = try EchoCredentialsTests.broker(in: folder)
        defer { broker.stop() }
        let address = "127.0.0.1:\(broker.port)"
        // A robot's retained `state` and `deadlines` (recorded payloads), published with the login.
        let robot = try MQTTClient(options: MQTTOptions(port: broker.port, clientID: "monitor-login-robot-\(getpid())",
                                                        username: "robot", password: "s3cret")) { _ in }
        try robot.start()
        defer { robot.stop() }
        #expect(waitUntil { robot.isConnected })
        try robot.publish(topic: "robotd/iot-rig-sim/state", payload: Array(Recorded.state.utf8), qos: 1, retain: true)
        try robot.publish(topic: "robotd/iot-rig-sim/deadlines", payload: Array(Recorded.deadlines.utf8), qos: 1, retain: true)
        #expect(waitUntil { robot.queuedMessages == 0 })

        try "s3cret\n".write(toFile: folder + "/password", atomically: true, encoding: .utf8)
        let right = try monitor(["--broker", address, "--username", "robot", "--password-file", folder + "/password",
                                 "--once", "--json", "--timeout", "5"])
        #expect(right.status == 0, "\(right.stderr)")
        let seen = try #require((jsonObject(right.stdout)?["robots"] as? [[String: Any]])?.first, "\(right.stdout)")
        #expect((seen["deadlines"] as? [String: Any])?["seq"] as? Int == 7)

        try "wrong\n".write(toFile: folder + "/password", atomically: true, encoding: .utf8)
        let wrong = try monitor(["--broker", address, "--username", "robot", "--password-file", folder + "/password",
                                 "--once", "--json", "--timeout", "1.5"])
        #expect(wrong.status == 1)
        #expect(wrong.stderr.contains("robotd monitor: cannot connect to \(address): the broker refused the connection: not authori"),
                "\(wrong.stderr)")
    }
}

/// tmux, if installed (scripts/setup.sh installs it).
private let tmux = ["/usr/bin/tmux", "/usr/local/bin/tmux"].first { FileManager.default.isExecutableFile(atPath: $0) }

/// One tmux server of the test's own (its own socket), so that nothing else is touched.
private struct TmuxServer {
    let socket: String

    /// tmux's server, forked by the first tmux command, keeps what it inherited: every descriptor,
    /// among them the socket by which Foundation learns that its child ended (that child would
    /// never seem to end), and the test thread's signal mask, most signals blocked (kill-server's
    /// SIGHUP would never end the pane). So each tmux command starts from a bash that closes all
    /// descriptors but 0, 1 and 2, and from `env --default-signal`, which unblocks every signal.
    private static let closingTheRest =
        #"for fd in /proc/$$/fd/*; do n=${fd##*/}; if [ "$n" -gt 2 ]; then eval "exec $n>&-"; fi; done; exec env --default-signal "$@""#

    @discardableResult
    func run(_ arguments: [String]) throws -> String {
        let run = try Subprocess("/bin/bash", ["-c", Self.closingTheRest, "tmux", tmux ?? "tmux", "-S", socket, "-f", "/dev/null"] + arguments)
        #expect(run.wait(seconds: 10) == 0, "tmux \(arguments.joined(separator: " ")): \(run.stderr)")
        return run.stdout
    }

    func capture(_ target: String) throws -> String { try run(["capture-pane", "-p", "-t", target]) }
    func format(_ target: String, _ format: String) throws -> String {
        try run(["display-message", "-p", "-t", target, format]).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

@Suite("robotd monitor in a real terminal (tmux)", .serialized,
       .enabled(if: MosquittoBroker.isInstalled, "mosquitto is not installed"),
       .enabled(if: tmux != nil, "tmux is not installed: scripts/setup.sh installs it"))
struct MonitorTerminalTests {
    /// What a person sees: the robot, its tasks with a p99, online, the e-stop line; a remote stop
    /// shows as a latch with its cause in words; Ctrl-C ends the monitor with status 0, the cursor
    /// shown again, the last screen left clean (no ^C, no stray escape codes).
    @Test func when_a_person_watches_a_robot_in_a_terminal_expect_its_figures_its_latch_and_a_clean_ctrl_c() throws {
        let rig = try RunningRig()
        defer { rig.stop() }
        let server = TmuxServer(socket: NSTemporaryDirectory() + "robotd-monitor-tmux-\(getpid())")
        defer {
            _ = try? server.run(["kill-server"])
            try? FileManager.default.removeItem(atPath: server.socket)
        }
        let pane = "monitor"
        // From a shell that stays after the monitor, as a person's would: its exit status, the
        // terminal as it was left (tmux resets the cursor of a dead pane, so no remain-on-exit).
        let shell = #""$0" monitor --broker "$1" --robot-id + --refresh 0.25; echo "robotd monitor ended with status $?"; exec sleep 120"#
        try server.run(["new-session", "-d", "-s", pane, "-x", "120", "-y", "40", "--", "/bin/bash", "-c", shell, builtProduct("robotd"), rig.address])

        var screen = ""
        let shown = waitUntil(seconds: 20) {
            screen = (try? server.capture(pane)) ?? ""
            return screen.contains("iot-rig-sim  online  mode running") && screen.contains("e-stop: not latched")
                && screen.split(separator: "\n").contains { line in
                    // "  thermostat   10.0   182.3   0/0  ok …": a rate, then a p99 in µs.
                    let cells = line.split(separator: " ")
                    return cells.first == "thermostat" && cells.count > 3 && Double(cells[2]).map { $0 > 0 } == true
                }
        }
        #expect(shown, "the pane shows:\n\(screen)\nrobotd: \(rig.robotd.stderr.suffix(1500))")
        #expect(screen.hasPrefix("robotd monitor  \(rig.address) connected  robotd/+/  1 robot"), "\(screen)")
        #expect(try server.format(pane, "#{cursor_flag}") == "0", "the cursor is hidden while it draws")

        // An operator's remote stop: the latch and its cause, in words, on the same screen.
        let operatorClient = try MQTTClient(options: MQTTOptions(port: rig.broker.port, clientID: "monitor-operator-\(getpid())")) { _ in }
        try operatorClient.start()
        defer { operatorClient.stop() }
        #expect(waitUntil { operatorClient.isConnected })
        try operatorClient.publish(topic: "robotd/iot-rig-sim/estop", payload: Array("stop".utf8), qos: 1)
        let latched = waitUntil(seconds: 15) {
            screen = (try? server.capture(pane)) ?? ""
            return screen.contains("e-stop: LATCHED by remote stop (MQTT)") && screen.contains("mode stopped")
                && screen.split(separator: "\n").contains { $0.contains(" latched ") && $0.contains("remote stop (MQTT)") }
        }
        #expect(latched, "the pane shows:\n\(screen)")

        try server.run(["send-keys", "-t", pane, "C-c"])
        let ended = waitUntil(seconds: 10) {
            screen = (try? server.capture(pane)) ?? ""
            return screen.contains("robotd monitor ended with status")
        }
        #expect(ended, "the monitor did not end on Ctrl-C: \(screen)")
        #expect(screen.contains("robotd monitor ended with status 0"), "\(screen)")
        #expect(try server.format(pane, "#{cursor_flag}") == "1", "the cursor was not shown again")
        #expect(screen.contains("iot-rig-sim  online  mode stopped"), "the last screen stays: \(screen)")
        #expect(!screen.contains("^C"), "\(screen)")
        #expect(!screen.contains("\u{1B}") && !screen.contains("[?25") && !screen.contains("[K") && !screen.contains("[H"), "\(screen)")
        // The shell's line comes right under the last screen's last line, not over it.
        let lines = screen.split(separator: "\n", omittingEmptySubsequences: false)
        if let end = lines.firstIndex(where: { $0.hasPrefix("robotd monitor ended") }) {
            #expect(end > 0 && !lines[end - 1].isEmpty && lines[end - 1].contains(" s  "), "\(screen)")
        }
    }
}
