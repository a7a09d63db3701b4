/// A place in the configuration file (1-based line and column).
struct SourcePosition: Sendable, Equatable, Comparable {
    var line: Int
    var column: Int

    static let start = SourcePosition(line: 1, column: 1)

    static func < (a: SourcePosition, b: SourcePosition) -> Bool {
        (a.line, a.column) < (b.line, b.column)
    }
}

/// Collects problems while the validator walks the file; sorted into file order at the end.
struct Diagnostics {
    let file: String
    private(set) var problems: [ConfigProblem] = []

    init(file: String) { self.file = file }

    mutating func error(_ at: SourcePosition, _ path: String, _ message: String, allowed: String? = nil) {
        add(.error, at, path, message, allowed)
    }

    mutating func warning(_ at: SourcePosition, _ path: String, _ message: String, allowed: String? = nil) {
        add(.warning, at, path, message, allowed)
    }

    private mutating func add(_ severity: ConfigProblem.Severity, _ at: SourcePosition, _ path: String,
                              _ message: String, _ allowed: String?) {
        let problem = ConfigProblem(severity: severity, file: file, line: at.line, column: at.column, keyPath: path,
                                    message: message, allowed: allowed)
        // An aliased part of the file is walked once per use: report its problems once.
        if !problems.contains(problem) { problems.append(problem) }
    }

    var hasErrors: Bool { problems.contains { $0.severity == .error } }

    func hasProblem(at path: String) -> Bool { problems.contains { $0.keyPath == path } }

    /// File order; problems at the same place keep the order they were found in.
    var sorted: [ConfigProblem] {
        problems.enumerated().sorted { a, b in
            let pa = (a.element.line, a.element.column), pb = (b.element.line, b.element.column)
            return pa != pb ? pa < pb : a.offset < b.offset
        }.map(\.element)
    }
}

/// Key paths as the user reads them: `channels[1].limits.max_velocity`.
enum KeyPath {
    static func child(_ path: String, _ key: String) -> String {
        let simple = !key.isEmpty && key.utf8.allSatisfy { c in
            (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || (c >= 0x30 && c <= 0x39) || c == 0x5F || c == 0x2D
        }
        let part = simple ? key : "\"\(key)\""
        return path.isEmpty ? part : "\(path).\(part)"
    }

    static func item(_ path: String, _ index: Int) -> String { "\(path)[\(index)]" }
}

/// Words for lists in messages: `a, b or c`.
func wordList(_ words: [String], conjunction: String = "or") -> String {
    switch words.count {
    case 0: return "nothing"
    case 1: return words[0]
    default: return words.dropLast().joined(separator: ", ") + " \(conjunction) " + words[words.count - 1]
    }
}

/// The closest candidate to a misspelt word, if it is close enough to be a likely typo.
func closestMatch(to word: String, in candidates: [String]) -> String? {
    let lowered = word.lowercased()
    var best: (candidate: String, distance: Int)?
    for candidate in candidates {
        let d = editDistance(lowered, candidate.lowercased())
        if d < (best?.distance ?? Int.max) { best = (candidate, d) }
    }
    guard let best else { return nil }
    // Up to a third of the word's length, at least 1 and at most 3 edits: `max_velocty` yes,
    // `name` for `kind` no.
    let limit = max(1, min(3, word.count / 3))
    return best.distance <= limit ? best.candidate : nil
}

/// Levenshtein distance, with a transposition counting as one edit (Damerau, optimal string
/// alignment): `max_veloctiy` is one slip from `max_velocity`.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.unicodeScalars), b = Array(b.unicodeScalars)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous2 = [Int](repeating: 0, count: b.count + 1)
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                current[j] = min(current[j], previous2[j - 2] + 1)
            }
        }
        (previous2, previous, current) = (previous, current, previous2)
    }
    return previous[b.count]
}
