import Testing
@testable import Codecs

/// Independent vectors: the CRC catalogue's check value and the COBS examples published with the
/// algorithm (Cheshire & Baker, and the Wikipedia article's table), so that a bug shared by robotd
/// and the simulator cannot hide.
@Suite("Codecs against published vectors")
struct CodecTests {
    @Test func when_crc16_ccitt_false_of_123456789_expect_0x29b1() {
        #expect(CRC16.checksum(Array("123456789".utf8)) == 0x29B1)
        #expect(CRC16.checksum([UInt8]()) == 0xFFFF)
    }

    static let cobsVectors: [([UInt8], [UInt8])] = [
        ([0x00], [0x01, 0x01]),
        ([0x00, 0x00], [0x01, 0x01, 0x01]),
        ([0x00, 0x11, 0x00], [0x01, 0x02, 0x11, 0x01]),
        ([0x11, 0x22, 0x00, 0x33], [0x03, 0x11, 0x22, 0x02, 0x33]),
        ([0x11, 0x22, 0x33, 0x44], [0x05, 0x11, 0x22, 0x33, 0x44]),
        ([0x11, 0x00, 0x00, 0x00], [0x02, 0x11, 0x01, 0x01, 0x01]),
        (Array(0x01...0xFE), [0xFF] + Array(0x01...0xFE)),
        ([0x00] + Array(0x01...0xFE), [0x01, 0xFF] + Array(0x01...0xFE)),
        (Array(0x01...0xFF), [0xFF] + Array(0x01...0xFE) + [0x02, 0xFF]),
        (Array(0x02...0xFF) + [0x00], [0xFF] + Array(0x02...0xFF) + [0x01, 0x01]),
        (Array(0x03...0xFF) + [0x00, 0x01], [0xFE] + Array(0x03...0xFF) + [0x02, 0x01]),
    ]

    @Test(arguments: cobsVectors.indices)
    func when_cobs_encodes_published_example_expect_published_bytes(index: Int) {
        let (raw, encoded) = Self.cobsVectors[index]
        #expect(COBS.encode(raw) == encoded)
        #expect(COBS.decode(encoded) == raw)
    }

