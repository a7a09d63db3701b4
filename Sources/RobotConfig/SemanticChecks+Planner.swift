import Foundation

/// `planner.goals` and `planner.backends`: who may give goals, and the servers asked for plans —
/// what the schema's types cannot say (names, URLs, where the API key comes from).
extension SemanticChecker {
    mutating func checkPlannerSources() {
        guard let planner = root["planner"], planner.map != nil else { return }
        if let goals = planner["goals"], goals.map != nil { checkGoals(goals) }
        if let node = planner["clearance"], node.number == 0 {
            diagnostics.warning(node.position, "planner.clearance",
                                "0: a plan may send the robot onto the workspace's very edge, where the guard holds or stops it",
                                allowed: "a clearance > 0 (default: the workspace's warn_margin)")
        }
        var seen: [String: Int] = [:]
        var resolved: [String: Set<[UInt8]>?] = [:]  // each host looked up once, however many back ends name it
        let budget = planner["budget_ms"]?.number ?? PlannerSettings().budgetMs
        for (index, item) in (planner["backends"]?.items ?? []).enumerated() {
            guard item.map != nil else { continue }
            let path = KeyPath.item("planner.backends", index)
            if let node = item["name"], let name = node.string {
                if name == PlannerBackendSettings.builtinName || name.isEmpty {
                    diagnostics.error(node.position, KeyPath.child(path, "name"),
                                      name.isEmpty ? "is empty" : "`builtin` is the built-in planner's name", allowed: "another name")
                } else if let line = seen[name] {
                    diagnostics.error(node.position, KeyPath.child(path, "name"), "back end `\(name)` is listed twice (line \(line))",
                                      allowed: "each name once")
                } else {
                    seen[name] = node.position.line
                }
            }
            if let node = item["base_url"], let text = node.string {
                let url = URL(string: text)
                let scheme = url?.scheme?.lowercased()
                if url == nil || !(scheme == "http" || scheme == "https") || (url?.host ?? "").isEmpty {
                    diagnostics.error(node.position, KeyPath.child(path, "base_url"), "`\(text)` is not an http:// or https:// URL with a host",
                                      allowed: "http://127.0.0.1:8080/v1")
                }
            }
            checkClearTextKey(item, path: path)
            checkBrokerPort(item, path: path, resolved: &resolved)
            if item.has("api_key_env"), let entry = item.entry("api_key_file") {
                diagnostics.error(entry.keyPosition, KeyPath.child(path, "api_key_file"), "both api_key_env and api_key_file: which one?",
                                  allowed: "one of them")
            }
            if let node = item["deadline_ms"], let deadline = node.number, deadline > budget {
                diagnostics.warning(node.position, KeyPath.child(path, "deadline_ms"),
                                    "longer than planner.budget_ms (\(format(budget))): it is never asked", allowed: "at most \(format(budget))")
            }
        }
        if planner["builtin"]?.bool == false, (planner["backends"]?.items ?? []).isEmpty, let entry = planner.entry("builtin") {
            diagnostics.warning(entry.keyPosition, "planner.builtin", "false with no `backends`: no goal can be planned",
                                allowed: "true, or a back end under planner.backends")
        }
    }

    /// A back end with a key (`api_key_env` or `api_key_file`) and an `http://` base URL to a host
    /// other than this machine: the key would cross the network in clear text. (PlannerBackends'
    /// `OpenAICompatibleBackend` refuses it at start too; this says where it is in the file.)
    private mutating func checkClearTextKey(_ item: Located, path: String) {
        guard item.has("api_key_env") || item.has("api_key_file"), let node = item["base_url"], let text = node.string,
              let url = URL(string: text), url.scheme?.lowercased() == "http", let host = url.host, !Self.isLoopback(host)
        else { return }
        diagnostics.error(node.position, KeyPath.child(path, "base_url"),
                          "the API key would cross the network in clear text to \(host)",
                          allowed: "https://, or http:// to a loopback host (127.0.0.1, ::1, localhost)")
    }

