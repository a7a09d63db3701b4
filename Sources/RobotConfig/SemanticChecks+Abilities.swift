/// `abilities` and `planner`: what the schema's types cannot say — names, the executing policy,
/// arguments that exist for the action, the weaker choices written out. Bounds that only the
/// whole configuration gives (workspace, wheel limits, interlocks) are checked after decoding
/// (`RobotConfiguration.resolveAbilities()`).
extension SemanticChecker {
    mutating func checkAbilities() {
        let abilities = root["abilities"]?.items ?? []
        if abilities.isEmpty, let entry = root.entry("planner") {
            diagnostics.warning(entry.keyPosition, "planner", "there are no `abilities`: no plan can be accepted, these settings do nothing",
                                allowed: "abilities: […]")
        }
        var policies: [(name: String, kind: String?)] = []
        for item in root["policies"]?.items ?? [] {
            if let name = item["name"]?.string { policies.append((name, item["kind"]?.string)) }
        }
        var seen: [String: Int] = [:]
        for (index, item) in abilities.enumerated() {
            guard item.map != nil else { continue }
            let path = KeyPath.item("abilities", index)
            guard let nameNode = item["name"], let name = nameNode.string else { continue }
            let namePath = KeyPath.child(path, "name")
            if let line = seen[name] {
                diagnostics.error(nameNode.position, namePath, "duplicate ability name `\(name)`: already declared at line \(line)",
                                  allowed: "a name used once")
            } else {
                seen[name] = nameNode.position.line
            }
            if !Self.isAbilityName(name) {
                diagnostics.error(nameNode.position, namePath,
                                  "`\(name)` is not a name a plan can carry: it goes into the plan schema's enum and tool names",
                                  allowed: "a lower-case letter, then lower-case letters, digits or _ (at most 64)")
            }
            let action: AbilityAction
            if let actionNode = item["action"] {
                guard let word = actionNode.string, let known = AbilityAction(rawValue: word) else { continue }  // the schema said why
                action = known
            } else if let known = AbilityAction(rawValue: name) {
                action = known
            } else {
                var message = "`\(name)` is not an action, and no `action` says what it does"
                if let suggestion = closestMatch(to: name, in: AbilityAction.allCases.map(\.rawValue)) {
                    message += "; did you mean `\(suggestion)`?"
                }
                diagnostics.error(nameNode.position, namePath, message,
                                  allowed: "action: " + wordList(AbilityAction.allCases.map(\.rawValue)))
                continue
            }
            checkAbilityPolicy(item, action: action, policies: policies, path: path)
            checkAbilityArguments(item, action: action, path: path)
            checkAbilityLimits(item, action: action, path: path)
        }
    }

