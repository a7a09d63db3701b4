import Foundation
import Glibc
import Histogram
import PlannerBackends
import RTScheduler
import RobotConfig
import RobotSim
import Testing
import TestSupport
@testable import AIOSRobot

extension PlanningRealTimeTests {
/// Issue 11 §4, reasoning never delays control: the daemon as `robotd run` runs it (the rover's
/// example, checked as `robotd check` would, against the real-time simulator), its planner on the
/// async lane pointed at two scripted back ends of scripts/peers/openai_peer.py — one that
/// accepts the connection and never answers, one that streams an endless body. One run in three
/// cycles of three phases: no planning; goals every 500 ms to the hanging back end, until its
/// breaker opens (and again after each cool-down's probe); goals every 500 ms to the flooding
/// back end, whose bodies the response cap cuts. The control tasks keep the deadline figures of the
/// phases without planning (median of 3 of each), and no critical task misses a deadline.
@Suite("Planner isolation: a hanging or flooding model never delays control", .serialized)
struct PlannerIsolationTests {
    struct Figures: CustomStringConvertible {
        var responseP50: Double
        var responseP99: Double
        var startP99: Double
        var samples: UInt64
        /// Every critical task's misses (not only the control tasks').
        var criticalMisses: UInt64
        var description: String {
            String(format: "p50 %.1f µs, p99 %.1f µs, start p99 %.1f µs over %d jobs, %d critical misses",
                   responseP50, responseP99, startP99, Int(samples), Int(criticalMisses))
        }
    }

    /// The control tasks: the rover's three policies and the guard (all critical, 20 ms and 10 ms).
    static let controlTasks = ["teleop", "wander", "route", "guard"]

    /// The control tasks' latencies pooled since start (cumulative: read twice and subtracted,
    /// as `TelemetryIsolationTests` does).
    struct Totals {
        var response = TelemetryIsolationTests.histogram()
        var start = TelemetryIsolationTests.histogram()
        var criticalMisses: UInt64 = 0

        init(_ scheduler: Scheduler) {
            for task in scheduler.snapshot().tasks {
                if task.critical { criticalMisses += task.misses }
                guard controlTasks.contains(task.name) else { continue }
                let statistics = scheduler.statistics(for: task.id)
                response.add(statistics.responseTime.histogram())
                start.add(statistics.startLatency.histogram())
            }
        }

        func figures(since earlier: Totals) -> Figures {
            let interval = TelemetryIsolationTests.Totals.interval
            let response = interval(self.response, earlier.response), start = interval(self.start, earlier.start)
            return Figures(responseP50: Double(response.valueAtPercentile(50)) / 1000, responseP99: Double(response.valueAtPercentile(99)) / 1000,
                           startP99: Double(start.valueAtPercentile(99)) / 1000, samples: response.totalCount,
                           criticalMisses: criticalMisses - earlier.criticalMisses)
        }
    }

    static let phase = Duration.seconds(5)
    static let goalEvery = Duration.milliseconds(500)

    @Test func when_the_model_hangs_or_streams_an_endless_body_expect_the_control_tasks_deadline_figures_of_a_run_without_planning() async throws {
        let directory = try temporaryDirectory("robotd-planner-isolation")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let peer = try await ModelPeer.start(["hang": ["mode": "hang"], "endless": ["mode": "endless"]])
        var simOptions = SimulatorRunner.Options()
        simOptions.roverLinkPath = directory + "/rover"
        simOptions.gamepadFIFO = directory + "/gamepad"
        simOptions.fifoPriority = geteuid() == 0 ? 60 : nil
        let sim = try SimulatorRunner(options: simOptions)
        try sim.start()
        defer { sim.stop() }
        // Routing by goal kind sends "go to" goals to the hanging back end only and "patrol" goals to
        // the flooding one only. No built-in planner: no plan ever runs, so wander drives the rover
        // in every phase and the control tasks do the same work throughout. The hanging back end's
        // breaker opens after 3 timeouts and probes again after 1 s; the flooding one's never opens
        // within this run: its bodies are cut by the cap (256 KiB by default), and robotd resets each
        // cut connection at once (docs/planner-backends.md, "Teardown"): the peer sees it closed,
        // long before its own 1 GiB bound.
        let base = peer.baseURL.absoluteString
        let plannerSection = """
              builtin: false
              goals: {min_interval_ms: 400}
              backends:
                - {name: hang, base_url: "\(base)", model: hang, deadline_ms: 300, goal_kinds: [goto],
                   breaker: {failure_threshold: 3, cool_down_ms: 1000}}
                - {name: endless, base_url: "\(base)", model: endless, deadline_ms: 2000, goal_kinds: [patrol],
                   breaker: {failure_threshold: 100, cool_down_ms: 1000}}
            """
        // Generous link and sensor bounds, as PlanningOverMQTTTests has them: other work on this
        // shared 2-core VM has been seen to hold the rover's frames back for over 250 ms, and a stop
        // latched for that would end wander's driving and make the phases unlike each other.
        let yaml = try Examples.text("rover-sim.yaml").replacingOccurrences(of: "/tmp/robotd-sim/", with: directory + "/")
            .replacingOccurrences(of: "link_timeout_ms: 150", with: "link_timeout_ms: 1000")
            .replacingOccurrences(of: "max_age_ms: 250", with: "max_age_ms: 1000")
            .replacingOccurrences(of: "max_age_ms: 200", with: "max_age_ms: 1000")
            .split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.hasPrefix("  builtin: true") ? plannerSection : String($0) }.joined(separator: "\n")
        let report = ConfigurationLoader.load(text: yaml, file: directory + "/rover-sim.yaml", catalog: RobotKinds.catalog)
        let configuration = try #require(report.configuration, "\(report)")
        #expect(configuration.planner.backends.map(\.name) == ["hang", "endless"] && !configuration.planner.builtin)
        #expect(configuration.inputs[0].settings["link_timeout_ms"] == .number(1000))
        let daemon = try RobotDaemon(configuration: configuration) { _ in }
        try daemon.start()
        defer { daemon.stop(reason: "test") }
        let planner = try #require(daemon.planner)
        func latch() -> String {
            "latched: \(daemon.runtime.status.latchCause.map { "\($0)" } ?? "-"), causes \(daemon.runtime.status.causes); "
                + "\(daemon.runtime.audit.recent().filter { $0.kind == .latched || $0.kind == .fault }.suffix(4))"
        }
        #expect(await eventually { daemon.runtime.status.pose.x.isFinite })
        try await Task.sleep(for: .seconds(1))
        try #require(!daemon.runtime.isLatched, "\(latch())")

