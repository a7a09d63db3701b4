/// The quick ASCII form for Arduino sketches: one sample per line, `key=value` pairs separated
/// by spaces or commas, values as decimal numbers: `ax=0.12 ay=-0.03 az=9.81 t=1234`.
public enum KeyValueLine {
    public enum ParseError: Error, Equatable, Sendable {
        case empty
        case malformedPair(String)
        case badNumber(key: String)
        case badKey(String)
    }

    /// Parses one line into (key, value) pairs in order.
    public static func parse(_ line: Substring) -> Result<[(key: String, value: Double)], ParseError> {
        var pairs: [(key: String, value: Double)] = []
        for token in line.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "\t" || $0 == "\r" || $0 == ";" }) {
            guard let eq = token.firstIndex(of: "="), eq != token.startIndex else { return .failure(.malformedPair(String(token))) }
            let key = token[..<eq]
            guard let first = key.unicodeScalars.first, first.properties.isAlphabetic || first == "_",
                  key.unicodeScalars.allSatisfy({ $0.properties.isAlphabetic || $0 == "_" || $0 == "." || ("0"..."9").contains($0) })
            else { return .failure(.badKey(String(key))) }
            guard let value = Double(token[token.index(after: eq)...]), value.isFinite else {
                return .failure(.badNumber(key: String(key)))
            }
            pairs.append((String(key), value))
        }
        return pairs.isEmpty ? .failure(.empty) : .success(pairs)
    }
}

/// Splits a byte stream into lines of `key=value` pairs; counts what it rejects.
public struct KeyValueLineDecoder: Sendable {
    public static let maxLine = 256
    public private(set) var pending: [UInt8] = []
    public private(set) var lines = 0
    public private(set) var rejectedLines = 0
    public private(set) var bytesAccepted = 0
    public private(set) var bytesRejected = 0

    public init() {}

    public mutating func feed<C: Collection<UInt8>>(_ bytes: C, deliver: ([(key: String, value: Double)]) -> Void) {
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                let count = pending.count + 1
                let text = String(decoding: pending, as: UTF8.self)
                pending.removeAll(keepingCapacity: true)
                switch KeyValueLine.parse(text[...]) {
                case .success(let pairs):
                    lines += 1
                    bytesAccepted += count
                    deliver(pairs)
                case .failure:
                    rejectedLines += 1
                    bytesRejected += count
                }
                continue
            }
            pending.append(byte)
            if pending.count > Self.maxLine {
                rejectedLines += 1
                bytesRejected += pending.count
                pending.removeAll(keepingCapacity: true)
            }
        }
    }
}
