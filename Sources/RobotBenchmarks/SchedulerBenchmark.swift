import Platform
import CAllocCounter
import CBenchFloors
import CRealtime
import Foundation
import Logging
import RTScheduler
import Synchronization

/// `robotd bench scheduler`: what this machine can hold, each figure beside a baseline measured
/// in the same run (see docs/benchmarks.md).
public struct SchedulerBenchmark: Sendable {
    public struct Options: Sendable {
        /// Seconds per latency phase (each rate, flood) and per jitter run.
        public var seconds: Double = 2
        public var jitterSeconds: Double = 5
        public var fifoPriority = 80
        /// CPU for the dispatch thread (and cyclictest); producers use the other CPUs.
        public var cpu: Int = max(0, Int(rt_allowed_cpu_count()) - 1)
        public init() {}
    }

    public struct LatencyFigures: Sendable, Codable, Equatable {
        public var rate: Int
        public var events: UInt64
        public var p50Us: Double
        public var p99Us: Double
        public var p999Us: Double
        public var maxUs: Double
    }

    public struct Result: Sendable, Codable {
        public var machine: String
        public var realtime: String
        public var dispatch: [LatencyFigures]
        public var dispatchP99Us: Double
        /// A bare futex ping between threads set up as the producer and the dispatch thread are,
        /// interleaved with the 10 k/s phase: what any cross-thread wake costs on this machine.
        public var dispatchFloorP50Us: Double
        public var dispatchFloorP99Us: Double
        /// dispatch p99 (10 k/s) ÷ the floor's p99 (aim ≤ 1.5).
        public var dispatchRatio: Double
        public var floodIdleP99Us: Double
        public var floodP99Us: Double
        public var floodP99Ratio: Double
        public var floodEventsHandled: UInt64
        public var floodEventsDropped: UInt64
        public var throughputEps: Double
        public var singleThreadEps: Double
        public var allocsPerEvent: Double
        public var jitterP50Us: Double
        public var jitterP99Us: Double
        public var jitterMaxUs: Double
        public var nanosleepP99Us: Double
        public var cyclictestP50Us: Double?
        public var cyclictestP99Us: Double?
        public var cyclictestMaxUs: Double?
        public var jitterRatio: Double?
        public var notes: [String]

        enum CodingKeys: String, CodingKey {
            case machine, realtime, dispatch, notes
            case dispatchP99Us = "dispatch_p99_us"
            case dispatchFloorP50Us = "dispatch_floor_p50_us"
            case dispatchFloorP99Us = "dispatch_floor_p99_us"
            case dispatchRatio = "dispatch_ratio"
            case floodIdleP99Us = "flood_idle_p99_us"
            case floodP99Us = "flood_p99_us"
            case floodP99Ratio = "flood_p99_ratio"
            case floodEventsHandled = "flood_events_handled"
            case floodEventsDropped = "flood_events_dropped"
            case throughputEps = "throughput_eps"
            case singleThreadEps = "single_thread_eps"
            case allocsPerEvent = "allocs_per_event"
            case jitterP50Us = "jitter_p50_us"
            case jitterP99Us = "jitter_p99_us"
            case jitterMaxUs = "jitter_max_us"
            case nanosleepP99Us = "nanosleep_loop_p99_us"
            case cyclictestP50Us = "cyclictest_p50_us"
            case cyclictestP99Us = "cyclictest_p99_us"
            case cyclictestMaxUs = "cyclictest_max_us"
            case jitterRatio = "jitter_ratio"
        }
    }

    let options: Options
    let logger: Logger
    public init(options: Options = Options(), logger: Logger = Logger(label: "robotd.bench")) {
        self.options = options
        self.logger = logger
    }

    private var dispatchRealtime: RealtimeOptions { .realtime(priority: options.fifoPriority, cpu: options.cpu) }
    private var producerCPU: Int { options.cpu == 0 ? min(1, Int(rt_allowed_cpu_count()) - 1) : 0 }

