import Planner

/// A stop goal: a goal that is one stop word alone, which the planner service holds at once — no
/// rate limit, no duplicate check, no model (docs/planner.md, "Goals"). The one definition of it:
/// the planner service decides with `isStop`, the goal inbox's MQTT thread recognises one with
/// `classify` (so that ordinary goals never push it out of the queue), and `robotd mcp` says
/// "held" with `isStop(ability:arguments:)`.
public enum StopGoal {
    /// The stop words, lower-case ASCII letters. Not `estop` or `e-stop`: a stop goal holds the
    /// planner's policies and latches nothing, and must not be taken for an emergency stop (the
    /// `estop` topic's).
    public static let words = ["stop", "halt", "abort"]

    /// The text is one stop word and nothing else, in any case, with blanks and punctuation
    /// around it (`Stop.`, ` STOP! `, `"halt"`); control and format characters count as absent,
    /// as `GoalTopic.text` drops them. A sentence that merely contains one (`stop by the door`) is
    /// not a stop.
    public static func isStop(_ text: String) -> Bool {
        var word = WordMatcher()
        for scalar in text.unicodeScalars where !word.failed { word.feed(scalar) }
        return word.verdict == .stopWord
    }

    /// A structured call (`AbilityCall`) that the robot takes for a stop goal: its text — the
    /// ability's name when it has no arguments — is one stop word (`stop`, `Halt`, `abort`).
    public static func isStop(ability: String, arguments: [String: Planner.JSONValue]) -> Bool {
        isStop(AbilityCall.text(.object(["ability": .string(ability), "arguments": .object(arguments)])))
    }

    // MARK: On the MQTT thread

    /// What a goal's payload is, judged from its bytes alone.
    enum PayloadClass: Sendable, Equatable {
        /// Not a stop goal.
        case ordinary
        /// A stop goal (plain text, `{"goal": …}` or a call of a stop word without arguments).
        case stop
        /// Possibly one: a form the parsers on the lane may read either way (escapes, repeated
        /// keys, numbers a parser may refuse, text that is not JSON after a `{`). Kept like a stop,
        /// and the first to give way when stops fill the queue.
        case unsure
    }

    /// The largest payload a goal may have: the lane's parsers refuse larger ones.
    static let payloadLimit = 4096

    /// What the planner service will make of `payload` as a goal, without parsing it into values:
    /// a pass over the bytes, no allocation. The lane still parses and decides; this is only how
    /// the goal inbox knows which goals must not give way to others. Exact for every form but the
    /// ones `unsure` names: a payload the lane takes for a stop is never `ordinary`.
    static func classify(_ payload: [UInt8]) -> PayloadClass {
        guard !payload.isEmpty, payload.count <= payloadLimit else { return .ordinary }
        let plain = verdict(of: payload[...])
        // `AbilityCall.parse` skips blanks before the `{`; `GoalTopic.text` parses JSON only when
        // the `{` comes first, and takes anything else for text.
        guard let open = payload.firstIndex(where: { !JSONScan.isBlank($0) }), payload[open] == UInt8(ascii: "{") else {
            return plain == .stopWord ? .stop : .ordinary
        }
        var scan = JSONScan(bytes: payload, at: open)
        var call: (count: Int, value: JSONScan.Value?) = (0, nil)
        var goal: (count: Int, value: JSONScan.Value?) = (0, nil)
        var keyEscaped = false
        let valid = scan.object { key, escaped, value in
            keyEscaped = keyEscaped || escaped
            if JSONScan.equals(payload[key], "call") { call = (call.count + 1, value) }
            if JSONScan.equals(payload[key], "goal") { goal = (goal.count + 1, value) }
        } && scan.atEnd && isUTF8(payload)
        // Not JSON: the lane takes it for text. (A stop word with blanks and punctuation around
        // it is never JSON; a parser more lenient than this scan might still read the rest.)
        guard valid else { return plain == .stopWord ? .stop : mentionsStopWord(payload[...]) ? .unsure : .ordinary }
        // Which "call" or "goal" a parser keeps, or what an escaped key says, is not looked into.
        if keyEscaped || call.count > 1 || goal.count > 1 { return mentionsStopWord(payload[...]) ? .unsure : .ordinary }
        let callClass = call.value.map { classify(call: $0, in: payload) }
        let goalClass: PayloadClass
        if open != payload.startIndex {
            goalClass = plain == .stopWord ? .stop : .ordinary
        } else if case .string(let range, let escaped)? = goal.value {
            goalClass = escaped ? .unsure : verdict(of: payload[range]) == .stopWord ? .stop : .ordinary
        } else {
            goalClass = .ordinary  // no goal, or not a string: the lane finds no goal in it
        }
        let plainClass: PayloadClass = plain == .stopWord ? .stop : .ordinary
        // A parser may refuse what this scan accepts (a number beyond a Double, an escape that is
        // a lone surrogate): then the lane reads the payload the next way — the call, else the
        // goal, else the text.
        guard scan.doubtful else { return callClass ?? goalClass }
        let ways = (callClass ?? goalClass, goalClass, plainClass)
        if ways == (.ordinary, .ordinary, .ordinary) { return .ordinary }
        return ways == (.stop, .stop, .stop) ? .stop : .unsure
    }

