import Foundation
import Testing
@testable import RobotBenchmarks

/// `robotd bench e2e` and the scheduler benchmark's dispatch floor, run briefly: they complete,
/// every pipeline answers, and the JSON report carries every documented key. Timing goals are not
/// asserted here (docs/benchmarks.md); the bounds only catch a pipeline that does not work.
@Suite("end-to-end and dispatch-floor benchmarks", .serialized)
struct EndToEndBenchmarkTests {
    static let e2eKeys = [
        "e2e_p50_us", "e2e_p99_us", "e2e_p999_us", "e2e_max_us", "e2e_samples",
        "e2e_inline_p50_us", "e2e_inline_p99_us", "e2e_inline_p999_us", "e2e_inline_max_us", "e2e_inline_samples",
        "e2e_direct_p50_us", "e2e_direct_p99_us", "e2e_direct_p999_us", "e2e_direct_max_us", "e2e_direct_samples",
        "direct_floor_ratio", "direct_peer_ratio", "direct_dispatch_hop_p99_us", "direct_written", "direct_deferred", "direct_partial",
        "floor_p50_us", "floor_p99_us", "floor_samples", "topology_floor_p50_us", "topology_floor_p99_us",
        "topology_floor_samples", "peer_p50_us", "peer_p99_us", "peer_samples", "floor_ratio", "peer_ratio",
        "inline_floor_ratio", "inline_peer_ratio", "dispatch_hop_p99_us", "inline_dispatch_hop_p99_us",
        "inline_write_waits", "actuator_mode", "pipelines", "notes",
    ]

    /// Other suites run robotd demos (SCHED_FIFO 77–81) at the same time: these runs stay below them,
    /// and pace slowly enough not to spin a CPU, so they cannot starve a demo's threads.
    static let fifoPriority = 20

