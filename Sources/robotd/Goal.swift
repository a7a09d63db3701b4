import AIOSRobot
import ArgumentParser
import Foundation
import Glibc
import Synchronization
import Telemetry
import Transports

/// `robotd goal`: gives a running robot a goal over MQTT — publishes it on `<prefix>goal/<user>`
/// (QoS 1, with a fresh id so that a redelivery is not taken twice) — and, with `--follow`, prints
/// what the robot's planner does with it from the `plan` topic until the plan ends.
struct Goal: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "goal",
        abstract: "Give a running robot a goal over MQTT (its planner plans it; the guard still checks every command).",
        discussion: """
        Publishes {"goal": TEXT, "id": …} on <prefix>goal/<user> (prefix robotd/<robot id>/ unless --prefix), QoS 1, \
        not retained. The robot acts on it only if its configuration has `planner.goals.mqtt: true` and lists the user \
        in `planner.goals.users`; the broker's ACL should tie the topic's last level to the login \
        (topic write robotd/+/goal/USER in that user's block, as examples/mosquitto/acl; not a pattern, which \
        applies to every login). The user is --user, else --username.

        Example:
          robotd goal "patrol the corners" --robot-id rover-sim --broker 127.0.0.1:1883 --user operator --follow
        """)

    @Argument(help: "The goal, in words (\"go to 2,3\", \"patrol the corners\", \"hold 24 °C for 30 minutes\").")
    var text: String

    @OptionGroup var sender: GoalSenderOptions

    @Flag(help: "Print the planner's messages about this goal (the `plan` topic) until its plan ends.")
    var follow = false

    @Option(help: "How long to wait for the broker, and with --follow for the plan to end (s).")
    var timeout: Double = 10

    func validate() throws {
        if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { throw ValidationError("the goal is empty") }
        if text.count > 500 { throw ValidationError("the goal has \(text.count) characters: at most 500") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
    }

    func run() throws {
        let base = sender.topicPrefix, who = sender.userName, connection = sender.connection
        let topic = GoalTopic.topic(prefix: base, user: who)
        let planTopic = TelemetryTopics(prefix: base).plan
        let id = UUID().uuidString.lowercased()
        let inbox = Mutex<[PlanTopicPayload]>([])
        let client = try MQTTClient(options: connection.options(clientName: "robotd-goal")) { message in
            guard message.topic == planTopic, let payload = try? TelemetryJSON.decode(PlanTopicPayload.self, from: message.payload) else { return }
            inbox.withLock { $0.append(payload) }
        }
        if follow { try client.subscribe(.init(filter: planTopic, qos: 1)) }
        try client.start()
        defer { client.stop() }
        let deadline = Date().addingTimeInterval(timeout)
        while !(client.isConnected && (!follow || client.counters.subscribed.load(ordering: .relaxed) > 0)) {
            guard Date() < deadline else { throw ValidationError("broker \(connection.broker): not connected within \(timeout) s") }
            usleep(10_000)
        }
        let body = try JSONSerialization.data(withJSONObject: ["goal": text, "id": id], options: [.sortedKeys])
        try client.publish(topic: topic, payload: Array(body), qos: 1, retain: false)
        while client.counters.confirmed.load(ordering: .relaxed) == 0 {
            guard Date() < deadline else { throw ValidationError("broker \(connection.broker): the goal was not acknowledged within \(timeout) s") }
            usleep(10_000)
        }
        print("goal sent to \(topic)")
        guard follow else { return }
        // The robot's answer: the goal message naming this goal's text from this user, then its goal id.
        var goalID: UInt64?
        while Date() < deadline {
            for message in inbox.withLock({ list in defer { list.removeAll() }; return list }) {
                if goalID == nil, message.kind == .goal, message.user == who, message.text == text.trimmingCharacters(in: .whitespacesAndNewlines) {
                    print(message.printableLine)
                    guard message.outcome == "accepted", let accepted = message.goalId else { throw ExitCode.failure }
                    goalID = accepted
                    continue
                }
                guard let goalID, message.goalId == goalID else { continue }
                print(message.printableLine)
                if message.kind == .planningFailed { throw ExitCode.failure }
                if message.kind == .progress, ["completed", "failed", "cancelled", "refused"].contains(message.event ?? "") {
                    if message.event != "completed" { throw ExitCode.failure }
                    return
                }
            }
            usleep(50_000)
        }
        print("no end of the plan within \(timeout) s")
        throw ExitCode.failure
    }
}
