import RTScheduler
import Synchronization
import Testing
@testable import AIOSRobot

/// NMEA 0183 and key=value lines (the `serial` input kind's `nmea` and `kv` codecs) become one
/// scalar per configured message or key, each posted to its sensor's source.
@Suite("NMEA and key=value lines become sensor samples")
struct ScalarLineInputTests {
    static func run(_ format: ScalarLineInput.Format, _ names: [String], _ text: String) -> (samples: [String: [Double]], input: ScalarLineInput) {
        let scheduler = Scheduler(clock: VirtualClock())
        let samples = Mutex<[String: [Double]]>([:])
        let routes = names.map { name in
            (name, scheduler.addSource(name, queue: QueueSpec(capacity: 16, overflow: .dropOldest),
                                       subscription: Subscription(priority: .normal, relativeDeadline: .milliseconds(100))) { e in
                guard case .scalar(let v) = e.payload else { return }
                samples.withLock { $0[name, default: []].append(v) }
            })
        }
        let input = ScalarLineInput(format: format, routes: routes)
        Array(text.utf8).withUnsafeBytes { input.feed($0, arrival: 5_000_000) }
        scheduler.runUntilIdle()
        return (samples.withLock { $0 }, input)
    }

    @Test func when_a_gnss_receiver_sends_gga_rmc_and_hdt_expect_each_configured_value_once_in_si_units() throws {
        let (samples, input) = Self.run(.nmea, ["fix_quality", "hdop", "satellites", "speed", "heading"], """
        $GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r
        $GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A\r
        $HEHDT,274.07,T*19\r
        $GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*00\r

        """)
        #expect(samples["fix_quality"] == [1] && samples["hdop"] == [0.9] && samples["satellites"] == [8])
        #expect(samples["speed"].map { $0.count == 1 && abs($0[0] - 22.4 * 1852 / 3600) < 1e-12 } == true)
        #expect(samples["heading"] == [274.07])
        #expect(input.rejectedLines == 1)  // the bad checksum
    }

    @Test func when_a_fix_is_marked_invalid_expect_no_speed() throws {
        let (samples, input) = Self.run(.nmea, ["speed"], "$GPRMC,123519,V,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*7D\r\n")
        #expect(samples["speed"] == nil && input.rejectedLines == 0)  // read, but a warning fix carries no speed
    }

    @Test func when_a_sketch_sends_key_value_lines_expect_each_configured_key_as_its_own_sample() throws {
        let (samples, input) = Self.run(.keyValue, ["temp", "hum"], "hum=40 temp=21.5\ntemp=22 extra=1\ngarbage\n")
        #expect(samples["temp"] == [21.5, 22] && samples["hum"] == [40])
        #expect(input.unknownKeys.load(ordering: .relaxed) == 1)
        #expect(input.rejectedLines == 1)
    }
}
