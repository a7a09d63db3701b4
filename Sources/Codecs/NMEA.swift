/// NMEA 0183 sentences: `$TTSSS,field,…*HH\r\n`, checksum = XOR of the bytes between `$` and `*`.
/// Positions are converted to decimal degrees (south and west negative), speeds to m/s, times to
/// seconds since midnight UTC.
public enum NMEA {
    public struct GGA: Sendable, Equatable {
        public var talker: String
        public var utcSeconds: Double?
        public var latitude: Double?
        public var longitude: Double?
        /// 0 invalid, 1 GPS, 2 DGPS, 4 RTK fixed, 5 RTK float, …
        public var fixQuality: Int
        public var satellites: Int?
        public var hdop: Double?
        /// Metres above mean sea level.
        public var altitude: Double?
        /// Geoid separation, metres.
        public var geoidSeparation: Double?
    }

    public struct RMC: Sendable, Equatable {
        public var talker: String
        public var utcSeconds: Double?
        /// A = valid, V = warning.
        public var valid: Bool
        public var latitude: Double?
        public var longitude: Double?
        /// Speed over ground, m/s (converted from knots).
        public var speed: Double?
        /// Course over ground, degrees true.
        public var course: Double?
        /// Day, month, year (4 digits).
        public var date: (day: Int, month: Int, year: Int)?
        public var magneticVariation: Double?

        public static func == (a: RMC, b: RMC) -> Bool {
            a.talker == b.talker && a.utcSeconds == b.utcSeconds && a.valid == b.valid && a.latitude == b.latitude
                && a.longitude == b.longitude && a.speed == b.speed && a.course == b.course
                && a.date?.day == b.date?.day && a.date?.month == b.date?.month && a.date?.year == b.date?.year
                && a.magneticVariation == b.magneticVariation
        }
    }

    public struct HDT: Sendable, Equatable {
        public var talker: String
        /// Heading, degrees true.
        public var heading: Double
    }

    public enum Sentence: Sendable, Equatable {
        case gga(GGA)
        case rmc(RMC)
        case hdt(HDT)
        /// A well-formed sentence of a type robotd does not decode (counted, not an error).
        case unsupported(talker: String, type: String)
    }

    public enum ParseError: Error, Equatable, Sendable {
        case noStart
        case noChecksum
        case badChecksum(expected: UInt8, found: UInt8)
        case malformed(String)
    }

    public static let knotsToMetresPerSecond = 1852.0 / 3600.0

    /// Parses one line (without or with the trailing CR/LF).
    public static func parse(_ line: Substring) -> Result<Sentence, ParseError> {
        var text = line
        while let last = text.last, last == "\r" || last == "\n" { text = text.dropLast() }
        guard let first = text.first, first == "$" || first == "!" else { return .failure(.noStart) }
        guard let star = text.lastIndex(of: "*") else { return .failure(.noChecksum) }
        let body = text[text.index(after: text.startIndex)..<star]
        let checksumText = text[text.index(after: star)...]
        guard checksumText.count == 2, let found = UInt8(checksumText, radix: 16) else { return .failure(.noChecksum) }
        let expected = body.utf8.reduce(UInt8(0)) { $0 ^ $1 }
        guard expected == found else { return .failure(.badChecksum(expected: expected, found: found)) }
        let fields = body.split(separator: ",", omittingEmptySubsequences: false)
        guard let address = fields.first, address.count >= 5 else { return .failure(.malformed("address")) }
        let talker = String(address.prefix(address.count - 3))
        let type = String(address.suffix(3))
        func f(_ i: Int) -> Substring { i < fields.count ? fields[i] : "" }
        switch type {
        case "GGA":
            guard fields.count >= 10 else { return .failure(.malformed("GGA needs 14 fields")) }
            return .success(.gga(GGA(
                talker: talker, utcSeconds: time(f(1)), latitude: coordinate(f(2), f(3), degreeDigits: 2),
                longitude: coordinate(f(4), f(5), degreeDigits: 3), fixQuality: Int(f(6)) ?? 0,
                satellites: Int(f(7)), hdop: Double(f(8)), altitude: Double(f(9)), geoidSeparation: Double(f(11)))))
        case "RMC":
            guard fields.count >= 10 else { return .failure(.malformed("RMC needs 12 fields")) }
            var variation = Double(f(10))
            if f(11) == "W", let v = variation { variation = -v }
            return .success(.rmc(RMC(
                talker: talker, utcSeconds: time(f(1)), valid: f(2) == "A",
                latitude: coordinate(f(3), f(4), degreeDigits: 2), longitude: coordinate(f(5), f(6), degreeDigits: 3),
                speed: Double(f(7)).map { $0 * knotsToMetresPerSecond }, course: Double(f(8)), date: date(f(9)),
                magneticVariation: variation)))
        case "HDT":
            guard let heading = Double(f(1)) else { return .failure(.malformed("HDT heading")) }
            return .success(.hdt(HDT(talker: talker, heading: heading)))
        default:
            return .success(.unsupported(talker: talker, type: type))
        }
    }