        func health(_ name: String) -> BackendHealthFigures {
            BackendHealthFigures(planner.health().first { $0.name == name })
        }
        func requests(_ model: String) -> [Int] {
            peer.requests.filter { $0["model"] as? String == model }.compactMap { $0["n"] as? Int }
        }
        func ended() -> [Int: [String: Any]] {
            Dictionary(peer.process.jsonLines.filter { $0["event"] as? String == "ended" }.compactMap { e in (e["n"] as? Int).map { ($0, e) } },
                       uniquingKeysWith: { a, _ in a })
        }
        /// Gives `goal` every 500 ms for one phase; returns the goals taken.
        func give(_ goal: String) async -> [UInt64] {
            let clock = ContinuousClock(), end = clock.now + Self.phase
            var taken: [UInt64] = []
            var refusedOnce = false
            while clock.now < end {
                let decision = planner.submit(goal)
                if case .accepted(let id) = decision { taken.append(id) } else {
                    // Once a phase: what latched says whether the load on the machine (a starved
                    // simulator) or robotd did it.
                    if !refusedOnce { Issue.record("goal \(goal) not taken: \(decision); \(latch())") }
                    refusedOnce = true
                }
                try? await Task.sleep(for: Self.goalEvery)
            }
            return taken
        }
        /// After a phase with planning: its last goal's request over (a `planning_failed`), the
        /// dispatch thread told of it, and every request the peer received ended — nothing of it
        /// left running into the next phase.
        func settle(_ taken: [UInt64]) async {
            let last = taken.last ?? 0
            #expect(await eventually(seconds: 30) { planner.journal.all.contains { $0.kind == .planningFailed && $0.goalId == last } },
                    "goal \(last) never ended: \(planner.journal.all.suffix(6).map(\.line))")
            #expect(await eventually(seconds: 10) { daemon.runtime.planning?.status.goalID == last })
            #expect(await eventually(seconds: 90) {
                let e = ended()
                return peer.requests.allSatisfy { ($0["n"] as? Int).map { e[$0] != nil } ?? false }
            }, "a request to the peer still runs: \(peer.requests.count) received, \(ended().count) ended")
            try? await Task.sleep(for: .milliseconds(500))
        }

        let totals = { Totals(daemon.scheduler) }
        var quiet: [Figures] = [], hanging: [Figures] = [], flooding: [Figures] = []
        var cuts: [String] = []
        for _ in 0..<3 {
            // (a) No planning: nothing asked of any back end.
            let asked = peer.requests.count
            let quietStart = totals()
            try await Task.sleep(for: Self.phase)
            quiet.append(totals().figures(since: quietStart))
            #expect(peer.requests.count == asked)

            // (b) The hanging back end: each goal times out after 300 ms, the breaker opens.
            var seq = planner.journal.all.last?.seq ?? 0
            let opened = health("hang").opened
            let hangStart = totals()
            let hangGoals = await give("go to -3,0")
            hanging.append(totals().figures(since: hangStart))
            await settle(hangGoals)
            var entries = planner.journal.messages(after: seq)
            #expect(health("hang").opened > opened, "the hanging back end's breaker never opened: \(health("hang"))")
            // The plan topic's health said so while it happened.
            #expect(entries.contains { $0.kind == .health && $0.backends?.contains { $0.name == "hang" && $0.breaker == "open" } == true })
            #expect(entries.contains { $0.kind == .planningFailed && $0.reason?.contains("hang failed: no answer within the deadline (300 ms)") == true },
                    "\(entries.filter { $0.kind == .planningFailed }.map(\.line))")
            // While open, goals are not sent to it.
            #expect(entries.contains { $0.kind == .planningFailed
                    && $0.attempts?.contains { $0.backend == "hang" && $0.outcome == "skipped" && $0.detail?.contains("breakerOpen") == true } == true })

            // (c) The endless body: each one cut at the cap.
            seq = planner.journal.all.last?.seq ?? 0
            let before = health("endless").tooLarge, floodsBefore = Set(requests("endless"))
            let floodStart = totals()
            let floodGoals = await give("patrol the corners")
            flooding.append(totals().figures(since: floodStart))
            await settle(floodGoals)
            entries = planner.journal.messages(after: seq)
            #expect(health("endless").tooLarge > before, "no body cut at the cap: \(health("endless"))")
            let cut = entries.filter { $0.kind == .planningFailed && $0.reason?.contains("endless failed: response larger than 262144 bytes") == true }
            #expect(!cut.isEmpty, "\(entries.filter { $0.kind == .planningFailed }.map(\.line))")
            let floods = requests("endless").filter { !floodsBefore.contains($0) }
            #expect(!floods.isEmpty)
            let e = ended()
            let sent = floods.compactMap { e[$0]?["bytes_sent"] as? Int }, lasted = floods.compactMap { e[$0]?["seconds"] as? Double }
            let closed = floods.filter { e[$0]?["client_closed"] as? Bool == true }.count
            cuts.append("\(floods.count) floods, \(cut.count) cut (\(cut.first?.reason ?? "-")); peer sent up to \((sent.max() ?? 0) >> 20) MiB, "
                        + "for up to \(lasted.max() ?? 0) s; \(closed) closed by robotd, the rest at the peer's bound; \(floodGoals.count) goals")
            // Each cut connection reset by robotd, not read on until the peer's bound (review
            // finding Medium 5: before, 1 of 2, 4 of 5, 3 of 4 in one run, the peer sending 1 GiB).
            #expect(closed == floods.count, "\(cuts.last ?? "")")
            #expect(sent.allSatisfy { $0 < 64 << 20 }, "\(cuts.last ?? "")")
        }
        print("no planning: \(quiet.map(\.description))\nhanging model: \(hanging.map(\.description))\nendless body: \(flooding.map(\.description))\n\(cuts.joined(separator: "\n"))")
        print("hang: \(health("hang")); endless: \(health("endless"))")
        #expect(!daemon.runtime.isLatched, "\(latch())")
        for r in quiet + hanging + flooding {
            #expect(r.samples > 800, "too few jobs measured: \(r)")
            #expect(r.criticalMisses == 0, "a critical deadline missed: \(r)")
        }
        // Control unchanged: the medians within 20 % of the phases without planning — plus a
        // slack for this VM's spread between identical phases: 20 µs on the median, and on the 99th
        // percentiles 100 µs or the spread the three phases without planning showed in this same
        // run, whichever is more (seen: 545 to 963 µs between identical phases under a CI run's
        // load). A control path that waited on the planner would lose hundreds of milliseconds
        // (the hanging back end's deadline), not a few hundred microseconds.
        let median = TelemetryIsolationTests.median
        func spread(_ key: KeyPath<Figures, Double>) -> Double {
            let values = quiet.map { $0[keyPath: key] }
            return (values.max() ?? 0) - (values.min() ?? 0)
        }
        for (phaseName, runs) in [("hanging model", hanging), ("endless body", flooding)] {
            for (name, key, slack) in [("response p50", \Figures.responseP50, 20.0),
                                       ("response p99", \Figures.responseP99, max(100, spread(\Figures.responseP99))),
                                       ("start p99", \Figures.startP99, max(100, spread(\Figures.startP99)))] {
                let q = median(quiet.map { $0[keyPath: key] }), p = median(runs.map { $0[keyPath: key] })
                #expect(p <= q * 1.2 + slack, "\(name): \(phaseName) \(p) µs vs no planning \(q) µs (slack \(slack) µs)")
            }
        }
    }

    /// The figures of one back end the checks above read.
    struct BackendHealthFigures: CustomStringConvertible {
        var opened = 0, tooLarge = 0, failures = 0, skipped = 0, breaker = "-"
        init(_ h: PlannerBackends.BackendHealth?) {
            guard let h else { return }
            opened = h.breakerOpened
            tooLarge = h.failuresByKind["too_large"] ?? 0
            failures = h.failures
            skipped = h.skipped
            breaker = h.breaker.name
        }
        var description: String { "breaker \(breaker), opened \(opened)×, \(failures) failures (\(tooLarge) too large), \(skipped) skipped" }
    }
}
}
