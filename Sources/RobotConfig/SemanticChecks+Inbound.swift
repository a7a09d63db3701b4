/// The inbound topics' rules (docs/mqtt.md, "Inbound topics and security"): the prefix and the
/// remote stop's topics name topics, not filters; a reset user is one topic level; a stop topic
/// that is also a reset request's would turn every stop into a reset request.
extension SemanticChecker {
    mutating func checkInbound() {
        if let prefix = root["mqtt"]?["prefix"], let text = prefix.string {
            checkTopic(text, at: prefix.position, path: "mqtt.prefix", what: "the prefix")
        }
        guard let remote = root["estop"]?["remote"], remote.map != nil else { return }
        for key in ["stop_topic", "reset_topic"] {
            guard let node = remote[key], let text = node.string else { continue }
            if text.isEmpty {
                diagnostics.error(node.position, "estop.remote.\(key)", "is empty", allowed: "a topic, or leave it out for the default")
            } else {
                checkTopic(text, at: node.position, path: "estop.remote.\(key)", what: "a stop or reset topic")
            }
        }
        var seen: [String: Int] = [:]
        for (i, node) in (remote["reset_users"]?.items ?? []).enumerated() {
            guard let name = node.string else { continue }
            let path = KeyPath.item("estop.remote.reset_users", i)
            if name.isEmpty || name.contains(where: { "/+#".contains($0) }) {
                diagnostics.error(node.position, path, "`\(name)` cannot be an MQTT user in a topic level (the reset request's topic ends with it)",
                                  allowed: "a non-empty name without /, + or #")
            } else if let line = seen[name] {
                diagnostics.error(node.position, path, "user `\(name)` is listed twice (line \(line))", allowed: "each user once")
            } else {
                seen[name] = node.position.line
            }
        }
        if (remote["reset_users"]?.items ?? []).isEmpty, let entry = root["estop"]?.entry("remote") {
            diagnostics.warning(entry.keyPosition, "estop.remote",
                                "no `reset_users`: every remote reset request is refused (and recorded); only a reset key can release a remote stop",
                                allowed: "reset_users: [operator]")
        }
        // A broker that grants the subscription and drops the messages (Mosquitto's acl_file
        // filters deliveries and never refuses a SUBSCRIBE) leaves robotd deaf to the stop with
        // nothing to show it: only an end-to-end keep-alive notices.
        if let heartbeat = remote["heartbeat_ms"], heartbeat.string == "none" {
            diagnostics.warning(heartbeat.position, "estop.remote.heartbeat_ms",
                                "none: nothing notices a remote stop path that drops messages (an ACL, a bridge, a broker that grants the subscription and delivers nothing); robotd would be deaf to the stop without a stop cause",
                                allowed: "a number of ms: the operator station publishes an advancing counter on `<stop topic>/alive` at least that often")
        }
        // The topics as the runtime will use them (defaults under the prefix).
        guard let id = root["robot"]?["id"]?.string else { return }
        var prefix = root["mqtt"]?["prefix"]?.string ?? "robotd/\(id)/"
        if !prefix.isEmpty && !prefix.hasSuffix("/") { prefix += "/" }
        let stop = remote["stop_topic"]?.string ?? prefix + "estop"
        var resetBase = remote["reset_topic"]?.string ?? prefix + "estop/reset"
        while resetBase.hasSuffix("/") { resetBase.removeLast() }
        if stop.hasPrefix(resetBase + "/") && !stop.dropFirst(resetBase.count + 1).contains("/") {
            let node = remote["stop_topic"] ?? remote["reset_topic"] ?? remote
            diagnostics.error(node.position, remote["stop_topic"] != nil ? "estop.remote.stop_topic" : "estop.remote.reset_topic",
                              "`\(stop)` is a reset request's topic (`\(resetBase)/<user>`): a stop would also be read as a reset request",
                              allowed: "a stop topic outside `\(resetBase)/`")
        }
    }

    /// A topic robotd publishes or subscribes to by name: no wildcards (a wildcard would subscribe
    /// and never match exactly), not one of the broker's own (`$SYS`).
    private mutating func checkTopic(_ text: String, at position: SourcePosition, path: String, what: String) {
        if text.contains("+") || text.contains("#") {
            diagnostics.error(position, path, "`\(text)` has a wildcard: \(what) names topics, no + or #", allowed: "a topic without + or #")
        } else if text.hasPrefix("$") {
            diagnostics.error(position, path, "`\(text)` starts with `$`: such topics are the broker's own", allowed: "a topic not starting with $")
        } else if text.contains("\u{0}") {
            diagnostics.error(position, path, "has a NUL character", allowed: "a topic without NUL")
        }
    }
}
