import Glibc
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
    /// a pass or two over the bytes, no allocation. The lane still parses and decides; this is only
    /// how the goal inbox knows which goals must not give way to others. Exact for every form but
    /// the ones `unsure` names: a payload the lane takes for a stop is never `ordinary`.
    static func classify(_ payload: [UInt8]) -> PayloadClass {
        guard !payload.isEmpty, payload.count <= payloadLimit else { return .ordinary }
        return payload.withUnsafeBufferPointer { classify(Bytes(p: $0)) }
    }

    private static func classify(_ b: Bytes) -> PayloadClass {
        let all = 0..<b.p.count
        // Most goals: no stop word in them anywhere, so none can be read out of them. Past this
        // point the payload mentions one.
        if b.plainlyWithoutStopWord { return .ordinary }
        guard b.mentionsStopWord(all) else { return .ordinary }
        let plain: PayloadClass = b.verdict(all) == .stopWord ? .stop : .ordinary
        // `AbilityCall.parse` skips blanks before the `{`; `GoalTopic.text` parses JSON only when
        // the `{` comes first, and takes anything else for text.
        var open = 0
        while open < all.upperBound, JSONScan.isBlank(b.p[open]) { open += 1 }
        guard open < all.upperBound, b.p[open] == 0x7B else { return plain }
        var scan = JSONScan(b, at: open)
        var call: (count: Int, value: JSONScan.Value?) = (0, nil)
        var goal: (count: Int, value: JSONScan.Value?) = (0, nil)
        var keyEscaped = false
        let valid = scan.object { key, escaped, value in
            keyEscaped = keyEscaped || escaped
            if b.equals(key, "call") { call = (call.count + 1, value) }
            if b.equals(key, "goal") { goal = (goal.count + 1, value) }
        } && scan.atEnd && b.isUTF8
        // Not JSON: the lane takes it for text. (A stop word with blanks and punctuation around
        // it is never JSON; a parser more lenient than this scan might still read the rest.)
        guard valid else { return plain == .stop ? .stop : .unsure }
        // Which "call" or "goal" a parser keeps, or what an escaped key says, is not looked into.
        if keyEscaped || call.count > 1 || goal.count > 1 { return .unsure }
        let callClass = call.value.map { classify(call: $0, in: b) }
        let goalClass: PayloadClass
        if open != 0 {
            goalClass = plain
        } else if case .string(let range, let escaped)? = goal.value {
            goalClass = escaped ? .unsure : b.verdict(range) == .stopWord ? .stop : .ordinary
        } else {
            goalClass = .ordinary  // no goal, or not a string: the lane finds no goal in it
        }
        // A parser may refuse what this scan accepts (a number beyond a Double, an escape that is
        // a lone surrogate): then the lane reads the payload the next way — the call, else the
        // goal, else the text.
        guard scan.doubtful else { return callClass ?? goalClass }
        let ways = (callClass ?? goalClass, goalClass, plain)
        if ways == (.ordinary, .ordinary, .ordinary) { return .ordinary }
        return ways == (.stop, .stop, .stop) ? .stop : .unsure
    }

    /// `{"call": CALL}` in a payload that mentions a stop word: its text is
    /// `AbilityCall.text(CALL)`, the ability's name when it has no arguments.
    private static func classify(call: JSONScan.Value, in b: Bytes) -> PayloadClass {
        guard case .object(let range) = call else { return .ordinary }  // "call …": never one word
        var scan = JSONScan(b, at: range.lowerBound)
        var ability: (count: Int, value: JSONScan.Value?) = (0, nil)
        var arguments: (count: Int, value: JSONScan.Value?) = (0, nil)
        var keyEscaped = false
        _ = scan.object { key, escaped, value in
            keyEscaped = keyEscaped || escaped
            if b.equals(key, "ability") { ability = (ability.count + 1, value) }
            if b.equals(key, "arguments") { arguments = (arguments.count + 1, value) }
        }
        if keyEscaped || ability.count > 1 || arguments.count > 1 { return .unsure }
        guard case .string(let name, let escaped)? = ability.value else { return .ordinary }  // "call …"
        if escaped { return .unsure }
        var noArguments = true
        if case .object(let given)? = arguments.value {
            var inner = JSONScan(b, at: given.lowerBound)
            _ = inner.object { _, _, _ in noArguments = false }
        }
        // The text is cut at `AbilityCall.textLimit` characters (a name of fewer bytes is whole).
        let whole = name.count < AbilityCall.textLimit - 10
        let word = b.verdict(name)
        if noArguments {
            guard whole else { return b.mentionsStopWord(name) ? .unsure : .ordinary }
            return word == .stopWord ? .stop : .ordinary
        }
        // `NAME(key value, …)`: one word only when the name is a stop word or nothing, and what
        // follows it blanks and punctuation.
        return word == .other && whole ? .ordinary : .unsure
    }

    /// The stop words packed as `WordMatcher` packs letters (8 bits each, at most 7), their
    /// length in the top byte.
    fileprivate static let packed: [UInt64] = words.map { word in
        word.utf8.reduce(UInt64(0)) { $0 << 8 | UInt64($1) } | UInt64(word.utf8.count) << 56
    }

    /// Whether the last `count` letters of `letters` (packed as `packed`) are a stop word.
    fileprivate static func isStopWord(_ letters: UInt64, count: Int) -> Bool {
        guard count > 0, count < 8 else { return false }
        let word = letters & (UInt64(1) << (8 * UInt64(count)) - 1) | UInt64(count) << 56
        return packed.withUnsafeBufferPointer { words in
            for k in 0..<words.count where words[k] == word { return true }
            return false
        }
    }

    /// The letters a stop word ends with, a bit each (`a` the lowest).
    fileprivate static let lastLetters: UInt32 = words.reduce(0) { $0 | 1 << UInt32(($1.utf8.last ?? 0x61) - 0x61) }
}