    static func json(_ value: some Encodable) throws -> [String: Any] {
        let data = try JSONEncoder().encode(value)
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test func when_short_e2e_run_expect_samples_from_every_pipeline_and_every_key() throws {
        var options = EndToEndBenchmark.Options()
        options.seconds = 0.5
        options.warmupSeconds = 0.3
        options.fifoPriority = Self.fifoPriority
        let peer = EndToEndBenchmark.PeerLocation.find()
        if peer == nil {
            print("note: python peer skipped — no .build/venv beside scripts/peers/e2e_peer.py (scripts/setup.sh creates it)")
        }
        options.peer = peer
        let result = try EndToEndBenchmark(options: options).run()

        var expected: [EndToEndBenchmark.Pipeline] = [.robotdThreaded, .robotdDirect, .robotdInline, .floor, .topology]
        if peer != nil { expected.append(.peer) }
        #expect(result.pipelines.map(\.pipeline) == expected, "notes: \(result.notes)")
        let rounds = Int(options.seconds * Double(options.rateHz))
        for f in result.pipelines {
            // Generous: a loaded 2-core VM may lose or delay some, but a broken pipeline answers none.
            #expect(f.samples >= rounds / 2, "\(f.pipeline.rawValue): \(f.samples) samples, \(f.lost) lost; notes: \(result.notes)")
            #expect(f.samples + f.lost <= rounds)
            #expect(f.p50Us > 0 && f.p50Us <= f.p99Us && f.p99Us <= f.p999Us && f.p999Us <= f.maxUs)
            #expect(f.p50Us < 20_000, "\(f.pipeline.rawValue) p50 \(f.p50Us) µs")
        }
        // Every command went through the guard; approved ones (passed or clamped) are what came back.
        #expect(result.guardPassed + result.guardClamped >= 2 * (result.e2eSamples + result.e2eInlineSamples + result.e2eDirectSamples))
        #expect(result.e2eSamples == result.figures(.robotdThreaded)?.samples)
        #expect(result.e2eDirectSamples == result.figures(.robotdDirect)?.samples)
        #expect(result.floorRatio == result.e2eP99Us / result.floorP99Us)
        #expect(result.directFloorRatio == result.e2eDirectP99Us / result.floorP99Us)
        // The direct lane wrote most of its frames itself (two per answered sample).
        #expect(result.directWritten >= UInt64(result.e2eDirectSamples), "direct: \(result.directWritten) written, \(result.directDeferred) handed over")

        let object = try Self.json(result)
        for key in Self.e2eKeys { #expect(object.keys.contains(key), "missing key \(key)") }
        #expect(object["actuator_mode"] as? String == "direct")
        for key in ["e2e_p50_us", "e2e_p99_us", "e2e_direct_p50_us", "e2e_direct_p99_us", "floor_p99_us", "topology_floor_p99_us",
                    "floor_ratio", "direct_floor_ratio"] {
            #expect(object[key] is NSNumber, "\(key) is not a number")
        }
        if peer != nil {
            #expect(object["peer_p99_us"] is NSNumber && object["peer_ratio"] is NSNumber && object["direct_peer_ratio"] is NSNumber)
        } else {
            #expect(object["peer_p99_us"] is NSNull)
        }
        // And it reads back.
        let decoded = try JSONDecoder().decode(EndToEndBenchmark.Result.self, from: JSONEncoder().encode(result))
        #expect(decoded.pipelines == result.pipelines)
        #expect(decoded.peerP99Us == result.peerP99Us)
    }

    @Test func when_a_pipeline_has_no_samples_expect_null_percentiles_not_an_encoding_error() throws {
        let empty = EndToEndBenchmark.Figures(pipeline: .peer, samples: 0, lost: 500, strayFrames: 0,
                                              p50Us: .nan, p99Us: .nan, p999Us: .nan, maxUs: .nan)
        let object = try Self.json(empty)
        #expect(object["p50_us"] is NSNull && object["p99_us"] is NSNull && object["max_us"] is NSNull)
        #expect(object["lost"] as? Int == 500)
        let decoded = try JSONDecoder().decode(EndToEndBenchmark.Figures.self, from: JSONEncoder().encode(empty))
        #expect(decoded.samples == 0 && decoded.p99Us.isNaN)
    }

    @Test func when_dispatch_measured_beside_a_futex_ping_expect_both_histograms_filled() throws {
        var options = SchedulerBenchmark.Options()
        options.seconds = 0.5
        options.fifoPriority = Self.fifoPriority
        let (dispatch, _, floor) = try SchedulerBenchmark(options: options).dispatchBesideFloor(rate: 2_000)
        // 1 000 posts and 1 000 pings. Every ping is counted, a late wake-up once for each ping that
        // waited for it; the scheduler may stop with a few events still queued on a loaded machine.
        #expect(dispatch.events >= 990 && dispatch.events <= 1_000, "\(dispatch.events) dispatched")
        #expect(floor.events == 1_000, "\(floor.events) pings")
        #expect(floor.p50Us > 0 && floor.p50Us <= floor.p99Us && floor.p99Us <= floor.maxUs)
        #expect(dispatch.p50Us > 0 && dispatch.p50Us <= dispatch.p99Us)
    }

    @Test func when_scheduler_result_encoded_expect_dispatch_floor_keys() throws {
        let figures = SchedulerBenchmark.LatencyFigures(rate: 10_000, events: 10, p50Us: 10, p99Us: 30, p999Us: 40, maxUs: 50)
        let result = SchedulerBenchmark.Result(
            machine: "m", realtime: "r", dispatch: [figures], dispatchP99Us: 30, dispatchFloorP50Us: 8, dispatchFloorP99Us: 20,
            dispatchRatio: 1.5, floodIdleP99Us: 1, floodP99Us: 1, floodP99Ratio: 1, floodEventsHandled: 1, floodEventsDropped: 0,
            throughputEps: 1, singleThreadEps: 1, allocsPerEvent: 0, jitterP50Us: 1, jitterP99Us: 1, jitterMaxUs: 1,
            nanosleepP99Us: 1, cyclictestP50Us: nil, cyclictestP99Us: nil, cyclictestMaxUs: nil, jitterRatio: nil, notes: [])
        let object = try Self.json(result)
        #expect(object["dispatch_floor_p99_us"] as? Double == 20)
        #expect(object["dispatch_floor_p50_us"] as? Double == 8)
        #expect(object["dispatch_ratio"] as? Double == 1.5)
        #expect(object["dispatch_p99_us"] as? Double == 30)
    }
}