    public func run(progress: (String) -> Void = { _ in }) throws -> Result {
        var notes: [String] = []
        progress("dispatch latency at 10 k events/s, beside a bare futex ping")
        let (at10k, report, floor) = try dispatchBesideFloor(rate: 10_000)
        if !report.notApplied.isEmpty { notes.append("real-time setup incomplete: " + report.notApplied.joined(separator: "; ")) }
        progress("dispatch latency at 100 k events/s")
        let (at100k, _) = try dispatchLatency(rate: 100_000, flood: false)
        progress("high-priority latency under a low-priority flood")
        let flood = try floodLatency()
        progress("maximum throughput")
        let (throughput, allocs) = try maxThroughput()
        progress("single-thread post + dispatch")
        let local = singleThreadThroughput()
        progress("1 kHz periodic jitter")
        let jitter = try periodicJitter()
        progress("clock_nanosleep loop baseline")
        let nanosleep = try nanosleepLoop()
        var cyclic: Cyclictest.Result?
        let tool = Cyclictest()
        if tool.isAvailable {
            progress("cyclictest")
            do {
                cyclic = try tool.run(priority: options.fifoPriority, cpu: options.cpu, intervalUs: 1000,
                                      loops: Int(options.jitterSeconds * 1000))
            } catch {
                notes.append("cyclictest failed: \(error)")
            }
        } else {
            notes.append("cyclictest not installed (Debian package rt-tests): no jitter baseline")
        }
        return Result(
            machine: Self.machineDescription(), realtime: report.description,
            dispatch: [at10k, at100k], dispatchP99Us: at10k.p99Us,
            dispatchFloorP50Us: floor.p50Us, dispatchFloorP99Us: floor.p99Us,
            dispatchRatio: at10k.p99Us / max(floor.p99Us, 0.001),
            floodIdleP99Us: flood.idle.p99Us, floodP99Us: flood.loaded.p99Us,
            floodP99Ratio: flood.loaded.p99Us / max(flood.idle.p99Us, 0.001),
            floodEventsHandled: flood.lowHandled, floodEventsDropped: flood.lowDropped,
            throughputEps: throughput, singleThreadEps: local, allocsPerEvent: allocs,
            jitterP50Us: jitter.p50Us, jitterP99Us: jitter.p99Us, jitterMaxUs: jitter.maxUs,
            nanosleepP99Us: nanosleep.p99Us,
            cyclictestP50Us: cyclic?.p50Us, cyclictestP99Us: cyclic?.p99Us, cyclictestMaxUs: cyclic?.maxUs,
            jitterRatio: cyclic.map { jitter.p99Us / max($0.p99Us, 0.001) }, notes: notes)
    }

    // MARK: phases

    /// Post on a producer thread (paced by busy-waiting on CLOCK_MONOTONIC) → handler start.
    func dispatchLatency(rate: Int, flood: Bool) throws -> (LatencyFigures, RealtimeReport) {
        let scheduler = Scheduler(clock: MonotonicClock(), logger: logger)
        let source = scheduler.addSource("probe", queue: QueueSpec(capacity: 1024, overflow: .dropOldest),
                                         subscription: Subscription(priority: .high, relativeDeadline: .milliseconds(1))) { _ in }
        let report = try scheduler.start(realtime: dispatchRealtime)
        try runPaced(source: source, rate: rate, seconds: options.seconds)
        scheduler.stop()
        let id = scheduler.taskID(named: "probe")!
        let summary = scheduler.statistics(for: id).startLatency.summary()
        return (LatencyFigures(rate: rate, events: summary.count, summary: summary), report)
    }

    /// The dispatch latency at `rate` with a bare futex ping interleaved half a period later: the
    /// same producer thread posts to the scheduler and pings a waiter thread set up exactly as the
    /// dispatch thread is (priority, CPU, memory lock, DMA latency), so both see the same machine.
    func dispatchBesideFloor(rate: Int) throws -> (LatencyFigures, RealtimeReport, floor: LatencyFigures) {
        let scheduler = Scheduler(clock: MonotonicClock(), logger: logger)
        let source = scheduler.addSource("probe", queue: QueueSpec(capacity: 1024, overflow: .dropOldest),
                                         subscription: Subscription(priority: .high, relativeDeadline: .milliseconds(1))) { _ in }
        let report = try scheduler.start(realtime: dispatchRealtime)
        let count = Int(Double(rate) * options.seconds)
        guard let ping = bf_ping_create(UInt32(count + 16)) else { throw BenchmarkError("out of memory") }
        defer { bf_ping_destroy(ping) }
        let pointer = SendablePointer(ping)
        let realtime = dispatchRealtime
        let waiter = try RealtimeThread(name: "bench-ping") { [logger] in
            let setup = RealtimeSetup.apply(realtime, logger: logger)
            bf_ping_serve(pointer.raw)
            setup.release()
        }
        while bf_ping_is_ready(ping) == 0 { rt_sleep_until(rt_monotonic_ns() + 1_000_000) }
        try runPaced(source: source, rate: rate, seconds: options.seconds, ping: pointer)
        bf_ping_stop(ping)
        waiter.join()
        scheduler.stop()
        let id = scheduler.taskID(named: "probe")!
        let summary = scheduler.statistics(for: id).startLatency.summary()
        // The same histogram (and percentile method) as the scheduler's own.
        let recorder = LatencyRecorder()
        var n: UInt32 = 0
        if let samples = bf_ping_samples(ping, &n) {
            for i in 0..<Int(n) { recorder.record(nanoseconds: samples[i]) }
        }
        let floor = recorder.summary()
        return (LatencyFigures(rate: rate, events: summary.count, summary: summary), report,
                LatencyFigures(rate: rate, events: floor.count, summary: floor))
    }

