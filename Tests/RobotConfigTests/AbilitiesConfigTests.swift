import Foundation
import RobotConfig
import Testing

/// `abilities` and `planner`: checked with the rest of the file, every problem at its line:column.
@Suite("robotd check: abilities and planner")
struct AbilitiesConfigTests {
    /// A rover with a `waypoints` and a `wander` policy; the wheels' planner envelope is 4 rad/s
    /// (0.2 m/s at r = 0.05 m). Lines 1…17; abilities follow from line 18.
    static func rover(routeSpeed: String = "0.15", workspace: Bool = true, envelopes: String = "envelopes: {planner: {max_velocity: 4}}, ") -> [String] {
        let wheel = { (name: String) in
            "  - {name: \(name), kind: continuous, interface: velocity, limits: {max_velocity: 12, max_acceleration: 40}, \(envelopes)safe_value: 0, stop_category: 1, watchdog_timeout_ms: 100, motion_monitor: {tolerance: 3, time_ms: 250}}"
        }
        return [
            "robot: {id: test}",                                                                   // 1
            "estop: none",                                                                         // 2
            "inputs:",                                                                             // 3
            "  - {name: port, kind: serial, path: /dev/null, codec: frame, feeds: {wheel_encoders: enc}, link_timeout_ms: 150}",
            "sensors:",                                                                            // 5
            "  - {name: enc, max_age_ms: 200, reaction: stop, stop_category: 1}",
            "odometry: {encoders: enc, left_wheel: wl, right_wheel: wr, wheel_radius: 0.05, wheel_separation: 0.3, ticks_per_revolution: 2048}",
            "channels:",                                                                           // 8
            wheel("wl"),
            wheel("wr"),                                                                           // 10
            workspace ? "workspace: {polygon: [[-5, -4], [5, -4], [5, 4], [-5, 4]], warn_margin: 0.3, stop_margin: 0.3, stop_category: 1}"
                : "# no workspace",
            "policies:",                                                                           // 12
            "  - {name: route, kind: waypoints, period_ms: 20, critical: true, channels: [wl, wr], points: [[0, 0]], speed: \(routeSpeed)}",
            "  - {name: roam, kind: wander, period_ms: 20, critical: true, channels: [wl, wr], priority: 5, range_sensor: enc}",
            "actuators:",                                                                          // 15
            "  - {name: sim, kind: simulator, channels: [wl, wr]}",
            "abilities:",                                                                          // 17
        ]
    }

    /// 1-based column of `fragment` in `line` (plus `offset`).
    func column(_ line: String, _ fragment: String, offset: Int = 0) -> Int {
        guard let range = line.range(of: fragment) else { return -1 }
        return line.distance(from: line.startIndex, to: range.lowerBound) + 1 + offset
    }

    @Test func abilities_and_planner_settings_decode_into_value_types() throws {
        let abilities = [
            "  - {name: goto, policy: route, timeout_s: 60, no_progress: {min_progress: 0.05, time_s: 10}, preconditions: [not_latched]}",
            "  - name: tour",                                          // 19
            "    action: patrol",
            "    description: the arena's corners",
            "    policy: route",
            "    timeout_s: 300",
            "    no_progress: none",                                   // 24
            "    arguments: {points: {max_points: 6, description: where to go}}",
            "  - {name: stop}",
            "  - {name: wait, arguments: {seconds: {max: 60}}}",
            "planner: {max_steps: 6, rejection_retries: 1}",
        ]
        let report = check((Self.rover() + abilities).joined(separator: "\n"))
        #expect(report.errors.isEmpty, "\(report)")
        expectProblem(report, .warning, at: 24, 18, "abilities[1].no_progress", "noticed only at its timeout")
        let configuration = try #require(report.configuration)
        #expect(configuration.abilities.map(\.action) == [.goto, .patrol, .stop, .wait])
        let goto = configuration.abilities[0]
        #expect(goto.policy == "route" && goto.timeoutS == 60 && goto.preconditions == [.notLatched])
        #expect(goto.noProgress == NoProgressSettings(minProgress: 0.05, timeS: 10))
        #expect(configuration.abilities[1].noProgress == nil && configuration.abilities[1].description == "the arena's corners")
        #expect(configuration.abilities[1].arguments["points"] == AbilityArgumentSettings(description: "where to go", maxPoints: 6))
        #expect(configuration.planner.maxSteps == 6 && configuration.planner.rejectionRetries == 1)
        #expect(configuration.planner.maxPlanAgeS == 30 && configuration.planner.maxPoseDrift == 0.5 && configuration.planner.clearance == nil)
        // Resolved: the bounds that hold, with where they come from.
        let catalog = configuration.resolveAbilities().catalog
        #expect(catalog.names == ["goto", "tour", "stop", "wait"])
        guard case .number(let speed)? = catalog.ability(named: "goto")?.argument(named: "speed")?.shape,
              case .points(let x, _, let maxCount)? = catalog.ability(named: "tour")?.argument(named: "points")?.shape,
              case .number(let seconds)? = catalog.ability(named: "wait")?.argument(named: "seconds")?.shape else {
            Issue.record("unexpected shapes: \(catalog)")
            return
        }
        #expect(speed.upper == Bound(0.2, .plannerEnvelope) && speed.lower == Bound(0.01, .action))
        #expect(x.lower == Bound(-4.7, .workspace) && maxCount == 6)
        #expect(seconds.upper == Bound(60, .ability))
        #expect(catalog.ability(named: "tour")?.defaultSpeed == 0.15)
    }

