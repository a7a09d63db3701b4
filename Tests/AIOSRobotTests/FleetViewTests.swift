import Foundation
import Telemetry
import Testing
@testable import AIOSRobot

/// Payloads recorded from `robotd sim --world iot-rig` (mosquitto_sub -v; `deadlines` cut to two
/// tasks, `queues` to one), and the docs' recorded examples of a latch and a miss.
enum Recorded {
    static let online = "online"
    static let state = #"{"boot_id":"70a1ac7a-472f-4c11-8a52-b7ede99b608f","config_sha256":"c7a13259a26f1db905233f29e98e9914c384b4e30257fa4fedd05b8c670f3524","estop":{"active_causes":[],"latch_sequence":4242,"latched":false,"links_up":true,"refused_resets":0,"resets":0},"mode":"running","pid":17293,"robot_id":"iot-rig-sim","seq":2,"t_unix_s":1795666154.142051,"telemetry":{"connected":true,"dropped":0,"published":10,"queued":1},"uptime_s":1.022919,"version":"0.1.0"}"#
    static let latchedState = #"{"boot_id":"70a1ac7a-472f-4c11-8a52-b7ede99b608f","config_sha256":"c7a13259a26f1db905233f29e98e9914c384b4e30257fa4fedd05b8c670f3524","estop":{"active_causes":[],"latch_cause":"remote-stop","latch_sequence":4243,"latched":true,"links_up":true,"refused_resets":0,"resets":0},"mode":"stopped","pid":17293,"robot_id":"iot-rig-sim","seq":4,"t_unix_s":1795666168.145825,"telemetry":{"connected":true,"dropped":0,"published":59,"queued":1},"uptime_s":15.026693,"version":"0.1.0"}"#
    static let deadlines = #"{"level":"ok","miss_events":{"lost":0,"published":1,"suppressed":0},"seq":7,"t_unix_s":1795666160.120093,"tasks":[{"critical":true,"deadline_us":100000,"kind":"periodic","level":"ok","message":"1 releases, no miss","name":"thermostat","period_us":1000000,"priority":"high","since_start":{"completions":8,"deadline_faults":0,"dropped_late":0,"latency_samples_skipped":0,"miss_ratio":0,"misses":0,"releases":8,"response":{"count":8,"max_us":299.007,"p50_us":200.703,"p999_us":298.036,"p99_us":298.036},"skipped_releases":0,"stalls":0,"start_late":0,"start_latency":{"count":8,"max_us":188.415,"p50_us":68.095,"p999_us":187.84,"p99_us":187.84},"worst_lateness_us":-99701.964},"window":{"completions":1,"deadline_faults":0,"dropped_late":0,"latency_samples_skipped":0,"miss_ratio":0,"misses":0,"releases":1,"response":{"count":1,"max_us":248.831,"p50_us":248.035,"p999_us":248.035,"p99_us":248.035},"skipped_releases":0,"stalls":0,"start_late":0,"start_latency":{"count":1,"max_us":83.967,"p50_us":83.648,"p999_us":83.648,"p99_us":83.648},"worst_lateness_us":-99751.965}},{"critical":true,"deadline_us":100000,"kind":"periodic","level":"ok","message":"10 releases, no miss","name":"guard","period_us":100000,"priority":"high","since_start":{"completions":71,"deadline_faults":0,"dropped_late":0,"latency_samples_skipped":0,"miss_ratio":0,"misses":0,"releases":71,"response":{"count":71,"max_us":387.071,"p50_us":158.719,"p999_us":386.271,"p99_us":386.271},"skipped_releases":0,"stalls":0,"start_late":0,"start_latency":{"count":71,"max_us":319.487,"p50_us":66.047,"p999_us":317.943,"p99_us":317.943},"worst_lateness_us":-99613.729},"window":{"completions":10,"deadline_faults":0,"dropped_late":0,"latency_samples_skipped":0,"miss_ratio":0,"misses":0,"releases":10,"response":{"count":10,"max_us":307.199,"p50_us":147.455,"p999_us":305.331,"p99_us":305.331},"skipped_releases":0,"stalls":0,"start_late":0,"start_latency":{"count":10,"max_us":262.143,"p50_us":60.415,"p999_us":261.89,"p99_us":261.89},"worst_lateness_us":-99694.669}}],"telemetry":{"connected":true,"dropped":0,"published":26,"queued":0},"uptime_s":7.00096,"window_s":1.000071}"#
    static let queues = #"{"queues":[{"capacity":4,"depth":0,"dropped":0,"high_water":1,"overflow":"keep-latest-per-key","produced":14,"rejected":0,"source":"chamber_temperature/temperature","window":{"dropped":0,"produced":2,"rejected":0}}],"seq":7,"t_unix_s":1795666160.120093,"window_s":1.000071}"#
    static let inputs = #"{"inputs":[{"kind":"mqtt","link":"up","name":"chamber_temperature","since_last_us":93889.518,"since_start":{"gaps":0,"messages":14,"rejected":0},"window":{"gaps":0,"max_interval_us":500375.667,"messages":2,"rate_hz":2}}],"seq":7,"t_unix_s":1795666160.120093,"window_s":1.000071}"#
    static let latched = #"{"at_s":3.938127,"at_unix_s":1795664560.926305,"category":1,"causes":[],"fault":"remote-stop","kind":"latched","seq":6,"suppressed":0,"t_unix_s":1795664561.991146}"#
    static let summary = #"{"at_s":16.000094,"at_unix_s":1795666169.119226,"category":1,"causes":[],"channel":"heater","count":1,"fault":"remote-stop","first_at_s":16.000094,"kind":"summary","last_at_s":16.000094,"origin":"policy","requested":1,"seq":10,"summary_of":"refused-while-stopped","suppressed":0,"t_unix_s":1795666169.120017}"#
    static let miss = #"{"deadline_unix_s":1795664556.907349,"kind":"finish-late","lateness_us":80948.009,"release_s":-0.085829,"release_unix_s":1795664556.902349,"seq":1,"suppressed":0,"t_unix_s":1795664556.988297,"task":"actuator-reactivation"}"#
}

