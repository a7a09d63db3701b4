import Foundation

/// One JSON object per line with keys in insertion order — what `robotd echo` prints, readable by
/// `jq` and any log shipper. Numbers that are not finite are written as null.
public struct JSONLine: Sendable {
    private var parts: [String] = []
    public init() {}

    public mutating func add(_ key: String, _ value: String) { parts.append("\(Self.quote(key)):\(Self.quote(value))") }
    public mutating func add(_ key: String, _ value: Double?) {
        guard let value, value.isFinite else { parts.append("\(Self.quote(key)):null"); return }
        parts.append("\(Self.quote(key)):\(Self.number(value))")
    }
    public mutating func add(_ key: String, _ value: Int64) { parts.append("\(Self.quote(key)):\(value)") }
    public mutating func add(_ key: String, _ value: Int) { parts.append("\(Self.quote(key)):\(value)") }
    public mutating func add(_ key: String, _ value: Bool) { parts.append("\(Self.quote(key)):\(value)") }
    public mutating func add(_ key: String, vector: [Double]) {
        parts.append("\(Self.quote(key)):[\(vector.map { $0.isFinite ? Self.number($0) : "null" }.joined(separator: ","))]")
    }
    public mutating func add(_ key: String, strings: [String]) {
        parts.append("\(Self.quote(key)):[\(strings.map(Self.quote).joined(separator: ","))]")
    }
    public mutating func addRaw(_ key: String, json: String) { parts.append("\(Self.quote(key)):\(json)") }

    public var text: String { "{" + parts.joined(separator: ",") + "}" }

    static func number(_ v: Double) -> String {
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return "\(v)"
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 { out += String(format: "\\u%04x", scalar.value) } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + "\""
    }
}