    @Test func wrong_abilities_are_reported_at_their_place() {
        let abilities = [
            "  - {name: got, policy: route, timeout_s: 60, no_progress: none}",                                 // 18
            "  - {name: goto, policy: roam, timeout_s: 60, no_progress: none}",                                 // 19
            "  - {name: patrol, policy: rout, timeout_s: 60, no_progress: none}",                               // 20
            "  - {name: stop, policy: route}",                                                                  // 21
            "  - {name: wait, timeout_s: 5}",                                                                   // 22
            "  - {name: hold, policy: route}",                                                                  // 23
            "  - {name: goto2, action: goto, policy: route, arguments: {spede: {max: 1}, speed: {max_points: 3}}}", // 24
            "  - {name: Goto, action: goto, policy: route, timeout_s: 1, no_progress: none}",                   // 25
            "  - {name: stop, preconditions: [not_latched]}",                                                   // 26
            "  - {name: pause, action: wait, arguments: {seconds: {min: 10, max: 5}}}",                         // 27
            "  - {name: wait2, action: wait, preconditions: [pose_known, pose_known], arguments: {seconds: {max: 7200}}}", // 28
            "planner: {max_step: 3, clearance: -1}",                                                            // 29
        ]
        let lines = Self.rover() + abilities
        let report = check(lines.joined(separator: "\n"))
        #expect(report.configuration == nil)
        func line(_ n: Int) -> String { lines[n - 1] }
        expectProblem(report, at: 18, column(line(18), "got,"), "abilities[0].name", "`got` is not an action, and no `action` says what it does; did you mean `goto`?")
        expectProblem(report, at: 19, column(line(19), "roam"), "abilities[1].policy",
                      "policy `roam` is a `wander` policy: `goto` is executed by a `waypoints` policy")
        expectProblem(report, at: 20, column(line(20), "rout,"), "abilities[2].policy", "unknown policy `rout`: not declared under `policies`; did you mean `route`?")
        expectProblem(report, at: 21, column(line(21), "policy"), "abilities[3].policy", "`stop` is built in: no policy executes it")
        expectProblem(report, at: 22, column(line(22), "timeout_s"), "abilities[4].timeout_s", "`wait` ends by itself after its seconds")
        expectProblem(report, at: 23, column(line(23), "policy: route", offset: 8), "abilities[5].policy", "`hold` is executed by a `thermostat` policy")
        expectProblem(report, at: 23, column(line(23), "{"), "abilities[5].timeout_s", "missing: a `hold` step with no time limit could run forever")
        expectProblem(report, at: 24, column(line(24), "{"), "abilities[6].timeout_s", "missing")
        expectProblem(report, at: 24, column(line(24), "{"), "abilities[6].no_progress", "missing: a `goto` step that stops getting closer")
        expectProblem(report, at: 24, column(line(24), "spede"), "abilities[6].arguments.spede", "`goto` has no argument `spede`; did you mean `speed`?")
        expectProblem(report, at: 24, column(line(24), "max_points"), "abilities[6].arguments.speed.max_points", "`speed` is a number, not a list of points")
        expectProblem(report, at: 25, column(line(25), "Goto"), "abilities[7].name", "`Goto` is not a name a plan can carry")
        expectProblem(report, at: 26, column(line(26), "stop"), "abilities[8].name", "duplicate ability name `stop`: already declared at line 21")
        expectProblem(report, at: 26, column(line(26), "preconditions"), "abilities[8].preconditions", "a plan may always stop")
        expectProblem(report, at: 27, column(line(27), "5}"), "abilities[9].arguments.seconds.max", "5 is below min 10")
        expectProblem(report, at: 28, column(line(28), "pose_known]"), "abilities[10].preconditions[1]", "`pose_known` is listed twice")
        expectProblem(report, at: 28, column(line(28), "7200"), "abilities[10].arguments.seconds.max",
                      "7200 s is outside what `wait` accepts for `seconds`")
        expectProblem(report, at: 29, column(line(29), "max_step"), "planner.max_step", "did you mean `max_steps`?")
        expectProblem(report, at: 29, column(line(29), "-1"), "planner.clearance", "out of range")
    }