/// `robotd monitor`'s model and screen, fed recorded payloads on a clock of the test's.
@Suite("robotd monitor: the fleet view and its screen")
struct FleetViewTests {
    /// A view with one robot that sent everything once at t = 100 s.
    func rig(id: String = "iot-rig-sim", state: String = Recorded.state, deadlines: String = Recorded.deadlines,
             into view: inout FleetView, at t: Double = 100) {
        for (topic, payload) in [("status", Recorded.online), ("state", state), ("deadlines", deadlines),
                                 ("queues", Recorded.queues), ("inputs", Recorded.inputs)] {
            let accepted = view.receive(topic: "robotd/\(id)/\(topic)", payload: Array(payload.utf8), retained: false, at: t)
            #expect(accepted, "\(topic)")
        }
    }

    func lines(_ view: FleetView, width: Int = 120) -> [String] {
        FleetScreen.render(view, width: width).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    /// The row of a task in the task table (its name first, after the indent).
    func row(_ task: String, in lines: [String]) -> String? { lines.first { $0.hasPrefix("  \(task) ") } }

    @Test func when_a_robot_reports_expect_its_header_tasks_queues_and_inputs_on_screen() throws {
        var view = FleetView(settings: .init(), broker: "127.0.0.1:1883", now: 100)
        view.link = .connected
        rig(into: &view)
        view.advance(to: 100.4)
        let screen = lines(view)
        #expect(screen[0].contains("127.0.0.1:1883 connected") && screen[0].contains("1 robot"))
        let header = try #require(screen.first { $0.hasPrefix("iot-rig-sim ") })
        for part in ["online", "mode running", "uptime 7.00 s", "telemetry drops 0", "last message 0.40 s ago"] {
            #expect(header.contains(part), "\(part) not in \(header)")
        }
        #expect(!header.contains("STALE"))
        #expect(screen.contains("  e-stop: not latched; no stop cause present; resets 0, refused 0"))
        // Rate = window releases / window; p99 = the window's response p99; misses window/since start.
        let guardRow = try #require(row("guard", in: screen))
        #expect(guardRow.split(separator: " ").map(String.init).starts(with: ["guard", "10.0", "305.3", "0/0", "ok"]), "\(guardRow)")
        let thermostat = try #require(row("thermostat", in: screen))
        #expect(thermostat.split(separator: " ").map(String.init).starts(with: ["thermostat", "1.0", "248.0", "0/0", "ok"]), "\(thermostat)")
        let queue = try #require(row("chamber_temperature/temperature", in: screen))
        #expect(queue.split(separator: " ").map(String.init) == ["chamber_temperature/temperature", "0", "1", "4", "0", "0", "keep-latest-per-key"])
        let input = try #require(row("chamber_temperature", in: screen))
        #expect(input.split(separator: " ").map(String.init) == ["chamber_temperature", "mqtt", "2.0", "0", "0", "up", "0.09", "s", "ago"])
        #expect(screen.contains("  safety events: none since the monitor started"))
        #expect(view.isComplete && view.isSettled)
    }

    @Test func when_a_task_misses_expect_the_miss_and_its_level_in_its_row() throws {
        var payload = try TelemetryJSON.decode(DeadlinesPayload.self, from: Array(Recorded.deadlines.utf8))
        let index = try #require(payload.tasks.firstIndex { $0.name == "thermostat" })
        payload.tasks[index].window.misses = 1
        payload.tasks[index].sinceStart.misses = 3
        payload.tasks[index].level = .warn
        payload.tasks[index].message = "1 of 1 releases missed (100.0 %)"
        var view = FleetView(settings: .init(), now: 100)
        rig(deadlines: String(decoding: TelemetryJSON.encode(payload), as: UTF8.self), into: &view)
        view.receive(topic: "robotd/iot-rig-sim/deadlines/miss", payload: Array(Recorded.miss.utf8), retained: false, at: 100.1)
        let screen = lines(view)
        let thermostat = try #require(row("thermostat", in: screen))
        #expect(thermostat.split(separator: " ").map(String.init).starts(with: ["thermostat", "1.0", "248.0", "1/3", "warn", "1", "of", "1"]), "\(thermostat)")
        #expect(row("guard", in: screen)?.contains(" 0/0 ") == true)
        #expect(screen.contains { $0.hasPrefix("  last miss: actuator-reactivation finish-late, 80948 µs late at -0.09 s (1 miss event seen)") },
                "\(screen.joined(separator: "\n"))")
    }

