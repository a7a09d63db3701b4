import Testing
@testable import RTScheduler

@Suite("Dispatch order: strict priority, EDF inside a class, sequence breaks ties")
struct DispatchOrderTests {
    @Test func when_same_class_expect_earliest_deadline_first() {
        let clock = VirtualClock()
        let scheduler = Scheduler(clock: clock)
        let order = Recorder<String>()
        let spec = QueueSpec(capacity: 8, overflow: .reject)
        let slow = scheduler.addSource("slow", queue: spec,
                                       subscription: Subscription(priority: .normal, relativeDeadline: .milliseconds(50))) { _ in order.append("slow") }
        let fast = scheduler.addSource("fast", queue: spec,
                                       subscription: Subscription(priority: .normal, relativeDeadline: .milliseconds(5))) { _ in order.append("fast") }
        let medium = scheduler.addSource("medium", queue: spec,
                                         subscription: Subscription(priority: .normal, relativeDeadline: .milliseconds(20))) { _ in order.append("medium") }
        // Posted in the opposite order of their deadlines.
        slow.post(.none)
        medium.post(.none)
        fast.post(.none)
        scheduler.runUntilIdle()
        #expect(order.all == ["fast", "medium", "slow"])
        #expect(!scheduler.hasPendingWork)
    }

    @Test func when_deadlines_differ_across_classes_expect_strict_priority() {
        let clock = VirtualClock()
        let scheduler = Scheduler(clock: clock)
        let order = Recorder<String>()
        let spec = QueueSpec(capacity: 8, overflow: .reject)
        // The low-class event has by far the earliest deadline: class still wins.
        let low = scheduler.addSource("low", queue: spec,
                                      subscription: Subscription(priority: .low, relativeDeadline: .microseconds(1))) { _ in order.append("low") }
        let high = scheduler.addSource("high", queue: spec,
                                       subscription: Subscription(priority: .high, relativeDeadline: .seconds(10))) { _ in order.append("high") }
        let critical = scheduler.addSource("critical", queue: spec,
                                           subscription: Subscription(priority: .critical, relativeDeadline: .seconds(60))) { _ in order.append("critical") }
        low.post(.none)
        high.post(.none)
        critical.post(.none)
        scheduler.runUntilIdle()
        #expect(order.all == ["critical", "high", "low"])
    }

    @Test func when_priority_and_deadline_tie_expect_posting_order() {
        let clock = VirtualClock()
        let scheduler = Scheduler(clock: clock)
        let order = Recorder<String>()
        let spec = QueueSpec(capacity: 8, overflow: .reject)
        let sub = Subscription(priority: .high, relativeDeadline: .milliseconds(1))
        let names = ["a", "b", "c", "d", "e"]
        let handles = names.map { name in scheduler.addSource(name, queue: spec, subscription: sub) { _ in order.append(name) } }
        // Same release instant, same relative deadline: only the sequence number differs.
        for i in [3, 1, 4, 0, 2] { handles[i].post(.none, release: .zero) }
        scheduler.runUntilIdle()
        #expect(order.all == ["d", "b", "e", "a", "c"])
    }

    @Test func when_one_source_has_several_events_expect_fifo_within_it() {
        let clock = VirtualClock()
        let scheduler = Scheduler(clock: clock)
        let values = Recorder<Double>()
        let source = scheduler.addSource("s", queue: QueueSpec(capacity: 16, overflow: .reject),
                                         subscription: Subscription(priority: .normal, relativeDeadline: .milliseconds(1))) { event in
            if case .scalar(let v) = event.payload { values.append(v) }
        }
        for i in 0..<10 { source.post(.scalar(Double(i))) }
        scheduler.runUntilIdle()
        #expect(values.all == (0..<10).map(Double.init))
    }

    @Test func when_events_post_expect_deadline_is_release_plus_relative_deadline() throws {
        let clock = VirtualClock(start: instant(ms: 7))
        let scheduler = Scheduler(clock: clock)
        let seen = Recorder<Event>()
        let source = scheduler.addSource("s", queue: QueueSpec(capacity: 4, overflow: .reject),
                                         subscription: Subscription(priority: .high, relativeDeadline: .microseconds(250))) { seen.append($0) }
        source.post(.signal(code: 304, value: 1), key: 9)
        source.post(.scalar(1), release: instant(ms: 5))
        scheduler.runUntilIdle()
        let events = seen.all
        try #require(events.count == 2)
        // One source is handled in arrival order (FIFO), whatever the release stamps say.
        #expect(events[0].release == instant(ms: 7))
        #expect(events[0].deadline == instant(us: 7_250))
        #expect(events[0].key == 9)
        #expect(events[0].priority == .high)
        #expect(events[1].release == instant(ms: 5))
        #expect(events[1].deadline == instant(us: 5_250))
        #expect(events[0].sequence < events[1].sequence)
    }

    @Test func when_higher_class_arrives_during_a_handler_expect_it_runs_next() {
        let clock = VirtualClock()
        let scheduler = Scheduler(clock: clock)
        let order = Recorder<String>()
        let spec = QueueSpec(capacity: 8, overflow: .reject)
        let box = HandleBox()
        let low = scheduler.addSource("low", queue: spec, subscription: Subscription(priority: .low, relativeDeadline: .seconds(1))) { event in
            if case .scalar(let v) = event.payload {
                order.append("low\(Int(v))")
                if v == 0 { box.high?.post(.none) }  // arrives while low0 runs
            }
        }
        box.high = scheduler.addSource("high", queue: spec, subscription: Subscription(priority: .high, relativeDeadline: .seconds(1))) { _ in order.append("high") }
        low.post(.scalar(0))
        low.post(.scalar(1))
        scheduler.runUntilIdle()
        #expect(order.all == ["low0", "high", "low1"])
    }
}

final class HandleBox: @unchecked Sendable {
    var high: SourceHandle?
}
