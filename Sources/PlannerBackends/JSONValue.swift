import Foundation

/// A JSON document as a tree: what a plan arrives as before it is judged, what the plan schema is
/// built from, and how that schema travels inside a request body. Decoding with `JSONDecoder`
/// reports where a value is that no `Double` can hold (`1e999`), instead of losing the place;
/// `text` and `data` sort keys, so the same value always gives the same bytes.
///
/// The one JSON tree of the planner's libraries: `Planner` names it `Planner.JSONValue` too (a type alias).
public enum JSONValue: Sendable, Equatable, Codable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// A number in the document that a `Double` cannot hold (beyond ±1.8e308): not a finite
    /// number, at `codingPath`.
    public struct UnrepresentableNumber: Error, Sendable {
        public var path: String
    }

    /// Parses JSON text (a schema given as text); throws `PlanBackendError.configuration` when it
    /// is not JSON.
    public init(parsing text: String) throws {
        do {
            self = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        } catch let error as UnrepresentableNumber {
            throw PlanBackendError.configuration("the schema has a number no Double can hold at \(error.path.isEmpty ? "the top" : error.path)")
        } catch {
            throw PlanBackendError.configuration("the schema is not JSON (\(error.localizedDescription))")
        }
    }

    public init(from decoder: any Decoder) throws {
        // Containers first: their children are decoded with `try`, so an error deep inside keeps
        // its coding path instead of turning into "not an array".
        if var list = try? decoder.unkeyedContainer() {
            var items: [JSONValue] = []
            while !list.isAtEnd { items.append(try list.decode(JSONValue.self)) }
            self = .array(items)
            return
        }
        if let map = try? decoder.container(keyedBy: JSONKey.self) {
            var entries: [String: JSONValue] = [:]
            for key in map.allKeys { entries[key.stringValue] = try map.decode(JSONValue.self, forKey: key) }
            self = .object(entries)
            return
        }
        let single = try decoder.singleValueContainer()
        if single.decodeNil() {
            self = .null
        } else if let b = try? single.decode(Bool.self) {
            self = .bool(b)
        } else if let d = try? single.decode(Double.self) {
            self = .number(d)
        } else if let s = try? single.decode(String.self) {
            self = .string(s)
        } else {
            // JSON has no other scalar: a number too large for a Double.
            throw UnrepresentableNumber(path: JSONValue.path(decoder.codingPath))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .null:
            var c = encoder.singleValueContainer()
            try c.encodeNil()
        case .bool(let b):
            var c = encoder.singleValueContainer()
            try c.encode(b)
        case .number(let d):
            var c = encoder.singleValueContainer()
            // JSON has no NaN or infinity: such a number is written as null, never as a crash.
            if d.isFinite { try c.encode(d) } else { try c.encodeNil() }
        case .string(let s):
            var c = encoder.singleValueContainer()
            try c.encode(s)
        case .array(let items):
            var c = encoder.unkeyedContainer()
            for item in items { try c.encode(item) }
        case .object(let entries):
            var c = encoder.container(keyedBy: JSONKey.self)
            for (key, value) in entries { try c.encode(value, forKey: JSONKey(key)) }
        }
    }

    /// Compact JSON with sorted keys: the same value gives the same text.
    public var text: String {
        String(decoding: data, as: UTF8.self)
    }

    /// Compact JSON with sorted keys.
    public var data: Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding a tree of finite numbers, strings and containers cannot fail; an empty
        // document would be the only outcome of an impossible failure.
        return (try? encoder.encode(self)) ?? Data()
    }

    /// `steps[0].arguments.x` from a decoder's coding path.
    static func path(_ codingPath: [any CodingKey]) -> String {
        codingPath.reduce("") { path, key in
            if let index = key.intValue { return "\(path)[\(index)]" }
            return path.isEmpty ? key.stringValue : "\(path).\(key.stringValue)"
        }
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let entries) = self { entries[key] } else { nil }
    }

    /// What this value is, in words (for "expected a number, got …"). A string is a model's text
    /// and these words travel on (back to the model, onto the `plan` topic, into the memory): it is
    /// clipped and escaped as the validator's messages repeat an answer's text (`AnswerText`).
    public var kindText: String {
        switch self {
        case .null: "null"
        case .bool(let b): "`\(b)`"
        case .number(let d): "the number \(d)"
        case .string(let s): "the string \(AnswerText.quoted(s))"
        case .array: "a list"
        case .object: "an object"
        }
    }
}

/// A coding key for objects whose keys are data.
struct JSONKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