    @Test func when_a_robot_is_latched_expect_the_latch_cause_and_the_causes_present_in_words() throws {
        // The latch, then a summary of the commands refused while stopped every second: the
        // summaries fold into one, so the latch stays among the latest events (2 kept here).
        var summary = try TelemetryJSON.decode(SafetyEvent.self, from: Array(Recorded.summary.utf8))
        var events = [Array(Recorded.latched.utf8)]
        for second in 16...19 {
            summary.record.atS = Double(second)
            summary.record.firstAtS = Double(second)
            events.append(TelemetryJSON.encode(summary))
        }
        var view = FleetView(settings: .init(recentEvents: 2), now: 100)
        rig(state: Recorded.latchedState, into: &view)
        for event in events {
            let accepted = view.receive(topic: "robotd/iot-rig-sim/safety", payload: event, retained: false, at: 100.2)
            #expect(accepted)
        }
        var screen = lines(view)
        #expect(screen.first { $0.hasPrefix("iot-rig-sim ") }?.contains("mode stopped") == true)
        #expect(screen.contains("  e-stop: LATCHED by remote stop (MQTT); no stop cause present now (a reset can release it); resets 0, refused 0"))
        // The latest first, at the robot's uptime, with the cause in words.
        let title = try #require(screen.firstIndex { $0.hasPrefix("  SAFETY: the latest (5 events since the monitor started") }, "\(screen)")
        #expect(screen[title + 2].split(separator: " ").map(String.init)
                == ["19.00", "s", "summary", "refused-while-stopped", "×4", "since", "16.00", "s;", "remote", "stop", "(MQTT);", "on", "heater"])
        #expect(screen[title + 3].split(separator: " ").map(String.init) == ["3.94", "s", "latched", "remote", "stop", "(MQTT)"])
        #expect(screen.count == title + 4)

