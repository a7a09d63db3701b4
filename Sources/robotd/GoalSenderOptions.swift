import ArgumentParser

/// Who gives a running robot goals over MQTT, and where (`robotd goal`, `robotd mcp`): the robot's
/// topic prefix, the user whose goal topic is written, and the broker login.
struct GoalSenderOptions: ParsableArguments {
    @Option(help: "The robot's id: its topics are robotd/ID/… (unless --prefix).")
    var robotId: String

    @Option(help: "The topic prefix instead of robotd/<robot id>/.")
    var prefix: String?

    @Option(help: "The user goals are given as (the goal topic's last level); default: --username.")
    var user: String?

    @OptionGroup var connection: MQTTConnectionOptions

    func validate() throws {
        guard BrokerOptions.isValidID(robotId) else { throw ValidationError("--robot-id: letters, digits, - and _ only") }
        guard !userName.isEmpty, !userName.contains(where: { "/+#".contains($0) }) else {
            throw ValidationError("--user (or --username): the goal topic ends with the user's name (no /, + or #)")
        }
        // A filter character or a $SYS-like prefix would make the robot's topics unpublishable.
        if let prefix, prefix.contains(where: { "+#".contains($0) }) || prefix.hasPrefix("$") {
            throw ValidationError("--prefix: no + or #, not starting with $")
        }
    }

    /// The robot's topic prefix, ending with "/" (unless empty).
    var topicPrefix: String {
        var base = prefix ?? "robotd/\(robotId)/"
        if !base.isEmpty && !base.hasSuffix("/") { base += "/" }
        return base
    }

    /// The goal topic's last level: --user, else --username.
    var userName: String { user ?? connection.username ?? "" }
}
