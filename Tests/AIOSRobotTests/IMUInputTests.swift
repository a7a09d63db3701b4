import CTransport
import Codecs
import Foundation
import RTScheduler
import Synchronization
import Testing
import Transports
@testable import AIOSRobot

@Suite("IMU input: serial frames → deadline-tagged events")
struct IMUInputTests {
    @Test func when_rate_monitor_sees_regular_samples_and_a_gap_expect_hz_and_one_gap() {
        var monitor = RateMonitor(expectedHz: 100)
        var t: UInt32 = .max - 25_000  // crosses the 32-bit wrap
        for i in 0..<200 {
            t &+= i == 100 ? 50_000 : 10_000  // one 50 ms hole
            monitor.note(deviceTimeMicros: t)
        }
        #expect(monitor.gaps == 1 && monitor.longestGapMicros == 50_000)
        #expect(abs(monitor.observedHz - 100) < 1)
    }

    @Test func when_imu_sample_is_packed_into_a_payload_expect_it_back() {
        let m = IMUSampleMessage(deviceTimeMicros: 77, accel: [0.5, -0.25, 9.75], gyro: [0.125, 0, -1], temperature: 30)
        let sample = IMUSample(m)
        #expect(IMUSample(payload: sample.payload) == sample)
        #expect(IMUSample(payload: .scalar(1)) == nil)
    }

    /// The whole input path on real threads: a pty (termios path) carrying IMU frames, the serial
    /// reader thread, the frame input, and the scheduler's dispatch thread.
    @Test func when_imu_frames_arrive_on_a_pty_expect_high_priority_events_with_arrival_release_and_relative_deadline() throws {
        var name = [CChar](repeating: 0, count: 128)
        let master = tr_open_pty(&name, name.count)
        try #require(master >= 0)
        defer { close(master) }
        let slave = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)

        let scheduler = Scheduler(clock: MonotonicClock())
        let received = Mutex<[(IMUSample, Event)]>([])
        let imuSource = scheduler.addSource("imu", queue: QueueSpec(capacity: 64, overflow: .dropOldest),
                                            subscription: Subscription(priority: .high, relativeDeadline: .milliseconds(2))) { event in
            if let sample = IMUSample(payload: event.payload) { received.withLock { $0.append((sample, event)) } }
        }
        try scheduler.start()
        defer { scheduler.stop() }
        let input = FrameSensorInput(sources: .init(imu: imuSource), expectedIMUHz: 200)
        let reader = try SerialReader(endpoint: .path(slave), settings: SerialSettings(), onEvent: { _ in }) { bytes, arrival in
            input.feed(bytes, arrival: arrival)
        }
        defer { reader.stop() }
        usleep(200_000)
        var wire: [UInt8] = []
        for i in 0..<50 {
            let m = IMUSampleMessage(deviceTimeMicros: UInt32(i * 5_000), accel: [0, 0, 9.81], gyro: [0, 0, Float(i) / 100])
            wire += Frame.encode(.imuSample, sequence: UInt8(i)) { m.write(into: $0) }
            if i == 25 { wire += [0xDE, 0xAD, 0x00] }  // line noise between frames
        }
        _ = wire.withUnsafeBytes { write(master, $0.baseAddress, $0.count) }
        let deadline = Date().addingTimeInterval(5)
        while received.withLock({ $0.count }) < 50 && Date() < deadline { usleep(10_000) }
        let got = received.withLock { $0 }
        #expect(got.count == 50)
        #expect(got.map { Float($0.0.gyro.z) } == (0..<50).map { Float($0) / 100 })
        for (_, event) in got {
            #expect(event.priority == .high)
            #expect(event.deadline.nanoseconds(since: event.release) == 2_000_000)
        }
        #expect(input.framesRejected == 1)
        #expect(input.imuRate.gaps == 0 && abs(input.imuRate.observedHz - 200) < 1)
        #expect(input.counters.posted.load(ordering: .relaxed) == 50)
    }
}
