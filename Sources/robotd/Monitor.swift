import AIOSRobot
import ArgumentParser
import Foundation
import Glibc
import Transports

struct Monitor: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Watch robots over MQTT: deadlines, e-stop and stop causes, queues, inputs, safety events.",
        discussion: """
        A live view of one robot or of every robot on a broker (--robot-id +, the default), read from \
        the telemetry topics robotd publishes (docs/mqtt.md): per robot its status (online/offline), \
        mode, e-stop and the stop causes in words, uptime, telemetry drops, the age of its last message \
        ("STALE" after 3 intervals without deadlines), a task table (rate, p99 response in the window, \
        misses in the window and since start, level ok/warn/error/stale), queues, inputs and the latest \
        safety events. It redraws in place on a terminal and prints plain screens one after another \
        otherwise; Ctrl-C (SIGINT/SIGTERM) ends it. A payload that is not JSON or not of its topic's \
        type is counted and shown, never trusted.

        --once waits until every selected robot has sent its state and deadlines (or is offline), up \
        to --timeout seconds (5), prints one screen, or with --json one JSON object \
        {"robots": [{id, status, state, deadlines, queues, inputs, safety_recent, …}]}, and exits 0; \
        it exits 1, saying why, when no robot was seen (or not the named one) or the broker could not \
        be reached.

        Example:
          # every robot on a broker, live (Ctrl-C ends it)
          robotd monitor --broker 127.0.0.1:1883
          # robotd sim --world iot-rig's rig (its `broker:` line has the port)
          robotd monitor --broker 127.0.0.1:40123 --robot-id iot-rig-sim
          # one snapshot for a script
          robotd monitor --once --json | jq -r '.robots[].deadlines.level'
          # TLS and a login (the password from a file or ROBOTD_MQTT_PASSWORD)
          robotd monitor --broker mqtt.example.net:8883 --ca-file ca.pem \\
            --username ops --password-file ~/.robotd-mqtt-password
        """)

    @OptionGroup var connection: MQTTConnectionOptions

    @Option(name: .customLong("robot-id"), help: "One robot's id, or + for every robot under the prefix.")
    var robotID: String = "+"

    @Option(help: "What comes before the robot id in the topics (robotd/: robotd/<id>/deadlines, …).")
    var prefix: String = "robotd/"

    @Flag(help: "Wait for every selected robot's state and deadlines (up to --timeout), show them once and exit.")
    var once = false

    @Flag(help: "With --once: one JSON object instead of the table.")
    var json = false

    @Option(help: "With --once: how long to wait, in seconds (default 5). Live: end after this many seconds (default: Ctrl-C).")
    var timeout: Double?

    @Option(help: "Safety events shown per robot (the latest).")
    var events: Int = 5

    @Option(help: "Seconds between two screens.")
    var refresh: Double = 1

    func validate() throws {
        guard robotID == "+" || !(robotID.isEmpty || robotID.contains { "/+#".contains($0) }) else {
            throw ValidationError("--robot-id must be one robot's id (no /, + or #) or + for every robot")
        }
        guard prefix.isEmpty || (prefix.hasSuffix("/") && !prefix.hasPrefix("/") && !prefix.contains { "+#".contains($0) }) else {
            throw ValidationError("--prefix must end in / and have no wildcard (e.g. robotd/)")
        }
        if json && !once { throw ValidationError("--json needs --once (a live view is for a person; a script takes one snapshot)") }
        if let timeout, !(timeout > 0) { throw ValidationError("--timeout must be positive") }
        guard events >= 0 else { throw ValidationError("--events must be 0 or more") }
        guard refresh >= 0.05 else { throw ValidationError("--refresh must be at least 0.05 s") }
    }

    func run() throws {
        let options = try connection.options(clientName: "robotd-monitor")
        let settings = FleetView.Settings(prefix: prefix, robotID: robotID == "+" ? nil : robotID, recentEvents: events)
        let watcher = try FleetWatcher(options: options, settings: settings)
        try watcher.start()
        defer { watcher.stop() }
        if once { try snapshot(watcher) } else { live(watcher) }
    }

    /// `--once`: waits for every selected robot (or the time-out, or Ctrl-C), then one screen or JSON object.
    private func snapshot(_ watcher: FleetWatcher) throws {
        let interrupted = DispatchSemaphore(value: 0)
        let signals = SignalWatch { _ in interrupted.signal() }
        defer { signals.cancel() }
        let limit = timeout ?? 5
        let start = Date()
        var subscribedAt: Date?, completeAt: Date?
        while Date().timeIntervalSince(start) < limit {
            if subscribedAt == nil && watcher.subscribed { subscribedAt = Date() }
            // Retained `status` and `state` follow the subscription at once: a moment for every robot
            // that has them to be known before "every robot has reported" is judged.
            if let s = subscribedAt, Date().timeIntervalSince(s) > 0.3 {
                let view = watcher.current()
                if view.isComplete {
                    completeAt = completeAt ?? Date()
                    // `queues` and `inputs` come a moment after `deadlines`.
                    if view.isSettled || Date().timeIntervalSince(completeAt ?? Date()) > 0.5 { break }
                }
            }
            if interrupted.wait(timeout: .now() + 0.02) == .success { break }
        }
        let view = watcher.current()
        let waited = String(format: "%g", limit)
        let selection = "\(prefix)\(robotID)/"
        if !watcher.everConnected {
            if case .down(let why) = view.link {
                stderrLine("robotd monitor: cannot connect to \(connection.broker): \(why)")
            } else {
                stderrLine("robotd monitor: could not connect to \(connection.broker) within \(waited) s")
            }
            throw ExitCode.failure
        }
        if watcher.refusedSubscriptions > 0 && view.robots.isEmpty {
            stderrLine("robotd monitor: the broker refused the subscription to \(selection) (its ACL does not let \(connection.username ?? "an anonymous client") read it)")
            throw ExitCode.failure
        }
        if view.robots.isEmpty {
            let what = robotID == "+" ? "no robot" : "robot \(robotID) was not"
            stderrLine("robotd monitor: \(what) seen on \(connection.broker) under \(selection) within \(waited) s")
            throw ExitCode.failure
        }
        for robot in view.sortedRobots where !robot.hasReported {
            let missing = [robot.state == nil ? "state" : nil, robot.deadlines == nil ? "deadlines" : nil].compactMap { $0 }
            stderrLine("robotd monitor: \(robot.id): no \(missing.joined(separator: " and ")) within \(waited) s")
        }
        if json {
            stdoutLine(FleetSnapshot(view).json)
        } else {
            let screen = TerminalScreen()
            stdoutLine(FleetScreen.render(view, width: screen.isTTY ? screen.size().columns - 1 : 0))
        }
    }

    /// The live view until Ctrl-C (or --timeout): redrawn in place on a terminal, plain screens otherwise.
    private func live(_ watcher: FleetWatcher) {
        let stop = DispatchSemaphore(value: 0)
        let signals = SignalWatch { _ in stop.signal() }
        let screen = TerminalScreen()
        screen.begin()
        let end = timeout.map { Date().addingTimeInterval($0) }
        repeat {
            let view = watcher.current()
            if screen.isTTY {
                let size = screen.size()
                // One column short: a line that fills the last column leaves the cursor in the
                // terminal's pending-wrap state, where clearing to the end would erase its last character.
                screen.draw(FleetScreen.render(view, width: size.columns - 1, height: size.rows))
            } else {
                screen.draw(FleetScreen.render(view, width: 0))
            }
            if let end, Date() >= end { break }
            let nap = min(refresh, max(0.01, end.map { $0.timeIntervalSinceNow } ?? refresh))
            if stop.wait(timeout: .now() + nap) == .success { break }
        } while true
        signals.cancel()
        screen.end()
    }
}