    /// `{"call": CALL}`: its text is `AbilityCall.text(CALL)`, the ability's name when it has no
    /// arguments.
    private static func classify(call: JSONScan.Value, in payload: [UInt8]) -> PayloadClass {
        guard case .object(let range) = call else { return .ordinary }  // "call …": never one word
        var scan = JSONScan(bytes: payload, at: range.lowerBound)
        var ability: (count: Int, value: JSONScan.Value?) = (0, nil)
        var arguments: (count: Int, value: JSONScan.Value?) = (0, nil)
        var keyEscaped = false
        _ = scan.object { key, escaped, value in
            keyEscaped = keyEscaped || escaped
            if JSONScan.equals(payload[key], "ability") { ability = (ability.count + 1, value) }
            if JSONScan.equals(payload[key], "arguments") { arguments = (arguments.count + 1, value) }
        }
        if keyEscaped || ability.count > 1 || arguments.count > 1 { return mentionsStopWord(payload[...]) ? .unsure : .ordinary }
        guard case .string(let name, let escaped)? = ability.value else { return .ordinary }  // "call …"
        if escaped { return .unsure }
        var noArguments = true
        if case .object(let given)? = arguments.value {
            var inner = JSONScan(bytes: payload, at: given.lowerBound)
            _ = inner.object { _, _, _ in noArguments = false }
        }
        // The text is cut at `AbilityCall.textLimit` characters (a name of fewer bytes is whole).
        let whole = name.count < AbilityCall.textLimit - 10
        let word = verdict(of: payload[name])
        if noArguments {
            guard whole else { return mentionsStopWord(payload[name]) ? .unsure : .ordinary }
            return word == .stopWord ? .stop : .ordinary
        }
        // `NAME(key value, …)`: one word only when the name is a stop word or nothing, and what
        // follows it blanks and punctuation.
        return word == .other && whole ? .ordinary : mentionsStopWord(payload[...]) ? .unsure : .ordinary
    }

    /// `bytes` as UTF-8 text (an invalid sequence is U+FFFD, as `String(decoding:as:)` makes it).
    private static func verdict(of bytes: ArraySlice<UInt8>) -> WordMatcher.Verdict {
        var word = WordMatcher()
        var parser = Unicode.UTF8.ForwardParser()
        var input = bytes.makeIterator()
        while !word.failed {
            switch parser.parseScalar(from: &input) {
            case .valid(let encoded): word.feed(Unicode.UTF8.decode(encoded))
            case .error: word.feed("\u{FFFD}")
            case .emptyInput: return word.verdict
            }
        }
        return .other
    }

    private static func isUTF8(_ bytes: [UInt8]) -> Bool {
        var parser = Unicode.UTF8.ForwardParser()
        var input = bytes.makeIterator()
        while true {
            switch parser.parseScalar(from: &input) {
            case .valid: continue
            case .error: return false
            case .emptyInput: return true
            }
        }
    }