    /// Lower-case ASCII letters, digits and `_`, starting with a letter: safe in a JSON Schema
    /// enum, an MCP tool name and a topic.
    static func isAbilityName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, ("a"..."z").contains(first), name.unicodeScalars.count <= 64 else { return false }
        return name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
    }

    private mutating func checkAbilityPolicy(_ item: Located, action: AbilityAction, policies: [(name: String, kind: String?)],
                                             path: String) {
        let policyPath = KeyPath.child(path, "policy")
        if action.isBuiltIn {
            if let entry = item.entry("policy") {
                diagnostics.error(entry.keyPosition, policyPath, "`\(action.rawValue)` is built in: no policy executes it",
                                  allowed: "remove it")
            }
            return
        }
        let compatible = policies.filter { p in p.kind.map { action.policyKinds.contains($0) } ?? false }.map(\.name)
        let kinds = wordList(action.policyKinds.map { "`\($0)`" })
        let allowed = compatible.isEmpty ? "a \(kinds) policy (none is declared under `policies`)" : wordList(compatible)
        guard let node = item["policy"] else {
            diagnostics.error(item.position, policyPath, "missing: the \(kinds) policy that executes `\(action.rawValue)`", allowed: allowed)
            return
        }
        guard let name = node.string else { return }
        guard let policy = policies.first(where: { $0.name == name }) else {
            var message = "unknown policy `\(name)`: not declared under `policies`"
            if let suggestion = closestMatch(to: name, in: compatible.isEmpty ? policies.map(\.name) : compatible) {
                message += "; did you mean `\(suggestion)`?"
            }
            diagnostics.error(node.position, policyPath, message, allowed: allowed)
            return
        }
        if let kind = policy.kind, !action.policyKinds.contains(kind) {
            diagnostics.error(node.position, policyPath,
                              "policy `\(name)` is a `\(kind)` policy: `\(action.rawValue)` is executed by a \(kinds) policy",
                              allowed: allowed)
        } else if action.moves {
            checkPlannerEnvelopes(policy: name, at: node.position, path: policyPath)
        }
    }

    /// A plan's motion is a safety envelope's business: the wheels a moving ability drives need
    /// `envelopes.planner.max_velocity` (the guard applies it to every planner command, and the
    /// plan's `speed` is bounded by it: `speed_above_envelope`). Without it a model's plan would
    /// drive at whatever the channel allows any policy.
    private mutating func checkPlannerEnvelopes(policy name: String, at position: SourcePosition, path: String) {
        guard let policy = (root["policies"]?.items ?? []).first(where: { $0["name"]?.string == name }) else { return }
        let channels = root["channels"]?.items ?? []
        var missing: [String] = []
        for channelName in (policy["channels"]?.items ?? []).compactMap(\.string) {
            guard let channel = channels.first(where: { $0["name"]?.string == channelName }) else { continue }
            if channel["envelopes"]?["planner"]?["max_velocity"]?.number == nil { missing.append(channelName) }
        }
        guard !missing.isEmpty else { return }
        diagnostics.error(position, path,
                          "policy `\(name)` drives \(wordList(missing.map { "`\($0)`" }, conjunction: "and")) with no `envelopes.planner.max_velocity`: a plan's motion would be bounded only by the limits every policy has",
                          allowed: "envelopes: {planner: {max_velocity: …}} on each of its channels")
    }

    private mutating func checkAbilityArguments(_ item: Located, action: AbilityAction, path: String) {
        guard let arguments = item["arguments"]?.map else { return }
        let argumentsPath = KeyPath.child(path, "arguments")
        let names = action.arguments.map(\.name)
        for entry in arguments.entries {
            let argumentPath = KeyPath.child(argumentsPath, entry.key)
            guard let spec = action.argument(named: entry.key) else {
                var message = "`\(action.rawValue)` has no argument `\(entry.key)`"
                if let suggestion = closestMatch(to: entry.key, in: names) { message += "; did you mean `\(suggestion)`?" }
                diagnostics.error(entry.keyPosition, argumentPath, message,
                                  allowed: names.isEmpty ? "none: `\(action.rawValue)` takes no arguments" : wordList(names))
                continue
            }
            let value = entry.value
            switch spec.kind {
            case .number:
                if let maxPoints = value.entry("max_points") {
                    diagnostics.error(maxPoints.keyPosition, KeyPath.child(argumentPath, "max_points"),
                                      "`\(spec.name)` is a number, not a list of points", allowed: "min, max, description")
                }
                let low = value["min"], high = value["max"]
                for (key, node) in [("min", low), ("max", high)] {
                    guard let node, let number = node.number, !spec.range.contains(number) else { continue }
                    diagnostics.error(node.position, KeyPath.child(argumentPath, key),
                                      "\(format(number)) \(spec.unit) is outside what `\(action.rawValue)` accepts for `\(spec.name)`",
                                      allowed: "\(format(spec.range.lowerBound))…\(format(spec.range.upperBound)) \(spec.unit)")
                }
                if let low = low?.number, let node = high, let highValue = node.number, low > highValue {
                    diagnostics.error(node.position, KeyPath.child(argumentPath, "max"), "\(format(highValue)) is below min \(format(low))",
                                      allowed: "≥ \(format(low))")
                }
            case .points:
                for key in ["min", "max"] {
                    guard let bound = value.entry(key) else { continue }
                    diagnostics.error(bound.keyPosition, KeyPath.child(argumentPath, key),
                                      "`\(spec.name)` is a list of points: the workspace bounds their coordinates",
                                      allowed: "max_points, description")
                }
            }
        }
    }

    /// Timeout, no-progress detection and preconditions: required where a step could otherwise
    /// run forever unseen, refused where they would be ignored.
    private mutating func checkAbilityLimits(_ item: Located, action: AbilityAction, path: String) {
        let name = action.rawValue
        if action.isBuiltIn {
            for key in ["timeout_s", "no_progress"] {
                guard let entry = item.entry(key) else { continue }
                diagnostics.error(entry.keyPosition, KeyPath.child(path, key),
                                  "`\(name)` \(action == .stop ? "completes at once" : "ends by itself after its seconds"): `\(key)` would be ignored",
                                  allowed: "remove it")
            }
        } else if !item.has("timeout_s") {
            diagnostics.error(item.position, KeyPath.child(path, "timeout_s"),
                              "missing: a `\(name)` step with no time limit could run forever", allowed: "a number > 0 (s)")
        }
        if action.moves {
            if !item.has("no_progress") {
                diagnostics.error(item.position, KeyPath.child(path, "no_progress"),
                                  "missing: a `\(name)` step that stops getting closer (blocked, stalled) would go unseen until its timeout",
                                  allowed: "{min_progress: m, time_s: s}, or `none` written out")
            } else if let node = item["no_progress"], node.string == "none" {
                diagnostics.warning(node.position, KeyPath.child(path, "no_progress"),
                                    "none: a `\(name)` step that stops getting closer is noticed only at its timeout")
            }
        }
        if action.moves, root["workspace"]?.map == nil {
            diagnostics.error(item.position, path,
                              "`\(name)` takes points, and without a `workspace` nothing bounds where a plan may send the robot",
                              allowed: "a workspace section")
        }
        guard let list = item["preconditions"] else { return }
        let preconditionsPath = KeyPath.child(path, "preconditions")
        if action == .stop, let entry = item.entry("preconditions"), !list.items.isEmpty {
            diagnostics.error(entry.keyPosition, preconditionsPath, "a plan may always stop: `stop` takes no preconditions",
                              allowed: "remove them")
            return
        }
        var listed: Set<String> = []
        for (i, node) in list.items.enumerated() {
            guard let word = node.string else { continue }
            let itemPath = KeyPath.item(preconditionsPath, i)
            if !listed.insert(word).inserted {
                diagnostics.error(node.position, itemPath, "`\(word)` is listed twice", allowed: "each precondition once")
            } else if word == AbilityPrecondition.insideWorkspace.rawValue, root["workspace"]?.map == nil {
                diagnostics.error(node.position, itemPath, "there is no `workspace` to be inside of", allowed: "a workspace section, or remove it")
            } else if word != AbilityPrecondition.notLatched.rawValue, root["odometry"]?.map == nil {
                diagnostics.error(node.position, itemPath, "`\(word)` needs a pose, and nothing estimates one", allowed: "an odometry section, or remove it")
            }
        }
    }
}