    @Test func abilities_that_take_points_need_a_workspace() {
        let lines = Self.rover(workspace: false) + [
            "  - {name: goto, policy: route, timeout_s: 60, no_progress: none}",    // 18
            "  - {name: wait, preconditions: [inside_workspace]}",                 // 19
        ]
        let report = check(lines.joined(separator: "\n"))
        expectProblem(report, at: 18, 5, "abilities[0]", "without a `workspace` nothing bounds where a plan may send the robot")
        expectProblem(report, at: 19, column(lines[18], "inside_workspace"), "abilities[1].preconditions[0]", "there is no `workspace` to be inside of")
    }

    @Test func bounds_that_leave_no_value_and_a_policy_too_fast_for_the_envelope_are_errors() {
        // x at least 6 (the ability) but at most 4.7 (the workspace less warn_margin 0.3).
        var lines = Self.rover() + ["  - {name: goto, policy: route, timeout_s: 60, no_progress: none, arguments: {x: {min: 6}}}"]
        var report = check(lines.joined(separator: "\n"))
        #expect(report.configuration == nil)
        expectProblem(report, at: 18, column(lines[17], "{min"), "abilities[0].arguments.x",
                      "no value of `x` can pass: at least 6 m (the ability's own bound) but at most 4.7 m (the workspace less the clearance)")
        // A clearance that leaves no room.
        lines = Self.rover() + ["  - {name: goto, policy: route, timeout_s: 60, no_progress: none}", "planner: {clearance: 4.5}"]
        report = check(lines.joined(separator: "\n"))
        expectProblem(report, at: 18, 5, "abilities[0]", "no value of `y` can pass")
        // The policy drives 0.3 m/s when a plan gives no speed; the planner envelope allows 0.2.
        lines = Self.rover(routeSpeed: "0.3") + ["  - {name: goto, policy: route, timeout_s: 60, no_progress: none}"]
        report = check(lines.joined(separator: "\n"))
        expectProblem(report, at: 18, column(lines[17], "route"), "abilities[0].policy",
                      "policy `route` drives at 0.3 m/s when a step gives no speed, above 0.2 m/s (the wheels' planner envelope)")
    }