    @Test func when_random_bytes_round_trip_expect_identity_and_no_zero_on_the_wire() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let bytes = (0..<Int.random(in: 0...600, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) & (Bool.random() ? 0xFF : 0x0F) }
            let encoded = COBS.encode(bytes)
            #expect(!encoded.contains(0))
            #expect(encoded.count <= COBS.maxEncodedCount(bytes.count))
            #expect(COBS.decode(encoded) == bytes)
        }
    }

    @Test func when_cobs_input_is_malformed_expect_nil_not_a_crash() {
        #expect(COBS.decode([0x05, 0x11]) == nil)  // code runs past the end
        #expect(COBS.decode([0x02, 0x00]) == nil)  // a zero inside a frame
    }

    @Test func when_motor_command_encoded_expect_exact_bytes() throws {
        // channel 1, velocity, not de-energised, 0.5 (0x3F000000), sequence 7.
        let message = MotorCommandMessage(channel: 1, mode: .velocity, deenergize: false, value: 0.5)
        var out = [UInt8](repeating: 0, count: Frame.maxWireCount)
        let n = try #require(out.withUnsafeMutableBytes { message.encode(sequence: 7, into: $0) })
        let wire = Array(out.prefix(n))
        let body: [UInt8] = [0x10, 0x07, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3F]
        let crc = CRC16.checksum(body)
        #expect(wire == COBS.encode(body + [UInt8(crc >> 8), UInt8(crc & 0xFF)]) + [0x00])
        var decoder = FrameDecoder()
        var got: [(MotorCommandMessage?, UInt8)] = []
        decoder.feed(wire) { got.append((MotorCommandMessage(payload: $0.payload), $0.sequence)) }
        #expect(got.count == 1)
        #expect(got.first?.0 == message)
        #expect(got.first?.1 == 7)
    }

    /// Random and mutated bytes: never a crash, and every byte is accounted for as part of a
    /// decoded frame, a rejected frame, or still pending.
    @Test func when_fuzzed_with_random_and_mutated_frames_expect_every_byte_accounted_for() {
        var rng = SystemRandomNumberGenerator()
        var decoder = FrameDecoder()
        var total = 0
        var good = 0
        for i in 0..<5_000 {
            var chunk: [UInt8]
            let payload = (0..<Int.random(in: 0...20, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            chunk = Frame.encode(type: 0x10, sequence: UInt8(i & 0xFF), payload: payload)
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: good += 1
            case 1:  // flip a byte
                let at = Int.random(in: 0..<(chunk.count - 1), using: &rng)
                chunk[at] ^= UInt8.random(in: 1...255, using: &rng)
            case 2:  // truncate (the next frame's bytes will merge with it)
                chunk = Array(chunk.prefix(Int.random(in: 0..<chunk.count, using: &rng)))
            default:  // pure noise
                chunk = (0..<Int.random(in: 0...100, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            }
            if !chunk.isEmpty && chunk.last != 0 { chunk.append(0) }  // the line's next delimiter
            total += chunk.count
            decoder.feed(chunk) { _ in }
        }
        #expect(decoder.bytesDecoded + decoder.bytesRejected + decoder.pendingCount == total)
        // Resynchronised at every delimiter: no good frame is lost to the garbage before it.
        #expect(decoder.framesDecoded >= good)
        #expect(decoder.framesRejected > 0)
    }
}

@Suite("Sensor frames")
struct SensorFrameTests {
    @Test func when_imu_sample_round_trips_expect_identical_values_with_and_without_optional_fields() {
        let samples = [
            IMUSampleMessage(deviceTimeMicros: 123_456, accel: [0.1, -0.2, 9.81], gyro: [0.01, 0.02, -0.03]),
            IMUSampleMessage(deviceTimeMicros: .max, accel: [1, 2, 3], gyro: [4, 5, 6], magnetometer: [2e-5, -1e-5, 4e-5], temperature: 36.6),
            IMUSampleMessage(deviceTimeMicros: 7, accel: [0, 0, 0], gyro: [0, 0, 0], temperature: -10),
        ]
        for (i, sample) in samples.enumerated() {
            let wire = Frame.encode(.imuSample, sequence: UInt8(i)) { sample.write(into: $0) }
            var decoder = FrameDecoder()
            var got: IMUSampleMessage?
            decoder.feed(wire) { view in
                #expect(view.type == Frame.MessageType.imuSample.rawValue)
                #expect(view.payload.count == sample.payloadCount)
                got = IMUSampleMessage(payload: view.payload)
            }
            #expect(got == sample)
        }
    }

    @Test func when_encoders_and_range_round_trip_expect_identical_values() {
        let encoders = WheelEncodersMessage(deviceTimeMicros: 99, leftTicks: -5, rightTicks: .max)
        let range = RangeMessage(deviceTimeMicros: 100, range: 1.25, status: 0)
        var decoder = FrameDecoder()
        var gotEncoders: WheelEncodersMessage?
        var gotRange: RangeMessage?
        let wire = Frame.encode(.wheelEncoders, sequence: 1) { encoders.write(into: $0) }
            + Frame.encode(.range, sequence: 2) { range.write(into: $0) }
        decoder.feed(wire) { view in
            if view.type == Frame.MessageType.wheelEncoders.rawValue { gotEncoders = WheelEncodersMessage(payload: view.payload) }
            if view.type == Frame.MessageType.range.rawValue { gotRange = RangeMessage(payload: view.payload) }
        }
        #expect(gotEncoders == encoders && gotRange == range)
    }

    @Test func when_payload_length_or_flags_are_wrong_expect_nil() {
        [UInt8](repeating: 0, count: 28).withUnsafeBytes { #expect(IMUSampleMessage(payload: $0) == nil) }
        var bad = [UInt8](repeating: 0, count: 29)
        bad[28] = 0x80
        bad.withUnsafeBytes { #expect(IMUSampleMessage(payload: $0) == nil) }
        [UInt8](repeating: 0, count: 9).enumerated().map { $0.offset == 8 ? 9 : $0.element }.withUnsafeBytes {
            #expect(RangeMessage(payload: $0) == nil)
        }
    }
}
