/// A YAML value whose shape is known only to the kind that reads it (a policy's parameters, an input
/// kind's settings): kept as a tree, checked against the kind's `FieldSpec`s before anything runs,
/// then decoded by the kind into its own Codable type (`decode(_:)`).
public indirect enum ConfigValue: Sendable, Equatable, Codable {
    case bool(Bool)
    case number(Double)
    case string(String)
    case list([ConfigValue])
    /// Keys in file order (order matters to a reader of error messages and of `check`'s output).
    case map([Entry])

    public struct Entry: Sendable, Equatable {
        public var key: String
        public var value: ConfigValue
        public init(key: String, value: ConfigValue) {
            self.key = key
            self.value = value
        }
    }

    public init(from decoder: any Decoder) throws {
        if var list = try? decoder.unkeyedContainer() {
            var items: [ConfigValue] = []
            while !list.isAtEnd { items.append(try list.decode(ConfigValue.self)) }
            self = .list(items)
        } else if let map = try? decoder.container(keyedBy: AnyKey.self) {
            self = .map(try map.allKeys.map { Entry(key: $0.stringValue, value: try map.decode(ConfigValue.self, forKey: $0)) })
        } else {
            let single = try decoder.singleValueContainer()
            if let b = try? single.decode(Bool.self) {
                self = .bool(b)
            } else if let d = try? single.decode(Double.self) {
                self = .number(d)
            } else {
                self = .string(try single.decode(String.self))
            }
        }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .bool(let b):
            var c = encoder.singleValueContainer()
            try c.encode(b)
        case .number(let d):
            var c = encoder.singleValueContainer()
            try c.encode(d)
        case .string(let s):
            var c = encoder.singleValueContainer()
            try c.encode(s)
        case .list(let items):
            var c = encoder.unkeyedContainer()
            for item in items { try c.encode(item) }
        case .map(let entries):
            var c = encoder.container(keyedBy: AnyKey.self)
            for e in entries { try c.encode(e.value, forKey: AnyKey(e.key)) }
        }
    }

    /// The value under `key` of a map (nil for other values or a missing key).
    public subscript(key: String) -> ConfigValue? {
        guard case .map(let entries) = self else { return nil }
        return entries.first { $0.key == key }?.value
    }

    public static let emptyMap = ConfigValue.map([])
}

/// A coding key for maps whose keys are data.
struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
