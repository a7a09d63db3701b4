import Foundation
import Yams

/// The file as a tree of maps, lists and scalars, each with its place in the file. Built from
/// Yams' node tree; scalars keep their text and are typed by `ScalarValue` (YAML 1.2's core
/// schema), so the validator, the semantic checks and the decoder read every value the same way.
indirect enum Located {
    case scalar(Scalar)
    case map(Map)
    case list(List)

    struct Scalar {
        var text: String
        /// Quoted, literal or folded: always a string, whatever it looks like.
        var quoted: Bool
        /// An explicit tag (`!!str`), nil for none.
        var tag: String?
        var position: SourcePosition
    }

    struct Entry {
        var key: String
        var keyPosition: SourcePosition
        var value: Located
    }

    struct Map {
        var entries: [Entry]
        var position: SourcePosition
    }

    struct List {
        var items: [Located]
        var position: SourcePosition
    }

    var position: SourcePosition {
        switch self {
        case .scalar(let s): s.position
        case .map(let m): m.position
        case .list(let l): l.position
        }
    }

    // Tolerant accessors for the semantic checks: a value of the wrong type reads as absent (the
    // schema pass has already reported it).

    var map: Map? { if case .map(let m) = self { m } else { nil } }
    var items: [Located] { if case .list(let l) = self { l.items } else { [] } }
    var scalarValue: ScalarValue? { if case .scalar(let s) = self { s.value } else { nil } }

    subscript(key: String) -> Located? { map?.entries.first { $0.key == key }?.value }
    func entry(_ key: String) -> Entry? { map?.entries.first { $0.key == key } }
    func has(_ key: String) -> Bool { entry(key) != nil }

    var string: String? { if case .string(let s) = scalarValue { s } else { nil } }
    var bool: Bool? { if case .bool(let b) = scalarValue { b } else { nil } }
    /// Integers and finite numbers.
    var number: Double? {
        switch scalarValue {
        case .integer(let i): Double(i)
        case .number(let d) where d.isFinite: d
        default: nil
        }
    }
    var integer: Int? {
        switch scalarValue {
        case .integer(let i): i
        case .number(let d) where d.isFinite && d == d.rounded() && abs(d) < 1e15: Int(d)
        default: nil
        }
    }
    /// The strings of a list (others skipped).
    var strings: [String] { items.compactMap(\.string) }

    /// The value as `ConfigValue` (what the model decodes). Nulls have no `ConfigValue`: the
    /// validator refuses them before anything is decoded.
    var configValue: ConfigValue? {
        switch self {
        case .scalar(let s):
            switch s.value {
            case .null: return nil
            case .bool(let b): return .bool(b)
            case .integer(let i): return .number(Double(i))
            case .number(let d): return .number(d)
            case .string(let t): return .string(t)
            }
        case .list(let l):
            var values: [ConfigValue] = []
            for item in l.items {
                guard let v = item.configValue else { return nil }
                values.append(v)
            }
            return .list(values)
        case .map(let m):
            var entries: [ConfigValue.Entry] = []
            for e in m.entries {
                guard let v = e.value.configValue else { return nil }
                entries.append(.init(key: e.key, value: v))
            }
            return .map(entries)
        }
    }
}

/// A scalar as robotd reads it: YAML 1.2's core schema. Only `true`/`false` are booleans (`on`,
/// `off`, `yes`, `no` are words: the YAML 1.1 surprise where `off` turns into `false` does not
/// happen here); quoted scalars are always strings.
enum ScalarValue: Equatable {
    case null
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case string(String)
}

extension Located.Scalar {
    var value: ScalarValue {
        switch tag {
        case "tag:yaml.org,2002:str", "!": return .string(text)
        case "tag:yaml.org,2002:int": return Self.integer(text).map(ScalarValue.integer) ?? .string(text)
        case "tag:yaml.org,2002:float":
            return Self.integer(text).map { .number(Double($0)) } ?? Self.float(text).map(ScalarValue.number) ?? .string(text)
        case "tag:yaml.org,2002:bool": return Self.boolean(text).map(ScalarValue.bool) ?? .string(text)
        case "tag:yaml.org,2002:null": return .null
        default: break
        }
        if quoted { return .string(text) }
        if ["", "~", "null", "Null", "NULL"].contains(text) { return .null }
        if let b = Self.boolean(text) { return .bool(b) }
        if let i = Self.integer(text) { return .integer(i) }
        if let d = Self.float(text) { return .number(d) }
        return .string(text)
    }

