import Testing
@testable import RTScheduler

@Suite("Clocks and instants")
struct ClockTests {
    @Test func when_virtual_clock_advances_expect_exact_time_and_no_going_back() {
        let clock = VirtualClock()
        #expect(clock.now() == .zero)
        clock.advance(by: .microseconds(1500))
        #expect(clock.now() == Instant(nanoseconds: 1_500_000))
        clock.advance(to: Instant(nanoseconds: 1_000))
        #expect(clock.now() == Instant(nanoseconds: 1_500_000))
    }

    @Test func when_monotonic_clock_is_read_expect_non_decreasing() {
        let clock = MonotonicClock()
        var last = clock.now()
        for _ in 0..<10_000 {
            let now = clock.now()
            #expect(now >= last)
            last = now
        }
    }

    @Test func when_adding_durations_expect_saturation_at_distant_future() {
        #expect(Instant.distantFuture + .seconds(1) == .distantFuture)
        #expect(Instant(nanoseconds: 5) + .nanoseconds(7) == Instant(nanoseconds: 12))
        #expect(Duration.seconds(3).nanoseconds == 3_000_000_000)
        #expect(Duration.microseconds(-2).nanoseconds == -2_000)
        #expect((Instant(nanoseconds: 10) - Instant(nanoseconds: 4)) == .nanoseconds(6))
    }

    @Test func when_sample_values_copied_expect_values_kept() {
        var v = SampleValues(tag: 3, count: 12)
        for i in 0..<12 { v[i] = Double(i) * 0.5 }
        let copy = v
        #expect(copy.array == (0..<12).map { Double($0) * 0.5 })
        #expect(copy == v)
        #expect(SampleValues(tag: 1, values: [1, 2, 3]).array == [1, 2, 3])
    }
}