    /// Whether a stop word could be read out of `bytes` at all: one of them in any case, control
    /// and format characters between its letters ignored, or an escape (`\`), which could spell
    /// one. Every stop goal's payload mentions one; most other goals do not.
    static func mentionsStopWord(_ bytes: ArraySlice<UInt8>) -> Bool {
        if bytes.contains(UInt8(ascii: "\\")) { return true }
        // The last 8 letters read (lower case; anything else a zero), packed as `packed` is.
        var recent: UInt64 = 0
        var parser = Unicode.UTF8.ForwardParser()
        var input = bytes.makeIterator()
        while true {
            let scalar: Unicode.Scalar
            switch parser.parseScalar(from: &input) {
            case .valid(let encoded): scalar = Unicode.UTF8.decode(encoded)
            case .error: scalar = "\u{FFFD}"
            case .emptyInput: return false
            }
            if WordMatcher.isDropped(scalar) { continue }
            recent = recent << 8 | UInt64(WordMatcher.letter(scalar) ?? 0)
            for word in packed where word.count < 8 && recent & ((1 << (8 * UInt64(word.count))) - 1) == word.letters { return true }
        }
    }

    /// The stop words packed as `WordMatcher` packs letters (8 bits each, at most 8).
    fileprivate static let packed: [(letters: UInt64, count: Int)] = words.map { word in
        (word.utf8.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }, word.utf8.count)
    }
}

/// One pass over a goal's characters: the core left between the blanks and punctuation at both
/// ends, compared with the stop words as it goes (no string is built).
struct WordMatcher {
    enum Verdict: Equatable { case empty, stopWord, other }

    private var letters: UInt64 = 0
    private var count = 0
    private var started = false
    /// A blank or punctuation after the core began: anything but more of them ends the match.
    private var trailing = false
    private(set) var failed = false

    mutating func feed(_ scalar: Unicode.Scalar) {
        guard !failed, !Self.isDropped(scalar) else { return }
        if Self.isBlankOrPunctuation(scalar) {
            trailing = started
            return
        }
        // Stop words are ASCII letters without a blank inside; case folds in ASCII only.
        guard !trailing, count < 8, let c = Self.letter(scalar) else {
            failed = true
            return
        }
        started = true
        letters = letters << 8 | UInt64(c)
        count += 1
    }

    var verdict: Verdict {
        if failed { return .other }
        if !started { return .empty }
        return StopGoal.packed.contains { $0.letters == letters && $0.count == count } ? .stopWord : .other
    }

    /// An ASCII letter, lower case; nil for anything else.
    static func letter(_ scalar: Unicode.Scalar) -> UInt8? {
        guard scalar.isASCII else { return nil }
        let c = UInt8(scalar.value) | 0x20
        return c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z") ? c : nil
    }

    /// What `GoalTopic.text` drops: control and format characters other than line breaks and tabs.
    static func isDropped(_ scalar: Unicode.Scalar) -> Bool {
        if scalar == "\n" || scalar == "\t" { return false }
        switch scalar.properties.generalCategory {
        case .control, .format: return true
        default: return false
        }
    }

    /// Blanks, line breaks and punctuation (Foundation's `whitespacesAndNewlines` and
    /// `punctuationCharacters`: Unicode's Z* and P*, tab and line breaks).
    static func isBlankOrPunctuation(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09...0x0D, 0x85: return true
        default: break
        }
        switch scalar.properties.generalCategory {
        case .spaceSeparator, .lineSeparator, .paragraphSeparator,
             .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }
}

/// A strict RFC 8259 scan of a goal's JSON without building values: where each member's key and
/// value are. For `StopGoal.classify` on the MQTT thread.
struct JSONScan {
    enum Value: Equatable {
        case object(Range<Int>)
        case string(Range<Int>, escaped: Bool)
        case array, number, literal
    }

    static let maxDepth = 32

    let bytes: [UInt8]
    private var i: Int
    private var depth = 0
    /// Something a parser may read otherwise: an escape (a lone surrogate), a number with an
    /// exponent or more digits than a Double keeps.
    private(set) var doubtful = false

    init(bytes: [UInt8], at start: Int) {
        self.bytes = bytes
        i = start
    }

    static func isBlank(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }

    static func equals(_ bytes: ArraySlice<UInt8>, _ word: StaticString) -> Bool {
        guard bytes.count == word.utf8CodeUnitCount else { return false }
        return word.withUTF8Buffer { bytes.elementsEqual($0) }
    }

    /// Only blanks after what was scanned.
    var atEnd: Bool {
        var j = i
        while j < bytes.count, Self.isBlank(bytes[j]) { j += 1 }
        return j == bytes.count
    }

    private mutating func skipBlanks() { while i < bytes.count, Self.isBlank(bytes[i]) { i += 1 } }