    static func boolean(_ text: String) -> Bool? {
        switch text {
        case "true", "True", "TRUE": true
        case "false", "False", "FALSE": false
        default: nil
        }
    }

    /// `[-+]?[0-9]+`, `0o[0-7]+`, `0x[0-9a-fA-F]+`.
    static func integer(_ text: String) -> Int? {
        if text.hasPrefix("0x") { return Int(text.dropFirst(2), radix: 16) }
        if text.hasPrefix("0o") { return Int(text.dropFirst(2), radix: 8) }
        var digits = Substring(text)
        if digits.first == "-" || digits.first == "+" { digits = digits.dropFirst() }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(text.hasPrefix("+") ? String(text.dropFirst()) : text)
    }

    /// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, `[-+]?.inf`, `.nan`.
    static func float(_ text: String) -> Double? {
        switch text {
        case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF": return .infinity
        case "-.inf", "-.Inf", "-.INF": return -.infinity
        case ".nan", ".NaN", ".NAN": return .nan
        default: break
        }
        var s = Substring(text)
        if s.first == "-" || s.first == "+" { s = s.dropFirst() }
        var mantissa = s, exponent: Substring?
        if let e = s.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = s[..<e]
            exponent = s[s.index(after: e)...]
        }
        let parts = mantissa.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let isDigits = { (p: Substring) in p.allSatisfy { $0.isASCII && $0.isNumber } }
        guard parts.count <= 2, parts.allSatisfy(isDigits), parts.contains(where: { !$0.isEmpty }) else { return nil }
        if parts.count == 2 && parts[0].isEmpty && parts[1].isEmpty { return nil }
        if var exponent {
            if exponent.first == "-" || exponent.first == "+" { exponent = exponent.dropFirst() }
            guard !exponent.isEmpty, isDigits(exponent) else { return nil }
        }
        return Double(text)
    }
}

/// Reads the text into a `Located` tree with Yams, reporting syntax errors and duplicate keys with
/// their place. Yams stops at the first duplicate key of a map, naming only the first occurrence;
/// this finds the repeat in the text, reports it there, renames it out of the way and parses again,
/// so that every duplicate (and everything else) is reported in one run.
enum YAMLReader {
    struct Duplicate {
        var key: String
        var firstLine: Int
    }

    static let placeholderPrefix = "robotd-duplicate-key-"

    static func read(_ text: String, into diagnostics: inout Diagnostics) -> Located? {
        var source = text
        var duplicates: [String: Duplicate] = [:]
        // Each round renames one repeat, so the file's key count bounds the rounds; the cap only
        // guards against a pathological file.
        for _ in 0..<200 {
            do {
                guard let node = try Yams.compose(yaml: source, .basic) else {
                    diagnostics.error(.start, "", "the file is empty", allowed: "a map with `robot`, `channels`, `estop`, …")
                    return nil
                }
                return convert(node, path: "", duplicates: duplicates, diagnostics: &diagnostics)
            } catch YamlError.duplicatedKeysInMapping(let keys, let context) {
                guard let key = keys.first,
                      let repeat_ = findRepeat(of: key, after: context.mark, in: source) else {
                    let keyList = keys.map { "`\($0)`" }.joined(separator: ", ")
                    diagnostics.error(SourcePosition(line: context.mark.line, column: context.mark.column), "",
                                      "duplicate key \(keyList) in this map; the rest of the file was not checked")
                    return nil
                }
                let placeholder = placeholderPrefix + String(duplicates.count)
                duplicates[placeholder] = Duplicate(key: key, firstLine: context.mark.line)
                source = replace(in: source, line: repeat_.line, column: repeat_.column, length: repeat_.length,
                                 with: placeholder)
            } catch let error as YamlError {
                report(error, source: source, into: &diagnostics)
                return nil
            } catch {
                diagnostics.error(.start, "", "cannot read the YAML: \(error)")
                return nil
            }
        }
        diagnostics.error(.start, "", "too many duplicate keys; the rest of the file was not checked")
        return nil
    }