    @Test func planner_back_ends_and_goals_decode_and_their_mistakes_are_reported_at_their_place() throws {
        let ok = Self.rover() + [
            "  - {name: goto, policy: route, timeout_s: 60, no_progress: none}",                              // 18
            "planner:",                                                                                      // 19
            "  budget_ms: 20000",
            "  builtin: false",
            "  max_requests_in_flight: 2",
            "  goals: {users: [operator, alice], min_interval_ms: 500, initial: 'go to 1,1'}",
            "  backends:",                                                                                   // 24
            "    - {name: local, base_url: 'http://127.0.0.1:8080/v1', model: smol, dialect: json_object_schema, deadline_ms: 8000, goal_kinds: [goto], breaker: {failure_threshold: 2, cool_down_ms: 5000}}",
            "    - {name: hosted, kind: openai, base_url: 'https://api.example.com/v1', model: m, api_key_env: KEY, max_response_bytes: 65536}",
        ]
        var report = check(ok.joined(separator: "\n"))
        #expect(report.errors.isEmpty, "\(report)")
        let planner = try #require(report.configuration?.planner)
        #expect(planner.budgetMs == 20000 && !planner.builtin && planner.maxRequestsInFlight == 2)
        #expect(planner.goals.users == ["operator", "alice"] && planner.goals.minIntervalMs == 500 && planner.goals.initial == "go to 1,1")
        #expect(!planner.goals.mqtt)
        #expect(planner.backends.map(\.name) == ["local", "hosted"] && planner.backends[0].dialect == "json_object_schema")
        #expect(planner.backends[0].goalKinds == ["goto"] && planner.backends[0].breaker.failureThreshold == 2)
        #expect(planner.backends[1].dialect == "json_schema" && planner.backends[1].deadlineMs == 10000 && planner.backends[1].apiKeyEnv == "KEY")

        let wrong = Self.rover() + [
            "  - {name: goto, policy: route, timeout_s: 60, no_progress: none}",                              // 18
            "planner:",                                                                                      // 19
            "  budget_ms: 5000",                                                                             // 20
            "  goals: {mqtt: true, users: [a/b, ok, ok], initial: ''}",                                      // 21
            "  backends:",                                                                                   // 22
            "    - {name: builtin, base_url: 'ftp://x/v1', model: m}",                                       // 23
            "    - {name: two, base_url: 'http://127.0.0.1:1/v1', model: m, api_key_env: K, api_key_file: /k, deadline_ms: 9000, dialect: json}", // 24
            "    - {name: two, base_url: 'http://127.0.0.1:1/v1', model: m, goal_kinds: [fly]}",              // 25
        ]
        report = check(wrong.joined(separator: "\n"))
        #expect(report.configuration == nil)
        func line(_ n: Int) -> String { wrong[n - 1] }
        expectProblem(report, at: 21, column(line(21), "mqtt"), "planner.goals.mqtt", "goals over MQTT need an `mqtt` section")
        expectProblem(report, at: 21, column(line(21), "a/b"), "planner.goals.users[0]", "cannot be an MQTT user in a topic level")
        expectProblem(report, at: 21, column(line(21), "ok]"), "planner.goals.users[2]", "user `ok` is listed twice")
        expectProblem(report, at: 21, column(line(21), "''"), "planner.goals.initial", "is empty")
        expectProblem(report, at: 23, column(line(23), "builtin"), "planner.backends[0].name", "`builtin` is the built-in planner's name")
        expectProblem(report, at: 23, column(line(23), "'ftp"), "planner.backends[0].base_url", "is not an http:// or https:// URL with a host")
        expectProblem(report, at: 24, column(line(24), "api_key_file"), "planner.backends[1].api_key_file", "both api_key_env and api_key_file")
        expectProblem(report, .warning, at: 24, column(line(24), "9000"), "planner.backends[1].deadline_ms", "longer than planner.budget_ms")
        expectProblem(report, at: 24, column(line(24), "json}"), "planner.backends[1].dialect", "json")
        expectProblem(report, at: 25, column(line(25), "two,"), "planner.backends[2].name", "back end `two` is listed twice")
        expectProblem(report, at: 25, column(line(25), "fly"), "planner.backends[2].goal_kinds[0]", "fly")
    }

    /// An API key over plain http:// to another host is an error at the base URL's place; to a
    /// loopback host (127.0.0.0/8, ::1, localhost), over https://, or with no key, it is not.
    @Test func a_key_over_plain_http_to_another_host_is_an_error_at_the_base_url() throws {
        let refused = ["api.example.com", "10.0.0.5:8080", "128.0.0.1", "[::2]", "0.0.0.0", "127.0.0.1.nip.io", "127.1",
                       "localhost.example.com"]
        let allowed = ["127.0.0.1:8080", "127.9.8.7", "localhost:8080", "LOCALHOST.", "[::1]:8080", "[0:0:0:0:0:0:0:1]",
                       "[::ffff:127.0.0.1]"]
        var lines = Self.rover() + ["  - {name: goto, policy: route, timeout_s: 60, no_progress: none}", "planner:", "  backends:"]
        let first = lines.count + 1
        for (i, host) in (refused + allowed).enumerated() {
            lines.append("    - {name: b\(i), base_url: 'http://\(host)/v1', model: m, \(i % 2 == 0 ? "api_key_env: KEY" : "api_key_file: /run/key")}")
        }
        lines.append("    - {name: tls, base_url: 'https://api.example.com/v1', model: m, api_key_env: KEY}")
        lines.append("    - {name: nokey, base_url: 'http://192.168.1.9:8080/v1', model: m}")
        let report = check(lines.joined(separator: "\n"))
        #expect(report.configuration == nil)
        for (i, host) in refused.enumerated() {
            let name = host.hasPrefix("[") ? String(host.dropFirst().prefix { $0 != "]" }) : String(host.prefix { $0 != ":" })
            expectProblem(report, at: first + i, column(lines[first + i - 1], "'http"), "planner.backends[\(i)].base_url",
                          "the API key would cross the network in clear text to \(name)")
        }
        #expect(report.errors.count == refused.count, "\(report)")
    }

