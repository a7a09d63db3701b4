import Foundation
import RobotBenchmarks

enum BenchReport {
    static func us(_ v: Double) -> String { String(format: "%.1f µs", v) }
    static func ratio(_ v: Double?) -> String { v.map { String(format: "%.2f×", $0) } ?? "n/a" }

    static func scheduler(_ r: SchedulerBenchmark.Result) -> String {
        var lines = ["robotd bench scheduler", "machine:  \(r.machine)", "dispatch: \(r.realtime)", ""]
        lines.append("dispatch latency (post on another thread → handler starts)")
        for d in r.dispatch {
            lines.append("  \(d.rate / 1000) k/s  p50 \(us(d.p50Us))  p99 \(us(d.p99Us))  p99.9 \(us(d.p999Us))  max \(us(d.maxUs))  (\(d.events) events)")
        }
        lines.append("  bare futex ping, same threads, interleaved with the 10 k/s phase: p50 \(us(r.dispatchFloorP50Us))  p99 \(us(r.dispatchFloorP99Us))  → dispatch ratio \(ratio(r.dispatchRatio))")
        lines.append("high-priority p99 under a low-priority flood: \(us(r.floodP99Us)) vs idle \(us(r.floodIdleP99Us)) = \(ratio(r.floodP99Ratio))  (flood: \(r.floodEventsHandled) handled, \(r.floodEventsDropped) dropped)")
        lines.append(String(format: "maximum throughput: %.0f events/s (producer and dispatcher on two CPUs); one thread posting and dispatching: %.0f events/s", r.throughputEps, r.singleThreadEps))
        lines.append(String(format: "heap allocations per event (steady state, whole process): %.4f", r.allocsPerEvent))
        lines.append("1 kHz periodic wake-up: p50 \(us(r.jitterP50Us))  p99 \(us(r.jitterP99Us))  max \(us(r.jitterMaxUs))")
        lines.append("  bare clock_nanosleep loop p99 \(us(r.nanosleepP99Us))")
        if let c = r.cyclictestP99Us {
            lines.append("  cyclictest p50 \(us(r.cyclictestP50Us ?? 0))  p99 \(us(c))  max \(us(r.cyclictestMaxUs ?? 0))  → jitter ratio \(ratio(r.jitterRatio))")
        }
        for note in r.notes { lines.append("note: \(note)") }
        return lines.joined(separator: "\n")
    }

    static func endToEnd(_ r: EndToEndBenchmark.Result) -> String {
        var lines = ["robotd bench e2e", "machine:  \(r.machine)", "threads:  \(r.realtime)",
                     "round trip: driver writes a range frame → both motor frames read back (\(r.rateHz) rounds/s, \(r.seconds) s)", ""]
        for f in r.pipelines {
            let name = f.pipeline.rawValue.padding(toLength: 16, withPad: " ", startingAt: 0)
            lines.append("  " + name + String(format: "p50 %7.1f µs  p99 %7.1f µs  p99.9 %7.1f µs  max %8.1f µs  (%d samples, %d lost)",
                                              f.p50Us, f.p99Us, f.p999Us, f.maxUs, f.samples, f.lost))
        }
        lines.append("")
        lines.append("daemon default for serial frames: write: \(r.actuatorMode)   (aims: floor ratio ≤ 1.5, peer ratio ≥ 2)")
        lines.append("robotd, every write on the writer thread: floor ratio \(ratio(r.floorRatio)), peer ratio \(ratio(r.peerRatio))")
        lines.append("robotd, direct writes from the dispatch thread: floor ratio \(ratio(r.directFloorRatio)), peer ratio \(ratio(r.directPeerRatio)); "
                     + "\(r.directWritten) written directly, \(r.directDeferred) handed to the writer, \(r.directPartial) partly written")
        lines.append("robotd, inline writes (lockstep mode, may wait): floor ratio \(ratio(r.inlineFloorRatio)), peer ratio \(ratio(r.inlinePeerRatio)); writes that had to wait: \(r.inlineWriteWaits)")
        lines.append("dispatch hop (serial reader posts → handler starts) p99: threaded \(us(r.dispatchHopP99Us)), direct \(us(r.directDispatchHopP99Us)), inline \(us(r.inlineDispatchHopP99Us))")
        lines.append("guard verdicts: \(r.guardPassed) passed, \(r.guardClamped) clamped, \(r.guardRefused) refused")
        for note in r.notes { lines.append("note: \(note)") }
        return lines.joined(separator: "\n")
    }

    static func remoteStop(_ r: RemoteStopBenchmark.Result) -> String {
        var lines = ["robotd bench remote-stop",
                     "stop published (QoS 1) → robotd latched (its status, in this process); → the heater's safe value seen by an observer; → the retained state with the latch seen", ""]
        for s in [r.atFloor, r.atDefault] {
            lines.append(String(format: "  telemetry every %5.0f ms: latched p50 %6.2f ms  p90 %6.2f ms;  safe value p50 %6.2f ms  p90 %6.2f ms  max %6.2f ms;  state p50 %6.2f ms  p90 %6.2f ms",
                                s.intervalMs, s.latchP50Ms, s.latchP90Ms, s.safeValueP50Ms, s.safeValueP90Ms, s.safeValueMaxMs, s.stateP50Ms, s.stateP90Ms)
                         + String(format: "  (%d samples, %d lost; telemetry thread %.2f %% of a core, %llu messages)",
                                  s.samples, s.lost, s.telemetryCPUPercent, s.telemetryPublished))
        }
        lines.append(String(format: "  MQTT echo (floor):          p50 %6.2f ms  p90 %6.2f ms  (%d samples, %d lost)",
                            r.echoP50Ms, r.echoP90Ms, r.echoSamples, r.echoLost))
        lines.append("")
        lines.append("load ratios (p50 at the floor ÷ at the default): latched \(ratio(r.latchLoadRatio)), safe value \(ratio(r.loadRatio))")
        lines.append("echo ratios (p50 ÷ echo p50): latched \(ratio(r.floorLatchEchoRatio)) at the floor, \(ratio(r.defaultLatchEchoRatio)) at the default; "
                     + "safe value \(ratio(r.floorEchoRatio)) at the floor, \(ratio(r.defaultEchoRatio)) at the default")
        for note in r.notes { lines.append("note: \(note)") }
        return lines.joined(separator: "\n")
    }

    static func guardReport(_ r: GuardBenchmark.Result) -> String {
        [
            "robotd bench guard",
            String(format: "checks: %d (%.0f %% clamped or rejected)", r.checks, r.nonPassFraction * 100),
            String(format: "per check: median %.0f ns, p99 %.0f ns, mean %.0f ns (clock overhead %.0f ns subtracted)",
                   r.checkMedianNs, r.checkP99Ns, r.checkMeanNs, r.clockOverheadNs),
            String(format: "heap allocations per check: %.4f", r.allocsPerCheck),
        ].joined(separator: "\n")
    }
}