    /// `ddmm.mmmm` (or `dddmm.mmmm`) and a hemisphere letter → signed decimal degrees.
    static func coordinate(_ value: Substring, _ hemisphere: Substring, degreeDigits: Int) -> Double? {
        guard value.count > degreeDigits, let degrees = Double(value.prefix(degreeDigits)),
              let minutes = Double(value.dropFirst(degreeDigits)), minutes < 60 else { return nil }
        let magnitude = degrees + minutes / 60
        switch hemisphere {
        case "N", "E": return magnitude
        case "S", "W": return -magnitude
        default: return nil
        }
    }

    /// `hhmmss(.sss)` → seconds since midnight.
    static func time(_ value: Substring) -> Double? {
        guard value.count >= 6, let h = Double(value.prefix(2)), let m = Double(value.dropFirst(2).prefix(2)),
              let s = Double(value.dropFirst(4)), h < 24, m < 60, s < 61 else { return nil }
        return h * 3600 + m * 60 + s
    }

    /// `ddmmyy` → (day, month, year); two-digit years are 1980…2079, as GPS receivers use.
    static func date(_ value: Substring) -> (day: Int, month: Int, year: Int)? {
        guard value.count == 6, let d = Int(value.prefix(2)), let m = Int(value.dropFirst(2).prefix(2)),
              let y = Int(value.suffix(2)), (1...31).contains(d), (1...12).contains(m) else { return nil }
        return (d, m, y < 80 ? 2000 + y : 1900 + y)
    }
}

/// Splits a byte stream into lines and parses NMEA sentences. Every byte ends up in a parsed
/// sentence, a rejected line, or the pending buffer; rejected lines are counted by reason.
public struct NMEALineDecoder: Sendable {
    public static let maxLine = 128  // the standard says 82; some receivers send longer proprietary lines
    public private(set) var pending: [UInt8] = []
    public private(set) var sentences = 0
    public private(set) var unsupported = 0
    public private(set) var rejectedLines = 0
    public private(set) var checksumErrors = 0
    public private(set) var bytesAccepted = 0
    public private(set) var bytesRejected = 0

    public init() {}

    public mutating func feed<C: Collection<UInt8>>(_ bytes: C, deliver: (NMEA.Sentence) -> Void) {
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                let count = pending.count + 1
                let line = String(decoding: pending, as: UTF8.self)
                pending.removeAll(keepingCapacity: true)
                if line.allSatisfy({ $0 == "\r" }) { bytesRejected += count; continue }  // empty line
                switch NMEA.parse(line[...]) {
                case .success(let sentence):
                    bytesAccepted += count
                    if case .unsupported = sentence { unsupported += 1 } else { sentences += 1 }
                    deliver(sentence)
                case .failure(let error):
                    bytesRejected += count
                    rejectedLines += 1
                    if case .badChecksum = error { checksumErrors += 1 }
                }
                continue
            }
            if byte == UInt8(ascii: "$") || byte == UInt8(ascii: "!"), !pending.isEmpty {
                // A new sentence starts before the old one ended: the old one is garbage.
                bytesRejected += pending.count
                rejectedLines += 1
                pending.removeAll(keepingCapacity: true)
            }
            pending.append(byte)
            if pending.count > Self.maxLine {
                bytesRejected += pending.count
                rejectedLines += 1
                pending.removeAll(keepingCapacity: true)
            }
        }
    }
}