    /// A back end on the broker's host and port (review Medium 1): `robotd check` warns at the base
    /// URL, since only the list of MQTT sockets would then tell the model's connection from the
    /// broker's. The same port on another host, another port on the same host, or a default port
    /// (443 for https://) that differs: no warning. Hosts are compared as written and by the
    /// addresses they resolve to (review L5): `localhost` is 127.0.0.1, and so is
    /// `::ffff:127.0.0.1`; 127.0.0.2 and ::1 are other peers than 127.0.0.1, whatever their
    /// being loopback too.
    @Test func a_back_end_on_the_brokers_host_and_port_is_a_warning_at_the_base_url() throws {
        var lines = Self.rover() + ["  - {name: goto, policy: route, timeout_s: 60, no_progress: none}", "planner:", "  backends:"]
        let first = lines.count + 1
        let warned = ["http://localhost:8883/v1", "https://127.0.0.1:8883/v1", "http://[::ffff:127.0.0.1]:8883/v1"]
        let quiet = ["http://127.0.0.1:8080/v1", "https://192.0.2.7:8883/v1", "https://127.0.0.1/v1", "http://127.0.0.2:8883/v1",
                     "http://[::1]:8883/v1"]
        for (i, url) in (warned + quiet).enumerated() {
            lines.append("    - {name: b\(i), base_url: '\(url)', model: m}")
        }
        lines += ["mqtt:", "  broker: 127.0.0.1:8883", "  ca_file: /etc/ca.pem"]
        var report = check(lines.joined(separator: "\n"))
        #expect(report.errors.isEmpty, "\(report)")
        for i in warned.indices {
            expectProblem(report, .warning, at: first + i, column(lines[first + i - 1], "'http"), "planner.backends[\(i)].base_url",
                          "the same host and port as mqtt.broker (127.0.0.1:8883)")
        }
        // Written otherwise, one address: said so.
        expectProblem(report, .warning, at: first, column(lines[first - 1], "'http"), "planner.backends[0].base_url",
                      "`localhost` and `127.0.0.1` resolve to one address here")
        #expect(report.warnings.filter { $0.message.contains("mqtt.broker") }.count == warned.count, "\(report)")
        // A broker on 443 and an https:// back end without a port: the same port.
        lines[lines.count - 2] = "  broker: 127.0.0.1:443"
        report = check(lines.joined(separator: "\n"))
        expectProblem(report, .warning, at: first + warned.count + 2, column(lines[first + warned.count + 1], "'http"),
                      "planner.backends[\(warned.count + 2)].base_url", "the same host and port as mqtt.broker (127.0.0.1:443)")
        #expect(report.warnings.filter { $0.message.contains("mqtt.broker") }.count == 1, "\(report)")
    }