    struct FloodFigures {
        var idle: LatencyFigures
        var loaded: LatencyFigures
        var lowHandled: UInt64
        var lowDropped: UInt64
    }

    /// A high-class source at 10 k/s, measured alone and then while a producer floods a low-class
    /// source as fast as it can.
    func floodLatency() throws -> FloodFigures {
        func measure(flooding: Bool) throws -> (LatencyFigures, UInt64, UInt64) {
            let scheduler = Scheduler(clock: MonotonicClock(), logger: logger)
            let high = scheduler.addSource("high", queue: QueueSpec(capacity: 1024, overflow: .dropOldest),
                                           subscription: Subscription(priority: .high, relativeDeadline: .milliseconds(1))) { _ in }
            let low = scheduler.addSource("flood", queue: QueueSpec(capacity: 1024, overflow: .dropOldest),
                                          subscription: Subscription(priority: .low, relativeDeadline: .milliseconds(100))) { event in
                // A little work per low event, as a real handler would do.
                if case .scalar(let v) = event.payload { blackHole(v * 1.0001) }
            }
            try scheduler.start(realtime: dispatchRealtime)
            let stop = Atomic<Bool>(false)
            var flooder: RealtimeThread?
            if flooding {
                flooder = try RealtimeThread(name: "bench-flood") { [producerCPU] in
                    _ = RealtimeSetup.apply(RealtimeOptions(cpu: producerCPU), logger: Logger(label: "bench"))
                    var n = 0.0
                    while !stop.load(ordering: .relaxed) {
                        low.post(.scalar(n))
                        n += 1
                    }
                }
            }
            try runPaced(source: high, rate: 10_000, seconds: options.seconds)
            stop.store(true, ordering: .relaxed)
            flooder?.join()
            scheduler.stop()
            let snapshot = scheduler.snapshot()
            let summary = scheduler.statistics(for: scheduler.taskID(named: "high")!).startLatency.summary()
            let lowTask = snapshot.task(named: "flood")
            return (LatencyFigures(rate: 10_000, events: summary.count, summary: summary),
                    lowTask?.completions ?? 0, lowTask?.queue?.dropped ?? 0)
        }
        let (idle, _, _) = try measure(flooding: false)
        let (loaded, handled, dropped) = try measure(flooding: true)
        return FloodFigures(idle: idle, loaded: loaded, lowHandled: handled, lowDropped: dropped)
    }

    /// One producer posting as fast as the queue accepts; events handled per second, and heap
    /// allocations (whole process) per handled event over the same window.
    func maxThroughput() throws -> (eventsPerSecond: Double, allocsPerEvent: Double) {
        let scheduler = Scheduler(clock: MonotonicClock(), logger: logger)
        let handled = Atomic<UInt64>(0)
        let source = scheduler.addSource("throughput", queue: QueueSpec(capacity: 4096, overflow: .reject),
                                         subscription: Subscription(priority: .high, relativeDeadline: .seconds(1))) { _ in
            handled.add(1, ordering: .relaxed)
        }
        try scheduler.start(realtime: dispatchRealtime)
        let stop = Atomic<Bool>(false)
        let producer = try RealtimeThread(name: "bench-producer") { [producerCPU] in
            _ = RealtimeSetup.apply(RealtimeOptions(cpu: producerCPU), logger: Logger(label: "bench"))
            var values = SampleValues(tag: 1, count: 6)
            var n = 0.0
            while !stop.load(ordering: .relaxed) {
                values[0] = n
                if source.post(.values(values)).wasAccepted { n += 1 }
            }
        }
        let clock = MonotonicClock()
        // Warm up, then measure a steady window.
        rt_sleep_until(clock.now().nanoseconds + 200_000_000)
        let startEvents = handled.load(ordering: .relaxed)
        let startAllocs = alloc_counter_process_total()
        let start = clock.now()
        rt_sleep_until(start.nanoseconds + Int64(options.seconds * 1e9))
        let endEvents = handled.load(ordering: .relaxed)
        let endAllocs = alloc_counter_process_total()
        let end = clock.now()
        stop.store(true, ordering: .relaxed)
        producer.join()
        scheduler.stop()
        let events = Double(endEvents - startEvents)
        let seconds = Double(end.nanoseconds(since: start)) / 1e9
        let allocs = alloc_counter_is_active() != 0 ? Double(endAllocs - startAllocs) / max(events, 1) : .nan
        return (events / seconds, allocs)
    }

