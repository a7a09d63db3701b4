import Codecs
import Transports

/// Decodes what one serial input sends and renders it as JSON lines: the first thing a robot
/// builder runs when wiring a sensor. Fields are SI; positions in decimal degrees.
public struct SerialEcho: ~Copyable {
    public enum Codec: String, Sendable, CaseIterable { case nmea, frame, kv }

    public let source: String
    public let codec: Codec
    private var nmea = NMEALineDecoder()
    private var frames = FrameDecoder()
    private var kv = KeyValueLineDecoder()
    public private(set) var unknownFrameTypes = 0
    public private(set) var malformedPayloads = 0

    public init(source: String, codec: Codec) {
        self.source = source
        self.codec = codec
    }

    public mutating func feed(_ bytes: UnsafeRawBufferPointer, arrival: Int64, emit: (String) -> Void) {
        func line(_ kind: String, _ fill: (inout JSONLine) -> Void) -> String {
            var json = JSONLine()
            json.add("source", source)
            json.add("arrival_ns", arrival)
            json.add("kind", kind)
            fill(&json)
            return json.text
        }
        switch codec {
        case .nmea:
            nmea.feed(bytes) { sentence in
                switch sentence {
                case .gga(let g):
                    emit(line("gga") { j in
                        j.add("talker", g.talker); j.add("utc_s", g.utcSeconds); j.add("latitude_deg", g.latitude)
                        j.add("longitude_deg", g.longitude); j.add("fix_quality", g.fixQuality)
                        j.add("satellites", g.satellites.map(Double.init)); j.add("hdop", g.hdop); j.add("altitude_m", g.altitude)
                    })
                case .rmc(let r):
                    emit(line("rmc") { j in
                        j.add("talker", r.talker); j.add("utc_s", r.utcSeconds); j.add("valid", r.valid)
                        j.add("latitude_deg", r.latitude); j.add("longitude_deg", r.longitude); j.add("speed_m_s", r.speed)
                        j.add("course_deg", r.course)
                    })
                case .hdt(let h):
                    emit(line("hdt") { j in j.add("talker", h.talker); j.add("heading_deg", h.heading) })
                case .unsupported(let talker, let type):
                    emit(line("nmea-unsupported") { j in j.add("talker", talker); j.add("type", type) })
                }
            }
        case .kv:
            kv.feed(bytes) { pairs in
                emit(line("kv") { j in for (k, v) in pairs { j.add(k, v) } })
            }
        case .frame:
            var unknown = 0, malformed = 0
            frames.feed(bytes) { view in
                switch Frame.MessageType(rawValue: view.type) {
                case .imuSample:
                    guard let m = IMUSampleMessage(payload: view.payload) else { malformed += 1; return }
                    emit(line("imu") { j in
                        j.add("seq", Int(view.sequence)); j.add("device_time_us", Int64(m.deviceTimeMicros))
                        j.add("accel_m_s2", vector: [Double(m.accel.x), Double(m.accel.y), Double(m.accel.z)])
                        j.add("gyro_rad_s", vector: [Double(m.gyro.x), Double(m.gyro.y), Double(m.gyro.z)])
                        if let mag = m.magnetometer { j.add("mag_t", vector: [Double(mag.x), Double(mag.y), Double(mag.z)]) }
                        if let t = m.temperature { j.add("temperature_c", Double(t)) }
                    })
                case .wheelEncoders:
                    guard let m = WheelEncodersMessage(payload: view.payload) else { malformed += 1; return }
                    emit(line("encoders") { j in
                        j.add("seq", Int(view.sequence)); j.add("device_time_us", Int64(m.deviceTimeMicros))
                        j.add("left_ticks", Int(m.leftTicks)); j.add("right_ticks", Int(m.rightTicks))
                    })
                case .range:
                    guard let m = RangeMessage(payload: view.payload) else { malformed += 1; return }
                    emit(line("range") { j in
                        j.add("seq", Int(view.sequence)); j.add("device_time_us", Int64(m.deviceTimeMicros))
                        j.add("range_m", Double(m.range)); j.add("status", Int(m.status))
                    })
                case .motorCommand:
                    guard let m = MotorCommandMessage(payload: view.payload) else { malformed += 1; return }
                    emit(line("motor-command") { j in
                        j.add("seq", Int(view.sequence)); j.add("channel", Int(m.channel)); j.add("value", Double(m.value))
                        j.add("deenergize", m.deenergize)
                    })
                case .heartbeat:
                    emit(line("heartbeat") { j in j.add("seq", Int(view.sequence)) })
                case nil:
                    unknown += 1
                }
            }
            unknownFrameTypes += unknown
            malformedPayloads += malformed
        }
    }

    /// Counters of rejected input, for the summary printed on exit.
    public var summary: String {
        var j = JSONLine()
        j.add("source", source)
        j.add("kind", "summary")
        switch codec {
        case .nmea:
            j.add("sentences", nmea.sentences); j.add("unsupported", nmea.unsupported)
            j.add("rejected_lines", nmea.rejectedLines); j.add("checksum_errors", nmea.checksumErrors)
            j.add("bytes_accepted", nmea.bytesAccepted); j.add("bytes_rejected", nmea.bytesRejected)
        case .kv:
            j.add("lines", kv.lines); j.add("rejected_lines", kv.rejectedLines)
            j.add("bytes_accepted", kv.bytesAccepted); j.add("bytes_rejected", kv.bytesRejected)
        case .frame:
            j.add("frames", frames.framesDecoded); j.add("rejected_frames", frames.framesRejected)
            j.add("unknown_types", unknownFrameTypes); j.add("malformed_payloads", malformedPayloads)
            j.add("bytes_accepted", frames.bytesDecoded); j.add("bytes_rejected", frames.bytesRejected)
        }
        return j.text
    }
}