    /// An IPv6 broker (`[::1]:8883`): a back end at `[::1]` warns as written, at
    /// `[0:0:0:0:0:0:0:1]` by its address; one at 127.0.0.1 is another peer.
    @Test func a_back_end_on_an_ipv6_brokers_address_is_a_warning_however_it_is_spelt() throws {
        var lines = Self.rover() + ["  - {name: goto, policy: route, timeout_s: 60, no_progress: none}", "planner:", "  backends:"]
        let first = lines.count + 1
        let warned = ["http://[::1]:8883/v1", "http://[0:0:0:0:0:0:0:1]:8883/v1"]
        let quiet = ["http://127.0.0.1:8883/v1", "http://[::2]:8883/v1"]
        for (i, url) in (warned + quiet).enumerated() {
            lines.append("    - {name: b\(i), base_url: '\(url)', model: m}")
        }
        lines += ["mqtt:", "  broker: '[::1]:8883'"]
        let report = check(lines.joined(separator: "\n"))
        #expect(report.errors.isEmpty, "\(report)")
        for i in warned.indices {
            expectProblem(report, .warning, at: first + i, column(lines[first + i - 1], "'http"), "planner.backends[\(i)].base_url",
                          "the same host and port as mqtt.broker ([::1]:8883)")
        }
        expectProblem(report, .warning, at: first + 1, column(lines[first], "'http"), "planner.backends[1].base_url",
                      "`0:0:0:0:0:0:0:1` and `[::1]` resolve to one address here")
        #expect(report.warnings.filter { $0.message.contains("mqtt.broker") }.count == warned.count, "\(report)")
    }

    /// A name that does not resolve where `check` runs, on the broker's port: whether it is the
    /// broker's host cannot be told, and the warning says so (the name may be the broker's on the
    /// robot). Only the same port is ever looked up: on another port such a name says nothing.
    @Test func a_back_end_name_that_does_not_resolve_on_the_brokers_port_is_a_warning_that_it_cannot_tell() throws {
        var lines = Self.rover() + ["  - {name: goto, policy: route, timeout_s: 60, no_progress: none}", "planner:", "  backends:"]
        let first = lines.count + 1
        // .invalid never resolves (RFC 6761); the final dot keeps the resolver's search domains out.
        lines += ["    - {name: far, base_url: 'http://robotd-check-test.invalid.:8883/v1', model: m}",
                  "    - {name: other, base_url: 'http://robotd-check-test.invalid.:8080/v1', model: m}",
                  "mqtt:", "  broker: 127.0.0.1:8883", "  ca_file: /etc/ca.pem"]
        let started = Date()
        let report = check(lines.joined(separator: "\n"))
        #expect(Date().timeIntervalSince(started) < 10, "a lookup is bounded (2 s)")
        #expect(report.errors.isEmpty, "\(report)")
        expectProblem(report, .warning, at: first, column(lines[first - 1], "'http"), "planner.backends[0].base_url",
                      "the same port as mqtt.broker (127.0.0.1:8883), and `robotd-check-test.invalid.` does not resolve here")
        #expect(report.warnings.filter { $0.message.contains("mqtt.broker") }.count == 1, "\(report)")
        // As a run loads its file: no name is looked up, and nothing is said of one.
        let run = check(lines.joined(separator: "\n"), lookUpNames: false)
        #expect(run.errors.isEmpty && !run.warnings.contains { $0.message.contains("mqtt.broker") }, "\(run)")
    }

    /// A moving ability's wheels without a planner envelope: a plan's speed would be bounded only by
    /// what every policy may do, and `speed_above_envelope` could never fire. An error.
    @Test func a_moving_ability_whose_wheels_have_no_planner_envelope_is_an_error() throws {
        var lines = Self.rover(envelopes: "") + ["  - {name: goto, policy: route, timeout_s: 60, no_progress: none}", "  - {name: stop}"]
        var report = check(lines.joined(separator: "\n"))
        #expect(report.configuration == nil)
        expectProblem(report, at: 18, column(lines[17], "route"), "abilities[0].policy",
                      "policy `route` drives `wl` and `wr` with no `envelopes.planner.max_velocity`")
        // One wheel with it, the other with only a teleop envelope: the other is named.
        lines = Self.rover(envelopes: "envelopes: {teleop: {max_velocity: 4}}, ") + ["  - {name: patrol, policy: route, timeout_s: 60, no_progress: none}"]
        lines[8] = lines[8].replacingOccurrences(of: "{teleop: {max_velocity: 4}}", with: "{planner: {max_velocity: 4}}")
        report = check(lines.joined(separator: "\n"))
        expectProblem(report, at: 18, column(lines[17], "route"), "abilities[0].policy", "policy `route` drives `wr` with no")
        // Abilities that do not move need none.
        report = check((Self.rover(envelopes: "") + ["  - {name: stop}", "  - {name: wait}"]).joined(separator: "\n"))
        #expect(report.errors.isEmpty, "\(report)")
    }

