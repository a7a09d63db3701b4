/// Sensor messages of the frame protocol (docs/serial-protocol.md). Units are SI and frames follow
/// REP 103 (x forward, y left, z up). Decoding reads straight from the frame's payload view.
extension UnsafeRawBufferPointer {
    @inline(__always) func float32(at offset: Int) -> Float {
        Float(bitPattern: UInt32(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
    }
    @inline(__always) func uint32(at offset: Int) -> UInt32 {
        UInt32(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }
    @inline(__always) func int32(at offset: Int) -> Int32 {
        Int32(littleEndian: loadUnaligned(fromByteOffset: offset, as: Int32.self))
    }
}

extension UnsafeMutableRawBufferPointer {
    @inline(__always) func put(_ value: Float, at offset: Int) {
        storeBytes(of: value.bitPattern.littleEndian, toByteOffset: offset, as: UInt32.self)
    }
    @inline(__always) func put(_ value: UInt32, at offset: Int) {
        storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt32.self)
    }
    @inline(__always) func put(_ value: Int32, at offset: Int) {
        storeBytes(of: value.littleEndian, toByteOffset: offset, as: Int32.self)
    }
}

/// IMU sample, type 0x20. Payload (29 bytes, or 45 with the optional fields):
/// `device_time_us u32 | accel x y z f32 (m/s²) | gyro x y z f32 (rad/s) | flags u8` then, if
/// flags bit 0, `mag x y z f32 (tesla)`, and if bit 1, `temperature f32 (°C)`.
public struct IMUSampleMessage: Sendable, Equatable {
    public var deviceTimeMicros: UInt32
    public var accel: SIMD3<Float>
    public var gyro: SIMD3<Float>
    public var magnetometer: SIMD3<Float>?
    public var temperature: Float?

    public init(deviceTimeMicros: UInt32, accel: SIMD3<Float>, gyro: SIMD3<Float>,
                magnetometer: SIMD3<Float>? = nil, temperature: Float? = nil) {
        self.deviceTimeMicros = deviceTimeMicros
        self.accel = accel
        self.gyro = gyro
        self.magnetometer = magnetometer
        self.temperature = temperature
    }

    public var payloadCount: Int { 29 + (magnetometer == nil ? 0 : 12) + (temperature == nil ? 0 : 4) }

    public init?(payload p: UnsafeRawBufferPointer) {
        guard p.count >= 29 else { return nil }
        let flags = p[28]
        let expected = 29 + (flags & 1 != 0 ? 12 : 0) + (flags & 2 != 0 ? 4 : 0)
        guard p.count == expected, flags & ~3 == 0 else { return nil }
        deviceTimeMicros = p.uint32(at: 0)
        accel = SIMD3(p.float32(at: 4), p.float32(at: 8), p.float32(at: 12))
        gyro = SIMD3(p.float32(at: 16), p.float32(at: 20), p.float32(at: 24))
        var offset = 29
        if flags & 1 != 0 {
            magnetometer = SIMD3(p.float32(at: offset), p.float32(at: offset + 4), p.float32(at: offset + 8))
            offset += 12
        } else {
            magnetometer = nil
        }
        temperature = flags & 2 != 0 ? p.float32(at: offset) : nil
    }

    /// Writes the payload; returns its length.
    public func write(into p: UnsafeMutableRawBufferPointer) -> Int {
        p.put(deviceTimeMicros, at: 0)
        for i in 0..<3 { p.put(accel[i], at: 4 + 4 * i); p.put(gyro[i], at: 16 + 4 * i) }
        p[28] = (magnetometer == nil ? 0 : 1) | (temperature == nil ? 0 : 2)
        var offset = 29
        if let m = magnetometer { for i in 0..<3 { p.put(m[i], at: offset + 4 * i) }; offset += 12 }
        if let t = temperature { p.put(t, at: offset); offset += 4 }
        return offset
    }
}

/// Wheel encoders, type 0x21. Payload (12 bytes): `device_time_us u32 | left_ticks i32 | right_ticks i32`
/// (cumulative counts, wrapping).
public struct WheelEncodersMessage: Sendable, Equatable {
    public var deviceTimeMicros: UInt32
    public var leftTicks: Int32
    public var rightTicks: Int32
    public init(deviceTimeMicros: UInt32, leftTicks: Int32, rightTicks: Int32) {
        self.deviceTimeMicros = deviceTimeMicros
        self.leftTicks = leftTicks
        self.rightTicks = rightTicks
    }
    public init?(payload p: UnsafeRawBufferPointer) {
        guard p.count == 12 else { return nil }
        deviceTimeMicros = p.uint32(at: 0)
        leftTicks = p.int32(at: 4)
        rightTicks = p.int32(at: 8)
    }
    public func write(into p: UnsafeMutableRawBufferPointer) -> Int {
        p.put(deviceTimeMicros, at: 0)
        p.put(leftTicks, at: 4)
        p.put(rightTicks, at: 8)
        return 12
    }
}

/// Range sensor, type 0x22. Payload (9 bytes): `device_time_us u32 | range f32 (m) | status u8`
/// (0 valid, 1 below minimum, 2 above maximum / no echo, 3 sensor fault).
public struct RangeMessage: Sendable, Equatable {
    public var deviceTimeMicros: UInt32
    public var range: Float
    public var status: UInt8
    public init(deviceTimeMicros: UInt32, range: Float, status: UInt8 = 0) {
        self.deviceTimeMicros = deviceTimeMicros
        self.range = range
        self.status = status
    }
    public init?(payload p: UnsafeRawBufferPointer) {
        guard p.count == 9, p[8] <= 3 else { return nil }
        deviceTimeMicros = p.uint32(at: 0)
        range = p.float32(at: 4)
        status = p[8]
    }
    public func write(into p: UnsafeMutableRawBufferPointer) -> Int {
        p.put(deviceTimeMicros, at: 0)
        p.put(range, at: 4)
        p[8] = status
        return 9
    }
}

extension Frame {
    /// Encodes a sensor message into a complete wire frame (for firmware simulators and tests).
    public static func encode(_ type: MessageType, sequence: UInt8,
                              payload write: (UnsafeMutableRawBufferPointer) -> Int) -> [UInt8] {
        var payload = [UInt8](repeating: 0, count: maxPayload)
        let n = payload.withUnsafeMutableBytes { write($0) }
        return encode(type: type.rawValue, sequence: sequence, payload: Array(payload.prefix(n)))
    }
}
