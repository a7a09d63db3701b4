import Foundation
import Synchronization
import Testing
@testable import RTScheduler

@Suite("Threads: concurrent producers, the dispatch thread, the async lane")
struct ConcurrencyTests {
    /// Several producer threads per source, several sources, every overflow policy. The
    /// dispatch thread runs concurrently (real clock). Afterwards, per source:
    /// delivered + dropped + rejected = produced, and no event is delivered twice.
    @Test func when_producers_post_concurrently_expect_nothing_lost_or_duplicated() throws {
        let scheduler = Scheduler(clock: MonotonicClock())
        let policies: [OverflowPolicy] = [.dropOldest, .reject, .keepLatestPerKey, .dropOldest]
        let producersPerSource = 3
        let postsPerProducer = 20_000
        let delivered = (0..<policies.count).map { _ in Recorder<UInt64>() }
        var handles: [SourceHandle] = []
        for (i, policy) in policies.enumerated() {
            let record = delivered[i]
            handles.append(scheduler.addSource("s\(i)", queue: QueueSpec(capacity: 16, overflow: policy),
                                               subscription: Subscription(priority: i % 2 == 0 ? .high : .normal,
                                                                          relativeDeadline: .milliseconds(10))) { event in
                if case .values(let v) = event.payload { record.append(UInt64(v[0])) }
            })
        }
        try scheduler.start()
        let producersDone = DispatchGroup()
        let results = Mutex<[Int: [PostResult: Int]]>([:])
        for (i, handle) in handles.enumerated() {
            for producer in 0..<producersPerSource {
                producersDone.enter()
                Thread.detachNewThread {
                    var local: [PostResult: Int] = [:]
                    for n in 0..<postsPerProducer {
                        var values = SampleValues(tag: 1, count: 1)
                        values[0] = Double(producer * postsPerProducer + n)  // unique per source
                        local[handle.post(.values(values), key: UInt32(n % 5)), default: 0] += 1
                    }
                    results.withLock { $0[i, default: [:]].merge(local, uniquingKeysWith: +) }
                    producersDone.leave()
                }
            }
        }
        producersDone.wait()
        // Let the dispatcher drain what is queued.
        let deadline = Date().addingTimeInterval(10)
        while scheduler.snapshot().tasks.contains(where: { ($0.queue?.depth ?? 0) > 0 }) && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.005)
        }
        Thread.sleep(forTimeInterval: 0.05)
        scheduler.stop()
        let snapshot = scheduler.snapshot()
        for (i, _) in policies.enumerated() {
            let task = try #require(snapshot.task(named: "s\(i)"))
            let queue = try #require(task.queue)
            let got = delivered[i].all
            let produced = UInt64(producersPerSource * postsPerProducer)
            #expect(queue.produced == produced)
            #expect(UInt64(got.count) + queue.dropped + queue.rejected == produced, "source \(i) (\(policies[i]))")
            #expect(Set(got).count == got.count, "duplicates in source \(i)")
            #expect(task.completions == UInt64(got.count))
            let perResult = results.withLock { $0[i] ?? [:] }
            #expect(UInt64(perResult[.rejected] ?? 0) == queue.rejected)
            #expect(queue.depth == 0)
        }
    }

    @Test func when_running_on_a_thread_expect_periodic_and_events_dispatched() throws {
        let scheduler = Scheduler(clock: MonotonicClock())
        let ticks = Atomic<Int>(0)
        let handled = Atomic<Int>(0)
        let dispatchThread = Mutex<String?>(nil)
        scheduler.addPeriodic("tick", PeriodicSpec(period: .milliseconds(2), priority: .high)) { _ in
            ticks.add(1, ordering: .relaxed)
        }
        let source = scheduler.addSource("in", queue: QueueSpec(capacity: 64, overflow: .reject),
                                         subscription: Subscription(priority: .normal, relativeDeadline: .milliseconds(50))) { _ in
            handled.add(1, ordering: .relaxed)
            dispatchThread.withLock { $0 = currentThreadName() }
        }
        try scheduler.start()
        for _ in 0..<50 {
            source.post(.scalar(1))
            Thread.sleep(forTimeInterval: 0.002)
        }
        Thread.sleep(forTimeInterval: 0.05)
        scheduler.stop()
        #expect(handled.load(ordering: .relaxed) == 50)
        // ~150 ms of 2 ms ticks (75); generous bounds: a shared 2-CPU VM running other tests.
        #expect(ticks.load(ordering: .relaxed) >= 10)
        #expect(dispatchThread.withLock { $0 } == "robotd-dispatch")
        let tick = try #require(scheduler.snapshot().task(named: "tick"))
        #expect(tick.releases == tick.completions)
        #expect(tick.releases + tick.skippedReleases >= UInt64(ticks.load(ordering: .relaxed)))
    }

    @Test func when_async_work_hangs_expect_dispatch_unaffected_and_results_arrive_as_events() async throws {
        let scheduler = Scheduler(clock: MonotonicClock())
        let ticks = Atomic<Int>(0)
        let plans = Recorder<Double>()
        let planThreads = Recorder<String>()
        scheduler.addPeriodic("control", PeriodicSpec(period: .milliseconds(1), priority: .high)) { _ in
            ticks.add(1, ordering: .relaxed)
        }
        let results = scheduler.addSource("plans", queue: QueueSpec(capacity: 4, overflow: .keepLatestPerKey),
                                          subscription: Subscription(priority: .low, relativeDeadline: .seconds(1))) { event in
            if case .scalar(let v) = event.payload { plans.append(v) }
            planThreads.append(currentThreadName())
        }
        let lane = AsyncLane(results: results)
        try scheduler.start()
        let hung = lane.submit {
            // A planner that never answers in time.
            try? await Task.sleep(for: .seconds(60))
            return .scalar(-1)
        }
        let quick = lane.submit {
            try? await Task.sleep(for: .milliseconds(20))
            return .scalar(42)
        }
        let posted = await quick.value
        #expect(posted == .accepted)
        try await Task.sleep(for: .milliseconds(200))
        hung.cancel()
        scheduler.stop()
        #expect(plans.all == [42])
        #expect(planThreads.all == ["robotd-dispatch"])  // the result ran as an event on the dispatch thread
        let control = try #require(scheduler.snapshot().task(named: "control"))
        // ~220 1 kHz releases while the planner hung; a generous bound for a shared VM.
        #expect(control.releases >= 50)
        #expect(control.releases == control.completions)
    }

    /// A result the source refuses (its queue full, the scheduler not dispatching) is handed to
    /// the caller's `refused`, with why: never lost unsaid. An accepted one is not.
    @Test func when_the_results_queue_refuses_a_result_expect_it_handed_to_refused() async throws {
        let scheduler = Scheduler(clock: MonotonicClock())
        let results = scheduler.addSource("plans", queue: QueueSpec(capacity: 1, overflow: .reject),
                                          subscription: Subscription(priority: .low, relativeDeadline: .seconds(1))) { _ in }
        let lane = AsyncLane(results: results)
        let refusals = Recorder<Double>()
        // Not started: the first result fills the queue, the second finds it full.
        let first = lane.submit(refused: { payload, _ in if case .scalar(let v) = payload { refusals.append(v) } }) { .scalar(1) }
        #expect(await first.value == .accepted)
        let second = lane.submit(refused: { payload, result in
            if case .scalar(let v) = payload, result == .rejected { refusals.append(v) }
        }) { .scalar(2) }
        #expect(await second.value == .rejected)
        #expect(refusals.all == [2])
    }
}

func currentThreadName() -> String {
    let name = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? ""
    return name.trimmingCharacters(in: .whitespacesAndNewlines)
}