    /// The example rover has one, and a plan's speed above it is `speed_above_envelope`.
    @Test func the_example_rovers_planner_envelope_bounds_a_plans_speed() throws {
        let report = ConfigurationLoader.load(path: repositoryRoot.appendingPathComponent("examples/rover-sim.yaml").path, catalog: TestKinds.catalog)
        let configuration = try #require(report.configuration, "\(report)")
        let catalog = configuration.resolveAbilities().catalog
        guard case .number(let speed)? = catalog.ability(named: "goto")?.argument(named: "speed")?.shape else {
            Issue.record("no speed")
            return
        }
        // 10 rad/s × 0.05 m.
        #expect(speed.upper == Bound(0.5, .plannerEnvelope))
    }

    /// Times past the schema's maximum are refused by `robotd check`, with what is allowed: a
    /// configuration that passed check never makes a duration the runtime's clock cannot hold.
    @Test func planner_times_beyond_their_maximum_are_refused_by_robotd_check() throws {
        var lines = Self.rover() + [
            "  - {name: goto, policy: route, timeout_s: 1e300, no_progress: {min_progress: 0.05, time_s: 1e300}}",     // 18
            "planner:",                                                                                            // 19
            "  budget_ms: 1e300",                                                                                  // 20
            "  goals: {min_interval_ms: 1e300}",                                                                   // 21
            "  backends:",                                                                                         // 22
            "    - {name: far, base_url: 'http://127.0.0.1:8080/v1', model: m, deadline_ms: 1e300, breaker: {cool_down_ms: 1e300}}", // 23
        ]
        // robotd knows no `simulator` actuator kind (the unit tests' fixture).
        lines[15] = "  - {name: motors, kind: serial_frames, path: /dev/null, channels: {wl: {motor: 0}, wr: {motor: 1}}}"
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("robotd-check-huge-\(getpid()).yaml").path
        try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (status, output) = try CheckCommandTests().run(["--config", path])
        #expect(status != 0)
        func expectLine(_ line: Int, _ fragment: String, _ key: String, _ allowed: String) {
            let text = lines[line - 1]
            let place = "\(path):\(line):\(column(text, fragment))"
            #expect(output.contains(place) && output.contains(key) && output.contains(allowed), "no \(place) \(key) (\(allowed)) in:\n\(output)")
        }
        expectLine(18, "1e300,", "abilities[0].timeout_s", "in (0, 86400]")
        expectLine(18, "1e300}", "abilities[0].no_progress.time_s", "in (0, 86400]")
        expectLine(20, "1e300", "planner.budget_ms", "in (0, 3600000]")
        expectLine(21, "1e300", "planner.goals.min_interval_ms", "in 0…3600000")
        expectLine(23, "1e300,", "planner.backends[0].deadline_ms", "in (0, 3600000]")
        expectLine(23, "1e300}", "planner.backends[0].breaker.cool_down_ms", "in (0, 86400000]")
    }

    /// Zero is allowed, but it is a choice to see: no rate limit on goals, plans up to the edge.
    @Test func no_rate_limit_on_goals_and_no_clearance_are_warnings() {
        let lines = Self.rover() + [
            "  - {name: goto, policy: route, timeout_s: 60, no_progress: none}",    // 18
            "planner:",                                                             // 19
            "  clearance: 0",                                                       // 20
            "  goals: {min_interval_ms: 0}",                                        // 21
        ]
        let report = check(lines.joined(separator: "\n"))
        #expect(report.errors.isEmpty, "\(report)")
        expectProblem(report, .warning, at: 20, column(lines[19], "0"), "planner.clearance", "0: a plan may send the robot onto the workspace's very edge")
        expectProblem(report, .warning, at: 21, column(lines[20], "0}"), "planner.goals.min_interval_ms", "0: goals are not rate-limited")
        #expect(report.configuration?.planner.clearance == 0 && report.configuration?.planner.goals.minIntervalMs == 0)
    }

    @Test func planner_settings_without_abilities_are_a_warning() {
        let report = check(base(appending: ["planner: {max_steps: 3}"]))
        #expect(report.errors.isEmpty, "\(report)")
        expectProblem(report, .warning, at: 17, 1, "planner", "there are no `abilities`")
    }
}
