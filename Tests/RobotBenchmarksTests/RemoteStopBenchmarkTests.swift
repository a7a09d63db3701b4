import AIOSRobot
import Foundation
import Testing
@testable import RobotBenchmarks

/// `robotd bench remote-stop`, run briefly: its robot passes `check` at both telemetry intervals,
/// every stop is measured at both, telemetry really runs at each interval, and the JSON report
/// carries every documented key. Timing goals are not asserted (docs/benchmarks.md); the bounds
/// only catch a path that does not work.
@Suite("remote-stop benchmark", .serialized,
       .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/sbin/mosquitto"), "mosquitto is not installed"))
struct RemoteStopBenchmarkTests {
    static let keys = ["at_floor", "at_default", "echo_samples", "echo_lost", "echo_p50_ms", "echo_p90_ms", "load_ratio",
                       "latch_load_ratio", "floor_latch_echo_ratio", "default_latch_echo_ratio", "floor_echo_ratio",
                       "default_echo_ratio", "notes"]
    static let settingKeys = ["interval_ms", "samples", "lost", "latch_p50_ms", "latch_p90_ms", "safe_value_p50_ms", "safe_value_p90_ms",
                              "safe_value_max_ms", "state_p50_ms", "state_p90_ms", "telemetry_cpu_percent", "telemetry_published"]

    @Test(arguments: [RemoteStopBenchmark.Options().floorIntervalMs, RemoteStopBenchmark.Options().defaultIntervalMs])
    func the_benchmarks_robot_passes_check(intervalMs: Double) {
        let report = RobotFileCheck.load(text: RemoteStopBenchmark.configurationText(port: 1883, intervalMs: intervalMs, priority: 20),
                                         file: "bench.yaml")
        #expect(report.errors.isEmpty, "\(report)")
        #expect(report.configuration?.mqtt?.telemetry?.intervalMs == intervalMs)
        #expect(report.configuration?.scheduler.priority == 20)
    }

    /// Below the SCHED_FIFO priorities of the demos other suites run at the same time.
    @Test func when_a_short_run_is_made_expect_every_stop_measured_at_both_intervals_and_every_key() throws {
        var options = RemoteStopBenchmark.Options()
        options.rounds = 1
        options.samplesPerBlock = 3
        options.priority = 20
        var phases: [String] = []
        let result = try RemoteStopBenchmark(options: options).run { phases.append($0) }
        #expect(phases.count == 3, "\(phases)")  // the broker, then one block per interval
        for (setting, interval) in [(result.atFloor, 100.0), (result.atDefault, 1000.0)] {
            #expect(setting.intervalMs == interval)
            #expect(setting.samples == 3 && setting.lost == 0, "\(setting)")
            #expect(setting.latchP50Ms > 0 && setting.latchP50Ms < 1000, "\(setting)")
            #expect(setting.safeValueP50Ms > 0 && setting.safeValueP50Ms < 2000, "\(setting)")
            #expect(setting.stateP50Ms.isFinite, "\(setting)")
            // NaN only when the daemon's own telemetry thread could not be told apart (said in a note).
            #expect(setting.telemetryCPUPercent >= 0 || (setting.telemetryCPUPercent.isNaN && !result.notes.isEmpty), "\(setting) \(result.notes)")
        }
        // Telemetry really ran at each interval: ten times as often at the floor, so more messages
        // in blocks of about the same length.
        #expect(result.atFloor.telemetryPublished > result.atDefault.telemetryPublished, "\(result.atFloor) \(result.atDefault)")
        #expect(result.echoSamples == 6 && result.echoLost == 0 && result.echoP50Ms > 0)
        #expect(result.loadRatio.isFinite && result.floorEchoRatio.isFinite && result.defaultEchoRatio.isFinite)
        #expect(result.latchLoadRatio.isFinite && result.floorLatchEchoRatio.isFinite && result.defaultLatchEchoRatio.isFinite)
        let data = try JSONEncoder().encode(result)
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(Set(json.keys) == Set(Self.keys), "\(json.keys.sorted())")
        let floor = try #require(json["at_floor"] as? [String: Any])
        #expect(Set(floor.keys) == Set(Self.settingKeys), "\(floor.keys.sorted())")
    }

    @Test func a_threads_cpu_time_is_the_first_field_of_its_schedstat() {
        #expect(ThreadCPU.seconds(schedstat: "1500000000 2000 31\n") == 1.5)
        #expect(ThreadCPU.seconds(schedstat: "") == nil && ThreadCPU.seconds(schedstat: "x y") == nil)
        #expect(RemoteStopBenchmark.percentile([3, 1, 2, 4], 0.5) == 2 && RemoteStopBenchmark.percentile([], 0.5).isNaN)
        #expect(ThreadCPU.all(named: "no-such-thread").isEmpty)
        #expect(ThreadCPU(tid: "999999999").seconds() == nil)  // a thread that is gone
    }
}