/// The terminal while the live view runs: the cursor hidden and typed characters not echoed (a
/// Ctrl-C would print ^C over the table), both restored at the end; each screen drawn from the top
/// left, every line cleared to its end and the rest of the screen below the last one.
final class TerminalScreen {
    let isTTY = isatty(STDOUT_FILENO) == 1
    private var saved: termios?

    func begin() {
        guard isTTY else { return }
        if isatty(STDIN_FILENO) == 1 {
            var t = termios()
            if tcgetattr(STDIN_FILENO, &t) == 0 {
                saved = t
                t.c_lflag &= ~tcflag_t(ECHO | ECHOCTL)
                _ = tcsetattr(STDIN_FILENO, TCSANOW, &t)
            }
        }
        write("\u{1B}[?25l\u{1B}[H\u{1B}[2J")
    }

    func draw(_ text: String) {
        if isTTY {
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            write("\u{1B}[H" + lines.joined(separator: "\u{1B}[K\r\n") + "\u{1B}[K\u{1B}[J")
        } else {
            write(text + "\n\n")
        }
    }

    func end() {
        guard isTTY else { return }
        write("\r\n\u{1B}[?25h")
        if var t = saved { _ = tcsetattr(STDIN_FILENO, TCSANOW, &t) }
    }

    /// The terminal's size (80×24 when it does not say).
    func size() -> (columns: Int, rows: Int) {
        var w = winsize()
        guard ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &w) == 0, w.ws_col > 0, w.ws_row > 0 else { return (80, 24) }
        return (Int(w.ws_col), Int(w.ws_row))
    }

    private func write(_ text: String) { FileHandle.standardOutput.write(Data(text.utf8)) }
}