    private mutating func take(_ b: UInt8) -> Bool {
        guard i < bytes.count, bytes[i] == b else { return false }
        i += 1
        return true
    }

    /// The object at the current position, each member handed to `member` (the key's bytes
    /// between its quotes, whether it has an escape, the value); false: not JSON.
    mutating func object(_ member: (Range<Int>, Bool, Value) -> Void) -> Bool {
        skipBlanks()
        guard depth < Self.maxDepth, take(UInt8(ascii: "{")) else { return false }
        depth += 1
        defer { depth -= 1 }
        skipBlanks()
        if take(UInt8(ascii: "}")) { return true }
        while true {
            skipBlanks()
            guard let (key, escaped) = string() else { return false }
            skipBlanks()
            guard take(UInt8(ascii: ":")), let value = value() else { return false }
            member(key, escaped, value)
            skipBlanks()
            if take(UInt8(ascii: ",")) { continue }
            return take(UInt8(ascii: "}"))
        }
    }

    private mutating func value() -> Value? {
        skipBlanks()
        guard i < bytes.count else { return nil }
        let start = i
        switch bytes[i] {
        case UInt8(ascii: "{"):
            return object { _, _, _ in } ? .object(start..<i) : nil
        case UInt8(ascii: "["):
            guard depth < Self.maxDepth else { return nil }
            depth += 1
            defer { depth -= 1 }
            i += 1
            skipBlanks()
            if take(UInt8(ascii: "]")) { return .array }
            while true {
                guard value() != nil else { return nil }
                skipBlanks()
                if take(UInt8(ascii: ",")) { continue }
                return take(UInt8(ascii: "]")) ? .array : nil
            }
        case UInt8(ascii: "\""):
            return string().map { .string($0.0, escaped: $0.1) }
        case UInt8(ascii: "t"): return literal("true")
        case UInt8(ascii: "f"): return literal("false")
        case UInt8(ascii: "n"): return literal("null")
        default: return number()
        }
    }

    private mutating func literal(_ word: StaticString) -> Value? {
        let end = i + word.utf8CodeUnitCount
        guard end <= bytes.count, Self.equals(bytes[i..<end], word) else { return nil }
        i = end
        return .literal
    }

    private mutating func number() -> Value? {
        let start = i
        _ = take(UInt8(ascii: "-"))
        let integer = i
        guard digits() > 0 else { return nil }
        if bytes[integer] == UInt8(ascii: "0"), i - integer > 1 { return nil }  // no leading zero
        if take(UInt8(ascii: ".")), digits() == 0 { return nil }
        if take(UInt8(ascii: "e")) || take(UInt8(ascii: "E")) {
            doubtful = true
            if !take(UInt8(ascii: "+")) { _ = take(UInt8(ascii: "-")) }
            guard digits() > 0 else { return nil }
        }
        if i - start > 16 { doubtful = true }
        return .number
    }

    private mutating func digits() -> Int {
        let start = i
        while i < bytes.count, bytes[i] >= UInt8(ascii: "0"), bytes[i] <= UInt8(ascii: "9") { i += 1 }
        return i - start
    }

    /// A string at the current position: its bytes between the quotes, and whether it has an escape.
    private mutating func string() -> (Range<Int>, Bool)? {
        guard take(UInt8(ascii: "\"")) else { return nil }
        let start = i
        var escaped = false
        while i < bytes.count {
            let b = bytes[i]
            switch b {
            case UInt8(ascii: "\""):
                i += 1
                return (start..<(i - 1), escaped)
            case UInt8(ascii: "\\"):
                escaped = true
                doubtful = true
                i += 1
                guard i < bytes.count else { return nil }
                switch bytes[i] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                     UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    i += 1
                case UInt8(ascii: "u"):
                    guard i + 4 < bytes.count, bytes[(i + 1)...(i + 4)].allSatisfy(\.isHexDigit) else { return nil }
                    i += 5
                default:
                    return nil
                }
            case 0..<0x20:
                return nil  // a control character must be escaped
            default:
                i += 1
            }
        }
        return nil
    }
}

extension UInt8 {
    fileprivate var isHexDigit: Bool {
        (self >= UInt8(ascii: "0") && self <= UInt8(ascii: "9")) || (self | 0x20 >= UInt8(ascii: "a") && self | 0x20 <= UInt8(ascii: "f"))
    }
}
