import RTScheduler
import Synchronization
import Testing
@testable import AIOSRobot

@Suite("NMEA and key=value inputs become events")
struct LineSensorInputTests {
    static func run(_ format: LineSensorInput.Format, _ text: String) -> (events: [Event], input: LineSensorInput) {
        let scheduler = Scheduler(clock: VirtualClock())
        let events = Mutex<[Event]>([])
        let source = scheduler.addSource("gnss", queue: QueueSpec(capacity: 16, overflow: .dropOldest),
                                         subscription: Subscription(priority: .normal, relativeDeadline: .milliseconds(100))) { e in
            events.withLock { $0.append(e) }
        }
        let input = LineSensorInput(format: format, source: source)
        Array(text.utf8).withUnsafeBytes { input.feed($0, arrival: 5_000_000) }
        scheduler.runUntilIdle()
        return (events.withLock { $0 }, input)
    }

    @Test func when_a_gnss_receiver_sends_gga_rmc_and_hdt_expect_one_event_each_in_degrees_and_metres_per_second() throws {
        let (events, input) = Self.run(.nmea, """
        $GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r
        $GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A\r
        $HEHDT,274.07,T*19\r
        $GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*00\r

        """)
        try #require(events.count == 3)
        guard case .values(let fix) = events[0].payload, case .values(let velocity) = events[1].payload,
              case .values(let heading) = events[2].payload else { Issue.record("payloads"); return }
        #expect(fix.tag == SampleTag.gnssFix && abs(fix[0] - 48.1173) < 1e-9 && fix[2] == 545.4 && fix[4] == 8)
        #expect(velocity.tag == SampleTag.gnssVelocity && abs(velocity[0] - 22.4 * 1852 / 3600) < 1e-12 && velocity[2] == 1)
        #expect(heading.tag == SampleTag.heading && heading[0] == 274.07)
        #expect(events.allSatisfy { $0.release == Instant(nanoseconds: 5_000_000) && $0.deadline == Instant(nanoseconds: 105_000_000) })
        #expect(input.rejectedLines == 1)
    }

    @Test func when_a_sketch_sends_key_value_lines_expect_configured_keys_in_order() throws {
        let (events, input) = Self.run(.keyValue(keys: ["temp", "hum"]), "hum=40 temp=21.5\ntemp=22 extra=1\ngarbage\n")
        try #require(events.count == 2)
        guard case .values(let first) = events[0].payload, case .values(let second) = events[1].payload else {
            Issue.record("expected two .values payloads, got \(events.map(\.payload))"); return
        }
        #expect(first.array == [21.5, 40])
        #expect(second[0] == 22 && second[1].isNaN)
        #expect(input.unknownKeys.load(ordering: .relaxed) == 1)
        #expect(input.rejectedLines == 1)
    }
}