        // A cause still present refuses a reset: said, in words.
        var state = try TelemetryJSON.decode(StatePayload.self, from: Array(Recorded.latchedState.utf8))
        state.estop.activeCauses = ["silent-sensor", "connection-lost"]
        view.receive(topic: "robotd/iot-rig-sim/state", payload: TelemetryJSON.encode(state), retained: false, at: 100.3)
        screen = lines(view, width: 200)
        #expect(screen.contains { $0.contains("stop causes present now: silent sensor (never reported), connection lost (each refuses a reset)") })
    }

    @Test func when_deadlines_stop_coming_expect_the_robot_and_its_tasks_stale() throws {
        var view = FleetView(settings: .init(), now: 100)
        rig(into: &view)
        view.advance(to: 102.9)  // under 3 intervals of 1 s
        #expect(!view.isStale(try #require(view.robots["iot-rig-sim"])))
        #expect(row("guard", in: lines(view))?.contains(" ok ") == true)
        view.advance(to: 103.2)
        #expect(view.isStale(try #require(view.robots["iot-rig-sim"])))
        let screen = lines(view)
        let header = try #require(screen.first { $0.hasPrefix("iot-rig-sim ") })
        #expect(header.contains("STALE: no deadlines for 3.20 s (interval 1.00 s)"), "\(header)")
        #expect(header.contains("last message 3.20 s ago"))
        for task in ["thermostat", "guard"] {
            let r = try #require(row(task, in: screen))
            #expect(r.contains(" stale  no deadlines for 3.20 s"), "\(r)")
        }

        // A retained `deadlines` is history: stale 3 intervals after the monitor first heard of the robot.
        var replayed = FleetView(settings: .init(), now: 50)
        replayed.receive(topic: "robotd/old/deadlines", payload: Array(Recorded.deadlines.utf8), retained: true, at: 50)
        #expect(!replayed.isStale(try #require(replayed.robots["old"])))
        replayed.advance(to: 53.1)
        #expect(replayed.isStale(try #require(replayed.robots["old"])))
        #expect(FleetScreen.render(replayed, width: 120).contains("STALE: no deadlines for 3.10 s"))
    }

    @Test func when_payloads_are_garbage_expect_them_counted_and_shown_and_the_last_good_values_kept() throws {
        var view = FleetView(settings: .init(), now: 100)
        rig(into: &view)
        let garbage: [(String, [UInt8])] = [
            ("deadlines", Array("not json at all".utf8)),
            ("state", Array(#"{"seq":1}"#.utf8)),
            ("queues", Array(#"{"queues":[{"source":"x"}],"seq":1,"t_unix_s":1,"window_s":1}"#.utf8)),
            ("inputs", [0xFF, 0xFE, 0x00, 0x7B]),
            ("status", Array("maybe".utf8)),
            ("safety", Array(#"{"kind":3}"#.utf8)),
            ("deadlines/miss", Array("[]".utf8)),
        ]
        for (topic, payload) in garbage {
            let accepted = view.receive(topic: "robotd/iot-rig-sim/\(topic)", payload: payload, retained: false, at: 100.5)
            #expect(!accepted, "\(topic)")
        }
        let robot = try #require(view.robots["iot-rig-sim"])
        #expect(robot.badPayloads == UInt64(garbage.count))
        #expect(robot.messages == 5)
        #expect(robot.lastBadPayload?.topic == "deadlines/miss")
        #expect(robot.status == "online" && robot.state?.mode == "running" && robot.deadlines?.seq == 7 && robot.queues != nil)
        #expect(robot.safetyRecent.isEmpty && robot.missRecent.isEmpty)
        let screen = FleetScreen.render(view, width: 300)
        #expect(screen.contains("bad payloads 7"))
        #expect(screen.contains("bad payloads 7 (last: deadlines/miss: not a JSON object)"), "\(screen)")

        // Each refusal says why, in words, with the wire's key names.
        func reason(_ topic: String, _ text: String) -> String? {
            var v = FleetView(settings: .init())
            v.receive(topic: "robotd/r/\(topic)", payload: Array(text.utf8), retained: false, at: 1)
            return v.robots["r"]?.lastBadPayload?.reason
        }
        #expect(reason("deadlines", "not json at all") == "not JSON")
        #expect(reason("state", #"{"seq":1}"#) == "missing key `t_unix_s`")
        #expect(reason("queues", #"{"queues":[{"source":"x"}],"seq":1,"t_unix_s":1,"window_s":1}"#) == "missing key `capacity` in `queues[0]`")
        #expect(reason("status", "maybe") == "`maybe` is neither online nor offline")
        #expect(reason("state", #"{"seq":"one"}"#) == "`seq` is not a UInt64")
    }

    @Test func when_one_robot_is_selected_expect_others_and_other_topics_ignored() throws {
        var view = FleetView(settings: .init(robotID: "rig-2"), now: 0)
        rig(id: "rig-2", into: &view, at: 0)
        let ignored = [view.receive(topic: "robotd/rig-1/state", payload: Array(Recorded.state.utf8), retained: true, at: 0),
                       view.receive(topic: "robotd/rig-2/audit", payload: Array("{}".utf8), retained: false, at: 0),
                       view.receive(topic: "robotd/rig-2/estop", payload: Array("stop".utf8), retained: false, at: 0),
                       view.receive(topic: "other/rig-2/state", payload: Array(Recorded.state.utf8), retained: false, at: 0)]
        #expect(ignored == [false, false, false, false])
        #expect(view.robots.keys.sorted() == ["rig-2"])
        #expect(view.robots["rig-2"]?.badPayloads == 0)
        #expect(FleetView.subscriptions(view.settings).contains("robotd/rig-2/deadlines/miss"))
        #expect(FleetView.subscriptions(.init()).allSatisfy { $0.hasPrefix("robotd/+/") })
    }

    @Test func when_robots_report_in_turn_expect_complete_only_when_each_has_state_and_deadlines_or_is_offline() {
        var view = FleetView(settings: .init(), now: 0)
        #expect(!view.isComplete)  // no robot yet
        view.receive(topic: "robotd/a/status", payload: Array("online".utf8), retained: true, at: 0)
        view.receive(topic: "robotd/a/state", payload: Array(Recorded.state.utf8), retained: true, at: 0)
        #expect(!view.isComplete)
        view.receive(topic: "robotd/gone/status", payload: Array("offline".utf8), retained: true, at: 0)
        view.receive(topic: "robotd/a/deadlines", payload: Array(Recorded.deadlines.utf8), retained: false, at: 0.5)
        #expect(view.isComplete)  // the offline robot sends nothing more: it does not hold the snapshot up
        #expect(!view.isSettled)  // a's queues and inputs are still to come
        var named = FleetView(settings: .init(robotID: "b"), now: 0)
        named.receive(topic: "robotd/b/state", payload: Array(Recorded.state.utf8), retained: true, at: 0)
        #expect(!named.isComplete)
    }

    @Test func when_deadlines_seq_jumps_expect_gaps_counted_but_not_across_a_restart() throws {
        var payload = try TelemetryJSON.decode(DeadlinesPayload.self, from: Array(Recorded.deadlines.utf8))
        var view = FleetView(settings: .init(), now: 0)
        for (i, seq) in [7, 8, 11, 1, 2].enumerated() {
            payload.seq = UInt64(seq)
            view.receive(topic: "robotd/r/deadlines", payload: TelemetryJSON.encode(payload), retained: false, at: Double(i))
        }
        #expect(view.robots["r"]?.deadlinesGaps == 2)
    }

    @Test func when_the_snapshot_is_printed_expect_the_payloads_as_on_their_topics_and_nulls_for_what_is_missing() throws {
        var view = FleetView(settings: .init(), now: 100)
        rig(into: &view)
        view.receive(topic: "robotd/iot-rig-sim/safety", payload: Array(Recorded.latched.utf8), retained: false, at: 100.1)
        view.receive(topic: "robotd/quiet/status", payload: Array("offline".utf8), retained: true, at: 100.2)
        view.advance(to: 101)
        let json = FleetSnapshot(view).json
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let robots = try #require(object["robots"] as? [[String: Any]])
        #expect(robots.map { $0["id"] as? String } == ["iot-rig-sim", "quiet"])
        let rig = robots[0]
        #expect(rig["status"] as? String == "online")
        #expect(rig["stale"] as? Bool == false)
        #expect(rig["last_message_age_s"] as? Double == 0.9)
        #expect(rig["bad_payloads"] as? Int == 0)
        // Each payload as its topic carries it: it decodes as that topic's type, equal to what was received.
        let deadlines = try JSONSerialization.data(withJSONObject: try #require(rig["deadlines"]))
        #expect(try TelemetryJSON.decode(DeadlinesPayload.self, from: Array(deadlines)) == view.robots["iot-rig-sim"]?.deadlines)
        let safety = try #require(rig["safety_recent"] as? [[String: Any]])
        #expect(safety.count == 1 && safety[0]["kind"] as? String == "latched" && safety[0]["fault"] as? String == "remote-stop")
        #expect((rig["state"] as? [String: Any])?["mode"] as? String == "running")
        // A robot that said only `offline`: its unknowns are nulls, not absent keys.
        let quiet = robots[1]
        for key in ["state", "deadlines", "queues", "inputs", "last_bad_payload"] { #expect(quiet[key] is NSNull, "\(key)") }
        #expect(quiet["status"] as? String == "offline")
    }

    @Test func when_the_terminal_is_small_expect_lines_cut_to_its_width_and_the_rest_counted() {
        var view = FleetView(settings: .init(), broker: "127.0.0.1:1883", now: 100)
        for id in ["a", "b", "c"] { rig(id: id, into: &view) }
        let full = FleetScreen.render(view, width: 0).split(separator: "\n", omittingEmptySubsequences: false).count
        let screen = FleetScreen.render(view, width: 40, height: 20).split(separator: "\n", omittingEmptySubsequences: false)
        #expect(screen.count == 20)
        #expect(screen.allSatisfy { $0.count <= 40 })
        #expect(screen.last?.hasPrefix("… \(full - 19) more lines") == true, "\(screen.last ?? "")")
        // Nothing waiting: it says what it waits for.
        let empty = FleetScreen.render(FleetView(settings: .init(robotID: "rover-1")), width: 100)
        #expect(empty.contains("waiting for robot rover-1 under robotd/rover-1/"))
        var down = FleetView(settings: .init(), broker: "127.0.0.1:9")
        down.link = .down("connection refused")
        #expect(FleetScreen.render(down, width: 100).hasPrefix("robotd monitor  127.0.0.1:9 NOT CONNECTED: connection refused (retrying)"))
    }

    /// A rover with abilities: `state.plan` says where the plan stands (retained), the `plan`
    /// messages seen say whose goal it is and what the planner made of it. What users and models
    /// wrote reaches the screen escaped.
    @Test func when_a_plan_runs_expect_its_step_its_goal_its_back_ends_and_refusals_on_screen_escaped() throws {
        var view = FleetView(settings: .init(), now: 100)
        var state = try TelemetryJSON.decode(StatePayload.self, from: Array(Recorded.state.utf8))
        state.plan = .init(goalId: 2, planGoalId: 2, state: "running", step: 2, stepCount: 3, ability: "goto", reason: nil, remaining: 1.25)
        rig(id: "rover", state: String(decoding: TelemetryJSON.encode(state), as: UTF8.self), into: &view)
        let plan = [
            #"{"goal_id":2,"kind":"goal","outcome":"accepted","seq":1,"source":"mqtt","t_unix_s":1,"text":"patrol\u001b[2J the corners","user":"operator"}"#,
            #"{"accepted":false,"backend":"llm","goal_id":2,"issues":[{"code":"unknown_ability","message":"x","path":"steps[0]"}],"kind":"verdict","round":0,"seq":2,"t_unix_s":1}"#,
            #"{"backend":"builtin","goal_id":2,"kind":"plan","latency_us":412,"seq":3,"steps":[{"ability":"goto","arguments":{"x":1,"y":2}}],"t_unix_s":1}"#,
            #"{"ability":"goto","event":"step_started","goal_id":2,"kind":"progress","seq":5,"step":1,"step_count":3,"t_unix_s":2}"#,
            #"{"kind":"goal","outcome":"refused","reason":"not_authorised","seq":6,"source":"mqtt","t_unix_s":3,"text":"go\nplanner: goal 9 completed","user":"mallory"}"#,
            #"{"backends":[{"accepted":1,"answers":2,"breaker":"open","breaker_opened":1,"consecutive_failures":3,"failures":3,"name":"llm","rejected":1,"requests":2,"skipped":0},{"accepted":1,"answers":1,"breaker":"closed","breaker_opened":0,"consecutive_failures":0,"failures":0,"name":"builtin","rejected":0,"requests":1,"skipped":0}],"goals_dropped":4,"goals_refused":1,"kind":"health","requests_in_flight":0,"seq":7,"t_unix_s":4}"#,
        ]
        for message in plan {
            let accepted = view.receive(topic: "robotd/rover/plan", payload: Array(message.utf8), retained: false, at: 100.1)
            #expect(accepted, "\(message)")
        }
        let screen = lines(view, width: 400)
        let line = try #require(screen.first { $0.hasPrefix("  plan: ") }, "\(screen)")
        #expect(line.contains("goal 2 running step 2/3 goto (1.25 left)") && line.contains("back ends llm OPEN, builtin ok"), "\(line)")
        #expect(line.contains("goals dropped 4") && line.contains("plan messages missed 1"), "\(line)")  // seq 4 never came
        #expect(screen.contains(#"    goal 2 from operator: "patrol\u{1B}[2J the corners" — step 2/3 goto"#), "\(screen)")
        #expect(screen.contains { $0.hasPrefix("    last refused: ") && $0.contains(#"go\nplanner: goal 9 completed"#) && $0.contains("mallory") })
        #expect(screen.allSatisfy { !$0.contains("\u{1B}") })
        // The plan ended: its reason; a newer goal not executing is said too.
        state.plan = .init(goalId: 3, planGoalId: 2, state: "failed", step: 2, stepCount: 3, ability: "goto", reason: "no_progress", remaining: 0.4)
        view.receive(topic: "robotd/rover/state", payload: TelemetryJSON.encode(state), retained: false, at: 101)
        let ended = try #require(lines(view, width: 400).first { $0.hasPrefix("  plan: ") })
        #expect(ended.contains("goal 2 failed step 2/3 goto: no_progress; goal 3 newer, not executing"), "\(ended)")
        // The snapshot carries both: state.plan as on the topic, and the plan messages folded.
        let object = try #require(try JSONSerialization.jsonObject(with: Data(FleetSnapshot(view).json.utf8)) as? [String: Any])
        let robot = try #require((object["robots"] as? [[String: Any]])?.first)
        #expect(((robot["state"] as? [String: Any])?["plan"] as? [String: Any])?["reason"] as? String == "no_progress")
        let activity = try #require(robot["plan_activity"] as? [String: Any])
        #expect((activity["goals"] as? [[String: Any]])?.first?["from"] as? String == "operator")
        #expect((activity["breakers"] as? [[String: Any]])?.map { $0["breaker"] as? String } == ["open", "closed"])
        // A robot without abilities sends neither: no plan line at all.
        var plain = FleetView(settings: .init(), now: 100)
        rig(into: &plain)
        #expect(!lines(plain).contains { $0.contains("plan:") })
    }

    @Test func every_stop_cause_has_words() {
        #expect(StopCauseWords.words("remote-stop") == "remote stop (MQTT)")
        #expect(StopCauseWords.words("something-new") == "something-new")  // a newer robotd's cause: shown as sent
    }
}