/// A payload's bytes, borrowed for one classification.
struct Bytes {
    let p: UnsafeBufferPointer<UInt8>

    /// The scalar at `i` (not ASCII) and its length; U+FFFD for an invalid sequence, as
    /// `String(decoding:as:)` makes it.
    func scalar(at i: Int, before end: Int) -> (Unicode.Scalar, Int) {
        var parser = Unicode.UTF8.ForwardParser()
        var input = UnsafeBufferPointer(rebasing: p[i..<end]).makeIterator()
        switch parser.parseScalar(from: &input) {
        case .valid(let encoded): return (Unicode.UTF8.decode(encoded), encoded.count)
        case .error(let length): return ("\u{FFFD}", max(1, length))
        case .emptyInput: return ("\u{FFFD}", 1)
        }
    }

    /// The bytes of `range` as UTF-8 text.
    func verdict(_ range: Range<Int>) -> WordMatcher.Verdict {
        var word = WordMatcher()
        var i = range.lowerBound
        while i < range.upperBound, !word.failed {
            let byte = p[i]
            if byte < 0x80 {
                word.feed(ascii: byte)
                i += 1
            } else {
                let (scalar, length) = scalar(at: i, before: range.upperBound)
                word.feed(scalar)
                i += length
            }
        }
        return word.verdict
    }

    var isUTF8: Bool {
        var i = 0
        while i < p.count {
            if p[i] < 0x80 {
                i += 1
                continue
            }
            var parser = Unicode.UTF8.ForwardParser()
            var input = UnsafeBufferPointer(rebasing: p[i...]).makeIterator()
            while true {
                switch parser.parseScalar(from: &input) {
                case .valid: continue
                case .error: return false
                case .emptyInput: return true
                }
            }
        }
        return true
    }

    func equals(_ range: Range<Int>, _ word: StaticString) -> Bool {
        guard range.count == word.utf8CodeUnitCount else { return false }
        let w = word.utf8Start
        for k in 0..<range.count where p[range.lowerBound + k] != w[k] { return false }
        return true
    }