    /// A back end on `mqtt.broker`'s host and port (a proxy that serves both, say): robotd tells the
    /// model server's connection from its other sockets by the peer's address and port (to reset it
    /// when a request is cut short), and leaves its MQTT connections alone by their descriptors —
    /// which libmosquitto holds only once a connect returned. Sharing both leaves that one rule to
    /// tell the broker from the model.
    ///
    /// With the ports equal, the hosts are one when written alike (case, brackets and a final dot
    /// aside) or when the addresses they resolve to here meet (`localhost` and 127.0.0.1, a name and
    /// its address, two spellings of ::1), as robotd's peers would; 127.0.0.1 and 127.0.0.2, or
    /// 127.0.0.1 and ::1, are two peers and are not. A host that does not resolve here (in 2 s)
    /// cannot be told from the other: that is a warning of its own, since `check` may run on
    /// another machine than the robot, where the name may well be the broker's. Nothing is looked
    /// up unless the ports are equal.
    private mutating func checkBrokerPort(_ item: Located, path: String, resolved: inout [String: Set<[UInt8]>?]) {
        guard let node = item["base_url"], let text = node.string, let url = URL(string: text), let host = url.host,
              let broker = root["mqtt"]?["broker"]?.string,
              let colon = broker.lastIndex(of: ":"), let brokerPort = Int(broker[broker.index(after: colon)...]) else { return }
        let port = url.port ?? (url.scheme?.lowercased() == "https" ? 443 : 80)
        let brokerHost = String(broker[..<colon])
        guard port == brokerPort else { return }
        let why = "robotd tells the model's connection from the broker's by address and port when it resets a request cut short; here only its list of MQTT sockets tells them apart, and a broker connection that is reconnecting is not on it yet"
        let allowed = "the model server on another port or host than the broker"
        let keyPath = KeyPath.child(path, "base_url")
        if Self.sameHostAsWritten(host, brokerHost) {
            diagnostics.warning(node.position, keyPath, "the same host and port as mqtt.broker (\(broker)): \(why)", allowed: allowed)
            return
        }
        let lookUpNames = self.lookUpNames
        let lookUp = { (name: String, resolved: inout [String: Set<[UInt8]>?]) -> Set<[UInt8]>? in
            if let known = resolved[name] { return known }
            let addresses = HostAddresses.resolve(name, lookUpNames: lookUpNames)
            resolved[name] = addresses
            return addresses
        }
        switch (lookUp(host, &resolved), lookUp(brokerHost, &resolved)) {
        case (let mine?, let theirs?):
            guard !mine.isDisjoint(with: theirs) else { return }
            diagnostics.warning(node.position, keyPath,
                                "the same host and port as mqtt.broker (\(broker)): `\(host)` and `\(brokerHost)` resolve to one address here; \(why)",
                                allowed: allowed)
        case (let mine, _):
            // Without lookups (a run loading its file) a name is not known here: `robotd check` tells.
            guard lookUpNames else { return }
            diagnostics.warning(node.position, keyPath,
                                "the same port as mqtt.broker (\(broker)), and `\(mine == nil ? host : brokerHost)` does not resolve here: "
                                + "check cannot tell whether it is the broker's host; if it is, \(why)",
                                allowed: allowed)
        }
    }

    /// Two host names for one host as written: equal, case, brackets and a final dot aside. (What
    /// they resolve to is `checkBrokerPort`'s second look.)
    static func sameHostAsWritten(_ a: String, _ b: String) -> Bool {
        func plain(_ host: String) -> String {
            var name = host.lowercased()
            if name.hasPrefix("["), name.hasSuffix("]") { name = String(name.dropFirst().dropLast()) }
            if name.hasSuffix(".") { name.removeLast() }
            return name
        }
        return plain(a) == plain(b)
    }

    /// `localhost`, 127.0.0.0/8 (four decimal parts), `::1` in any spelling, `::ffff:127.x.y.z`: the
    /// rule of PlannerBackends' `LoopbackHost` (RobotConfig does not link it). Names are not resolved.
    static func isLoopback(_ host: String) -> Bool {
        var name = host.lowercased()
        if name.hasPrefix("["), name.hasSuffix("]") { name = String(name.dropFirst().dropLast()) }
        if name.hasSuffix(".") { name.removeLast() }
        if name == "localhost" { return true }
        var v4 = in_addr()
        if inet_pton(AF_INET, name, &v4) == 1 { return withUnsafeBytes(of: &v4) { $0[0] } == 127 }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, name, &v6) == 1 else { return false }
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        if bytes[0..<15].allSatisfy({ $0 == 0 }), bytes[15] == 1 { return true }
        return bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF && bytes[12] == 127
    }

    private mutating func checkGoals(_ goals: Located) {
        var seen: [String: Int] = [:]
        for (i, node) in (goals["users"]?.items ?? []).enumerated() {
            guard let name = node.string else { continue }
            let path = KeyPath.item("planner.goals.users", i)
            if name.isEmpty || name.contains(where: { "/+#".contains($0) }) {
                diagnostics.error(node.position, path, "`\(name)` cannot be an MQTT user in a topic level (the goal's topic ends with it)",
                                  allowed: "a non-empty name without /, + or #")
            } else if let line = seen[name] {
                diagnostics.error(node.position, path, "user `\(name)` is listed twice (line \(line))", allowed: "each user once")
            } else {
                seen[name] = node.position.line
            }
        }
        if goals["mqtt"]?.bool == true {
            if root["mqtt"]?.map == nil, let entry = goals.entry("mqtt") {
                diagnostics.error(entry.keyPosition, "planner.goals.mqtt", "goals over MQTT need an `mqtt` section (the broker)",
                                  allowed: "an mqtt section, or mqtt: false")
            }
            if (goals["users"]?.items ?? []).isEmpty, let entry = goals.entry("mqtt") {
                diagnostics.warning(entry.keyPosition, "planner.goals.mqtt", "no `users`: every goal over MQTT is refused (and recorded)",
                                    allowed: "users: [operator]")
            }
        }
        if let node = goals["min_interval_ms"], node.number == 0 {
            diagnostics.warning(node.position, "planner.goals.min_interval_ms",
                                "0: goals are not rate-limited: each one taken cancels the plan and asks the planner again",
                                allowed: "a number > 0 (default 1000)")
        }
        if let node = goals["initial"], let text = node.string {
            if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                diagnostics.error(node.position, "planner.goals.initial", "is empty", allowed: "a goal, or leave it out")
            } else if text.count > GoalSettings.maxLength {
                diagnostics.error(node.position, "planner.goals.initial", "\(text.count) characters: a goal has at most \(GoalSettings.maxLength)")
            }
        }
    }
}
