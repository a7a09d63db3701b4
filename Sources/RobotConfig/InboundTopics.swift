/// Where robotd listens (docs/mqtt.md, "Inbound topics and security"). Every robotd topic starts
/// with the robot's prefix (`mqtt.prefix`, default `robotd/<robot id>/`), the telemetry it
/// publishes and the requests it takes alike.
public struct InboundTopics: Sendable, Equatable {
    /// Any message here latches a remote stop.
    public var stop: String
    /// Reset requests arrive on `<resetBase>/<user>`: MQTT does not tell a subscriber who
    /// published, so the user is a topic level the broker's ACL ties to the publisher's login
    /// (`pattern write robotd/+/estop/reset/%u`).
    public var resetBase: String
    /// The planner's goals (`<prefix>goal/<user>`; subscribed with `planner.goals.mqtt`, by
    /// `AIOSRobot`'s `GoalTopic`).
    public var goalBase: String
    /// The operator station's keep-alive (`estop.remote.heartbeat_ms`): `<stop topic>/alive`, so
    /// that the ACL lines and bridge patterns that carry the stop topic's level carry it too.
    public var alive: String = ""

    /// What robotd subscribes to for reset requests.
    public var resetFilter: String { resetBase + "/+" }

    /// The topic a user publishes a reset request on.
    public func resetTopic(user: String) -> String { resetBase + "/" + user }

    /// The user a reset request's topic names (its last level), or nil when the topic is not a
    /// reset request's. An empty level is an empty name (refused by the runtime).
    public func user(inResetTopic topic: String) -> String? {
        guard topic.hasPrefix(resetBase + "/") else { return nil }
        let user = topic.dropFirst(resetBase.count + 1)
        return user.contains("/") ? nil : String(user)
    }
}

extension RobotConfiguration {
    /// `mqtt.prefix` (a `/` added when it has none at its end), or `robotd/<robot id>/`.
    public var topicPrefix: String {
        guard let p = mqtt?.prefix else { return "robotd/\(robot.id)/" }
        return p.isEmpty || p.hasSuffix("/") ? p : p + "/"
    }

    /// The remote stop's and reset's topics (explicit ones from `estop.remote`, else under the
    /// prefix); nil without `estop.remote`.
    public var inboundTopics: InboundTopics? {
        guard case .configured(let e) = estop, let remote = e.remote else { return nil }
        let prefix = topicPrefix
        var reset = remote.resetTopic ?? prefix + "estop/reset"
        while reset.hasSuffix("/") { reset.removeLast() }
        let stop = remote.stopTopic ?? prefix + "estop"
        return InboundTopics(stop: stop, resetBase: reset, goalBase: prefix + "goal", alive: stop + "/alive")
    }
}