    /// Printable ASCII (tabs and line feeds too) without a backslash, and no stop word in it in
    /// any case: `mentionsStopWord`'s answer for the common goal, found by glibc (`strpbrk`,
    /// `strncasecmp`), which is fast in a debug build too. False: not known.
    var plainlyWithoutStopWord: Bool {
        guard p.count <= Self.stackBytes, let base = p.baseAddress, memchr(base, 0, p.count) == nil else { return false }
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: p.count + 1) { text in
            guard let start = text.baseAddress else { return false }
            memcpy(start, base, p.count)
            text[p.count] = 0
            return Self.cStrings.withUnsafeBufferPointer { c in
                guard let c = c.baseAddress else { return false }
                // Anything else could be dropped between a stop word's letters, or spell one
                // (an escape).
                guard strpbrk(start, c) == nil else { return false }
                let first = c + Self.firstLettersAt
                var at = strpbrk(start, first)
                while let candidate = at {
                    var word = c + Self.wordsAt
                    while word.pointee != 0 {
                        let length = strlen(word)
                        if strncasecmp(candidate, word, length) == 0 { return false }
                        word += length + 1
                    }
                    at = strpbrk(candidate + 1, first)
                }
                return true
            }
        }
    }

    /// A payload copied to the stack to be a C string: at most this long.
    static let stackBytes = 1024

    /// C strings for `plainlyWithoutStopWord`: every byte but NUL, printable ASCII, tab and line
    /// feed (`strpbrk`'s set); at `firstLettersAt`, the stop words' first letters in both cases;
    /// at `wordsAt`, each stop word, then an empty string.
    static let cStrings: [CChar] = {
        func plain(_ byte: UInt8) -> Bool { (0x20...0x7E).contains(byte) && byte != 0x5C || byte == 0x09 || byte == 0x0A }
        var bytes: [UInt8] = (1...255).filter { !plain($0) }
        bytes.append(0)
        let initials: [UInt8] = StopGoal.words.compactMap(\.utf8.first)
        bytes += Set(initials + initials.map { $0 & ~0x20 }).sorted()
        bytes.append(0)
        for word in StopGoal.words { bytes += Array(word.utf8) + [0] }
        bytes.append(0)
        return bytes.map { CChar(truncatingIfNeeded: $0) }
    }()
    static let firstLettersAt = cStrings.firstIndex(of: 0).map { $0 + 1 } ?? 0
    static let wordsAt = cStrings[firstLettersAt...].firstIndex(of: 0).map { $0 + 1 } ?? 0

    /// Whether a stop word could be read out of the bytes of `range` at all: one of them in any
    /// case, control and format characters between its letters ignored, or an escape (`\`),
    /// which could spell one. Every stop goal's payload mentions one; most other goals do not.
    func mentionsStopWord(_ range: Range<Int>) -> Bool {
        let lastLetters = StopGoal.lastLetters
        return WordMatcher.asciiKinds.withUnsafeBufferPointer { kinds in
            // The last 8 letters read (lower case; anything else a zero), packed as `packed` is.
            var recent: UInt64 = 0
            var i = range.lowerBound
            while i < range.upperBound {
                let byte = p[i]
                var letter: UInt8 = 0
                if byte < 0x80 {
                    i += 1
                    if byte == 0x5C { return true }
                    switch kinds[Int(byte)] {
                    case .dropped: continue
                    case .letter: letter = byte | 0x20
                    default: break
                    }
                } else {
                    let (scalar, length) = scalar(at: i, before: range.upperBound)
                    i += length
                    if WordMatcher.isDropped(scalar) { continue }
                }
                recent = recent << 8 | UInt64(letter)
                guard letter != 0, lastLetters & 1 << UInt32(letter - 0x61) != 0 else { continue }
                for count in 1..<8 where StopGoal.isStopWord(recent, count: count) { return true }
            }
            return false
        }
    }
}

/// One pass over a goal's characters: the core left between the blanks and punctuation at both
/// ends, compared with the stop words as it goes (no string is built).
struct WordMatcher {
    enum Verdict: Equatable { case empty, stopWord, other }

    enum Kind: UInt8 { case dropped, blank, letter, other }

    /// The kind of each ASCII character, from the same tests as every other character's.
    static let asciiKinds: [Kind] = (0..<128).map { value in
        let scalar = Unicode.Scalar(UInt8(value))
        if isDropped(scalar) { return .dropped }
        if isBlankOrPunctuation(scalar) { return .blank }
        return letter(scalar) != nil ? .letter : .other
    }

    private var letters: UInt64 = 0
    private var count = 0
    private var started = false
    /// A blank or punctuation after the core began: anything but more of them ends the match.
    private var trailing = false
    private(set) var failed = false

    mutating func feed(_ scalar: Unicode.Scalar) {
        if scalar.isASCII { return feed(ascii: UInt8(scalar.value)) }
        guard !failed, !Self.isDropped(scalar) else { return }
        if Self.isBlankOrPunctuation(scalar) {
            trailing = started
        } else {
            failed = true  // stop words are ASCII letters; case folds in ASCII only
        }
    }

    mutating func feed(ascii byte: UInt8) {
        guard !failed else { return }
        switch Self.asciiKinds[Int(byte)] {
        case .dropped:
            return
        case .blank:
            trailing = started
        case .letter where !trailing && count < 8:
            started = true
            letters = letters << 8 | UInt64(byte | 0x20)
            count += 1
        default:
            failed = true  // another character, or a blank inside: no stop word has one
        }
    }

    var verdict: Verdict {
        if failed { return .other }
        if !started { return .empty }
        return StopGoal.isStopWord(letters, count: count) ? .stopWord : .other
    }