    /// Post and dispatch on one thread, batches of 1 000: the scheduler's own cost per event
    /// without cross-core cache traffic (the baseline for the two-thread throughput).
    func singleThreadThroughput() -> Double {
        let clock = MonotonicClock()
        let scheduler = Scheduler(clock: clock, logger: logger)
        let handled = Atomic<UInt64>(0)
        let source = scheduler.addSource("local", queue: QueueSpec(capacity: 1000, overflow: .reject),
                                         subscription: Subscription(priority: .high, relativeDeadline: .seconds(1))) { _ in
            handled.add(1, ordering: .relaxed)
        }
        var values = SampleValues(tag: 1, count: 6)
        let start = clock.now()
        let end = start.nanoseconds + Int64(options.seconds * 1e9 / 2)
        while clock.now().nanoseconds < end {
            for i in 0..<1000 {
                values[0] = Double(i)
                source.post(.values(values))
            }
            scheduler.runUntilIdle()
        }
        let seconds = Double(clock.now().nanoseconds(since: start)) / 1e9
        return Double(handled.load(ordering: .relaxed)) / seconds
    }

    /// A 1 kHz periodic task on the scheduler: wake-up latency = handler start − release instant.
    func periodicJitter() throws -> LatencyFigures {
        let scheduler = Scheduler(clock: MonotonicClock(), logger: logger)
        let id = scheduler.addPeriodic("jitter", PeriodicSpec(period: .milliseconds(1), priority: .high)) { _ in }
        try scheduler.start(realtime: dispatchRealtime)
        rt_sleep_until(MonotonicClock().now().nanoseconds + Int64(options.jitterSeconds * 1e9))
        scheduler.stop()
        let summary = scheduler.statistics(for: id).startLatency.summary()
        return LatencyFigures(rate: 1000, events: summary.count, summary: summary)
    }

    /// The same 1 kHz wake-up measured by a bare clock_nanosleep(TIMER_ABSTIME) loop in this
    /// process: the scheduler's own overhead is the difference.
    func nanosleepLoop() throws -> LatencyFigures {
        let recorder = LatencyRecorder()
        let loops = Int(options.jitterSeconds * 1000)
        let realtime = dispatchRealtime
        let thread = try RealtimeThread(name: "bench-nanosleep") { [logger] in
            let report = RealtimeSetup.apply(realtime, logger: logger)
            var next = rt_monotonic_ns() + 1_000_000
            for _ in 0..<loops {
                rt_sleep_until(next)
                recorder.record(nanoseconds: rt_monotonic_ns() - next)
                next += 1_000_000
            }
            report.release()
        }
        thread.join()
        let summary = recorder.summary()
        return LatencyFigures(rate: 1000, events: summary.count, summary: summary)
    }

    /// Posts `rate` events per second for `seconds` from a producer thread pinned away from the
    /// dispatcher, at SCHED_FIFO just below it (a real input thread would be RT too).
    /// With `ping`, a bare futex ping goes out half an interval after each post.
    private func runPaced(source: SourceHandle, rate: Int, seconds: Double, ping: SendablePointer? = nil) throws {
        let interval = Int64(1e9 / Double(rate))
        let count = Int(Double(rate) * seconds)
        let priority = max(1, options.fifoPriority - 1)
        let thread = try RealtimeThread(name: "bench-paced") { [producerCPU] in
            _ = RealtimeSetup.apply(RealtimeOptions(fifoPriority: priority, cpu: producerCPU), logger: Logger(label: "bench"))
            // Sleep most of the gap, spin the rest, so posts land on time without 100 % CPU at 10 k/s.
            func pace(until instant: Int64) {
                if instant - rt_monotonic_ns() > 60_000 { rt_sleep_until(instant - 50_000) }
                while rt_monotonic_ns() < instant {}
            }
            var next = rt_monotonic_ns() + 1_000_000
            for _ in 0..<count {
                pace(until: next)
                source.post(.none)
                if let ping {
                    pace(until: next + interval / 2)
                    bf_ping_post(ping.raw)
                }
                next += interval
            }
        }
        thread.join()
        rt_sleep_until(rt_monotonic_ns() + 20_000_000)  // let the last events drain
    }

    static func machineDescription() -> String {
        let cpus = rt_allowed_cpu_count()
        var model = "unknown CPU"
        if let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
           let line = info.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
           let name = line.split(separator: ":").last {
            model = name.trimmingCharacters(in: .whitespaces)
        }
        var uts = utsname()
        uname(&uts)
        let release = withUnsafeBytes(of: &uts.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return "\(cpus) CPUs, \(model), Linux \(release)"
    }
}

extension SchedulerBenchmark.LatencyFigures {
    init(rate: Int, events: UInt64, summary: LatencySummary) {
        self.init(rate: rate, events: events, p50Us: Double(summary.p50) / 1000, p99Us: Double(summary.p99) / 1000,
                  p999Us: Double(summary.p999) / 1000, maxUs: Double(summary.max) / 1000)
    }
}

/// Keeps the optimiser from deleting benchmark work.
@inline(never) func blackHole<T>(_ value: T) { _ = value }