    private static func report(_ error: YamlError, source: String, into diagnostics: inout Diagnostics) {
        func syntax(_ problem: String, _ mark: Mark, _ context: YamlError.Context?) {
            var message = "YAML syntax: \(problem)"
            if let context, !context.text.isEmpty {
                message += " (\(context.text) at line \(context.mark.line), column \(context.mark.column))"
            }
            // The most common cause of libyaml's least helpful message.
            let lines = splitLines(source)
            var allowed: String?
            if mark.line >= 1, mark.line <= lines.count, mark.column >= 1, mark.column <= lines[mark.line - 1].count,
               lines[mark.line - 1][mark.column - 1] == "\t" {
                allowed = "spaces: a tab cannot indent YAML"
            }
            diagnostics.error(SourcePosition(line: mark.line, column: mark.column), "", message, allowed: allowed)
        }
        switch error {
        case .scanner(let context, let problem, let mark, _),
             .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            syntax(problem, mark, context)
        case .reader(let problem, let offset, _, let yaml):
            var position = SourcePosition.start
            if let offset {
                let prefix = yaml.prefix(offset)
                let lines = prefix.split(separator: "\n", omittingEmptySubsequences: false)
                position = SourcePosition(line: lines.count, column: (lines.last?.unicodeScalars.count ?? 0) + 1)
            }
            diagnostics.error(position, "", "cannot read the file: \(problem)", allowed: "UTF-8 text")
        default:
            diagnostics.error(.start, "", "cannot read the YAML: \(error)")
        }
    }

    private static func convert(_ node: Node, path: String, duplicates: [String: Duplicate],
                                diagnostics: inout Diagnostics) -> Located {
        let position = node.mark.map { SourcePosition(line: $0.line, column: $0.column) } ?? .start
        switch node {
        case .scalar(let s):
            let tag = s.tag.rawValue.isEmpty ? nil : s.tag.rawValue
            if let tag, !knownTags.contains(tag) {
                diagnostics.error(position, path, "the tag `\(tag)` is not supported", allowed: "no tag, or !!str, !!int, !!float, !!bool")
            }
            return .scalar(.init(text: s.string, quoted: s.style != .plain && s.style != .any, tag: tag, position: position))
        case .sequence(let seq):
            return .list(.init(items: seq.enumerated().map {
                convert($0.element, path: KeyPath.item(path, $0.offset), duplicates: duplicates, diagnostics: &diagnostics)
            }, position: position))
        case .mapping(let mapping):
            var entries: [Located.Entry] = []
            for (keyNode, value) in mapping {
                let keyPosition = keyNode.mark.map { SourcePosition(line: $0.line, column: $0.column) } ?? position
                guard case .scalar(let keyScalar) = keyNode else {
                    diagnostics.error(keyPosition, path, "a key must be a word, not a list or a map")
                    continue
                }
                let key = keyScalar.string
                if let duplicate = duplicates[key] {
                    diagnostics.error(keyPosition, KeyPath.child(path, duplicate.key),
                                      "duplicate key `\(duplicate.key)`: already set at line \(duplicate.firstLine)",
                                      allowed: "each key once per map")
                    continue
                }
                if key == "<<" && keyScalar.style == .plain {
                    diagnostics.error(keyPosition, path, "merge keys (`<<`) are not supported",
                                      allowed: "write the keys out, or reuse a whole value with an alias (`*name`)")
                    continue
                }
                let childPath = KeyPath.child(path, key)
                entries.append(.init(key: key, keyPosition: keyPosition,
                                     value: convert(value, path: childPath, duplicates: duplicates, diagnostics: &diagnostics)))
            }
            return .map(.init(entries: entries, position: position))
        case .alias:
            // Yams resolves aliases while composing; an unresolved one cannot be checked.
            diagnostics.error(position, path, "an alias that could not be resolved")
            return .scalar(.init(text: "", quoted: false, tag: nil, position: position))
        }
    }