    /// An ASCII letter, lower case; nil for anything else.
    static func letter(_ scalar: Unicode.Scalar) -> UInt8? {
        guard scalar.isASCII else { return nil }
        let c = UInt8(scalar.value) | 0x20
        return c >= 0x61 && c <= 0x7A ? c : nil
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

    private let p: UnsafeBufferPointer<UInt8>
    private var i: Int
    private var depth = 0
    /// Something a parser may read otherwise: an escape (a lone surrogate), a number with an
    /// exponent or more digits than a Double keeps.
    private(set) var doubtful = false

    init(_ bytes: Bytes, at start: Int) {
        p = bytes.p
        i = start
    }

    static func isBlank(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }

    /// Only blanks after what was scanned.
    var atEnd: Bool {
        var j = i
        while j < p.count, Self.isBlank(p[j]) { j += 1 }
        return j == p.count
    }

    private mutating func skipBlanks() { while i < p.count, Self.isBlank(p[i]) { i += 1 } }

    private mutating func take(_ b: UInt8) -> Bool {
        guard i < p.count, p[i] == b else { return false }
        i += 1
        return true
    }

    /// The object at the current position, each member handed to `member` (the key's bytes
    /// between its quotes, whether it has an escape, the value); false: not JSON.
    mutating func object(_ member: (Range<Int>, Bool, Value) -> Void) -> Bool {
        skipBlanks()
        guard depth < Self.maxDepth, take(0x7B) else { return false }  // {
        depth += 1
        defer { depth -= 1 }
        skipBlanks()
        if take(0x7D) { return true }  // }
        while true {
            skipBlanks()
            guard let (key, escaped) = string() else { return false }
            skipBlanks()
            guard take(0x3A), let value = value() else { return false }  // :
            member(key, escaped, value)
            skipBlanks()
            if take(0x2C) { continue }  // ,
            return take(0x7D)
        }
    }

    private mutating func value() -> Value? {
        skipBlanks()
        guard i < p.count else { return nil }
        let start = i
        switch p[i] {
        case 0x7B:
            return object { _, _, _ in } ? .object(start..<i) : nil
        case 0x5B:  // [
            guard depth < Self.maxDepth else { return nil }
            depth += 1
            defer { depth -= 1 }
            i += 1
            skipBlanks()
            if take(0x5D) { return .array }  // ]
            while true {
                guard value() != nil else { return nil }
                skipBlanks()
                if take(0x2C) { continue }
                return take(0x5D) ? .array : nil
            }
        case 0x22:  // "
            return string().map { .string($0.0, escaped: $0.1) }
        case 0x74: return literal("true")
        case 0x66: return literal("false")
        case 0x6E: return literal("null")
        default: return number()
        }
    }

    private mutating func literal(_ word: StaticString) -> Value? {
        let end = i + word.utf8CodeUnitCount
        guard end <= p.count, Bytes(p: p).equals(i..<end, word) else { return nil }
        i = end
        return .literal
    }

    private mutating func number() -> Value? {
        let start = i
        _ = take(0x2D)  // -
        let integer = i
        guard digits() > 0 else { return nil }
        if p[integer] == 0x30, i - integer > 1 { return nil }  // no leading zero
        if take(0x2E), digits() == 0 { return nil }  // .
        if take(0x65) || take(0x45) {  // e E
            doubtful = true
            if !take(0x2B) { _ = take(0x2D) }
            guard digits() > 0 else { return nil }
        }
        if i - start > 16 { doubtful = true }
        return .number
    }

    private mutating func digits() -> Int {
        let start = i
        while i < p.count, p[i] >= 0x30, p[i] <= 0x39 { i += 1 }
        return i - start
    }

    /// A string at the current position: its bytes between the quotes, and whether it has an escape.
    private mutating func string() -> (Range<Int>, Bool)? {
        guard take(0x22) else { return nil }
        let start = i
        var escaped = false
        while i < p.count {
            let b = p[i]
            if b == 0x22 {
                i += 1
                return (start..<(i - 1), escaped)
            }
            if b < 0x20 { return nil }  // a control character must be escaped
            i += 1
            guard b == 0x5C else { continue }  // \
            escaped = true
            doubtful = true
            guard i < p.count else { return nil }
            switch p[i] {
            case 0x22, 0x5C, 0x2F, 0x62, 0x66, 0x6E, 0x72, 0x74:  // " \ / b f n r t
                i += 1
            case 0x75:  // u
                guard i + 4 < p.count else { return nil }
                for k in 1...4 where !Self.isHexDigit(p[i + k]) { return nil }
                i += 5
            default:
                return nil
            }
        }
        return nil
    }

    private static func isHexDigit(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b | 0x20 >= 0x61 && b | 0x20 <= 0x66)
    }
}