    private static let knownTags: Set<String> = [
        "!", "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
        "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null",
    ]

    // MARK: Finding a repeated key in the text

    struct Place {
        var line: Int
        var column: Int
        var length: Int
    }

    /// Where `key` is written again in the map whose first occurrence of it is at `mark`: in a
    /// block map, on a later line at the same column before the map ends; in a flow map
    /// (`{a: 1, a: 2}`), after a comma at the same nesting depth.
    static func findRepeat(of key: String, after mark: Mark, in text: String) -> Place? {
        let lines = splitLines(text)
        let row = mark.line - 1, column = mark.column - 1
        guard row >= 0, row < lines.count, column >= 0, column <= lines[row].count else { return nil }
        let line = lines[row]
        var before = column - 1
        while before >= 0, line[before] == " " || line[before] == "\t" { before -= 1 }
        let inFlow = before >= 0 && (line[before] == "{" || line[before] == ",")
        return inFlow ? findInFlow(key, lines: lines, row: row, column: column)
                      : findInBlock(key, lines: lines, row: row, column: column)
    }

    private static func findInBlock(_ key: String, lines: [[Unicode.Scalar]], row: Int, column: Int) -> Place? {
        var r = row + 1
        while r < lines.count {
            let line = lines[r]
            guard let first = line.firstIndex(where: { $0 != " " }), line[first] != "#", line[first] != "\r" else {
                r += 1
                continue
            }
            if first < column { return nil }  // the map ended
            if first == column, let length = keyToken(key, in: line, at: column) {
                return Place(line: r + 1, column: column + 1, length: length)
            }
            r += 1
        }
        return nil
    }

    private static func findInFlow(_ key: String, lines: [[Unicode.Scalar]], row: Int, column: Int) -> Place? {
        var depth = 0
        var quote: Unicode.Scalar?
        var r = row, c = column + (keyToken(key, in: lines[row], at: column) ?? 1)
        while r < lines.count {
            let line = lines[r]
            while c < line.count {
                let ch = line[c]
                if let q = quote {
                    if ch == q { quote = nil }
                } else if ch == "\"" || ch == "'" {
                    quote = ch
                } else if ch == "{" || ch == "[" {
                    depth += 1
                } else if ch == "}" || ch == "]" {
                    depth -= 1
                    if depth < 0 { return nil }
                } else if ch == "," && depth == 0 {
                    var k = c + 1
                    while k < line.count, line[k] == " " || line[k] == "\t" { k += 1 }
                    if let length = keyToken(key, in: line, at: k) {
                        return Place(line: r + 1, column: k + 1, length: length)
                    }
                }
                c += 1
            }
            r += 1
            c = 0
        }
        return nil
    }

    /// The length of `key` (plain or quoted) at `index` when a `:` follows it.
    private static func keyToken(_ key: String, in line: [Unicode.Scalar], at index: Int) -> Int? {
        let k = Array(key.unicodeScalars)
        for (open, close) in [("", ""), ("\"", "\""), ("'", "'")] as [(String, String)] {
            let token = Array(open.unicodeScalars) + k + Array(close.unicodeScalars)
            guard index + token.count <= line.count, Array(line[index..<index + token.count]) == token else { continue }
            var after = index + token.count
            while after < line.count, line[after] == " " || line[after] == "\t" { after += 1 }
            if after < line.count, line[after] == ":" { return token.count }
        }
        return nil
    }

    private static func splitLines(_ text: String) -> [[Unicode.Scalar]] {
        var lines: [[Unicode.Scalar]] = [[]]
        for scalar in text.unicodeScalars {
            if scalar == "\n" { lines.append([]) } else { lines[lines.count - 1].append(scalar) }
        }
        return lines
    }

    private static func replace(in text: String, line: Int, column: Int, length: Int, with replacement: String) -> String {
        var lines = splitLines(text)
        let row = line - 1, start = column - 1
        lines[row].replaceSubrange(start..<start + length, with: replacement.unicodeScalars)
        var view = String.UnicodeScalarView()
        for (i, l) in lines.enumerated() {
            if i > 0 { view.append("\n") }
            view.append(contentsOf: l)
        }
        return String(view)
    }
}
