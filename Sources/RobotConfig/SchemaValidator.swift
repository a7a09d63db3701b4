/// Checks the tree against `ConfigurationSchema` and the catalog's kinds: every key known, every
/// value of its type and range, every required key present. Reports everything it finds and
/// carries on (a wrong value never hides the next one).
struct SchemaValidator {
    let catalog: KindCatalog
    var diagnostics: Diagnostics

    mutating func validateRoot(_ root: Located) {
        guard case .map(let map) = root else {
            diagnostics.error(root.position, "", "the file must be a map of sections",
                              allowed: wordList(ConfigurationSchema.root.map(\.key), conjunction: "and"))
            return
        }
        validateObject(map, fields: ConfigurationSchema.root, path: "", what: "top-level section")
    }

    /// A whole document against `fields` (a scenario file: no kinded sections).
    mutating func validateDocument(_ root: Located, fields: [FieldSpec], what: String) {
        guard case .map(let map) = root else {
            diagnostics.error(root.position, "", "the file must be a map", allowed: wordList(fields.map(\.key), conjunction: "and"))
            return
        }
        validateObject(map, fields: fields, path: "", what: what)
    }

    // MARK: Maps with known keys

    /// `owner` names a kinded entry in messages ("unknown key `x` for a `serial` input").
    private mutating func validateObject(_ map: Located.Map, fields: [FieldSpec], path: String, what: String = "key",
                                         owner: String? = nil, otherKinds: [(kind: String, fields: [FieldSpec])] = []) {
        for entry in map.entries {
            let entryPath = KeyPath.child(path, entry.key)
            guard let field = fields.first(where: { $0.key == entry.key }) else {
                reportUnknownKey(entry, path: entryPath, fields: fields, what: what, owner: owner, otherKinds: otherKinds)
                continue
            }
            if path.isEmpty, let section = ConfigurationSchema.kindedSections.first(where: { $0.key == entry.key }) {
                validateKindedList(entry.value, path: entryPath, noun: section.noun, common: section.common,
                                   kinds: section.kinds(catalog))
            } else {
                validate(entry.value, as: field.type, field: field, path: entryPath)
            }
        }
        for field in fields where field.required && !map.entries.contains(where: { $0.key == field.key }) {
            var message = "missing"
            if !field.help.isEmpty { message += ": \(field.help)" }
            diagnostics.error(map.position, KeyPath.child(path, field.key), message, allowed: describe(field.type))
        }
    }

    private mutating func reportUnknownKey(_ entry: Located.Entry, path: String, fields: [FieldSpec], what: String,
                                           owner: String?, otherKinds: [(kind: String, fields: [FieldSpec])]) {
        let known = fields.map(\.key)
        if entry.key == "password" && known.contains("password_env") {
            diagnostics.error(entry.keyPosition, path, "a password is never written in the file: use password_env or password_file",
                              allowed: "password_env: VARIABLE, password_file: /path")
            return
        }
        if entry.key == "retain" && path.hasPrefix("actuators") {
            diagnostics.error(entry.keyPosition, path, SemanticChecker.neverRetained, allowed: "remove it")
            return
        }
        var message = "unknown \(what) `\(entry.key)`" + (owner.map { " for \($0)" } ?? "")
        if let suggestion = closestMatch(to: entry.key, in: known) {
            diagnostics.error(entry.keyPosition, path, message + "; did you mean `\(suggestion)`?")
            return
        } else if let parent = fields.first(where: { field in
            if case .object(let inner) = field.type { return inner.contains { $0.key == entry.key } }
            return false
        }) {
            message += "; it belongs under `\(parent.key)`"
        } else if let other = otherKinds.first(where: { $0.fields.contains { $0.key == entry.key } }) {
            message += "; it is a key of kind `\(other.kind)`"
        }
        diagnostics.error(entry.keyPosition, path, message, allowed: wordList(known))
    }

    /// `inputs`, `policies`, `actuators`: each entry's keys are the common ones plus its kind's.
    private mutating func validateKindedList(_ node: Located, path: String, noun: String, common: [FieldSpec],
                                             kinds: [KindSpec]) {
        guard case .list(let list) = node else {
            typeMismatch(node, expected: .list(.object(common)), path: path)
            return
        }
        for (index, item) in list.items.enumerated() {
            let itemPath = KeyPath.item(path, index)
            guard case .map(let map) = item else {
                typeMismatch(item, expected: .object(common), path: itemPath)
                continue
            }
            let kindNode = item["kind"]
            let kindName = kindNode?.string
            let spec = kindName.flatMap { k in kinds.first { $0.kind == k } }
            if let kindNode, let kindName, spec == nil {
                var message = "unknown \(noun) kind `\(kindName)`"
                if let suggestion = closestMatch(to: kindName, in: kinds.map(\.kind)) { message += "; did you mean `\(suggestion)`?" }
                diagnostics.error(kindNode.position, KeyPath.child(itemPath, "kind"), message,
                                  allowed: wordList(kinds.map(\.kind)))
                // Without its kind the other keys cannot be judged: only the common ones are.
                validateObject(Located.Map(entries: map.entries.filter { e in common.contains { $0.key == e.key } },
                                           position: map.position),
                               fields: common, path: itemPath)
                continue
            }
            let fields = common + (spec?.fields ?? [])
            let others = kinds.filter { $0.kind != kindName }.map { (kind: $0.kind, fields: $0.fields) }
            validateObject(map, fields: fields, path: itemPath, owner: spec.map { "a `\($0.kind)` \(noun)" }, otherKinds: others)
        }
    }

    // MARK: Values

    private mutating func validate(_ node: Located, as type: FieldSpec.ValueType, field: FieldSpec?, path: String) {
        if case .scalar(let s) = node, s.value == .null {
            var message = "has no value"
            if let help = field?.help, !help.isEmpty { message += ": \(help)" }
            diagnostics.error(node.position, path, message, allowed: describe(type))
            return
        }
        switch type {
        case .bool:
            if node.bool == nil { typeMismatch(node, expected: type, path: path) }
        case .number(let range):
            guard case .scalar(let s) = node, let value = numeric(s.value) else {
                typeMismatch(node, expected: type, path: path)
                return
            }
            if !value.isFinite {
                diagnostics.error(node.position, path, "`\(s.text)` is not a finite number", allowed: describe(type))
            } else if let range, !range.contains(value) {
                outOfRange(node, s.text, type, field, path)
            }
        case .integer(let range):
            guard case .scalar(let s) = node, let value = node.integer else {
                typeMismatch(node, expected: type, path: path)
                return
            }
            if let range, !range.contains(value) { outOfRange(node, s.text, type, field, path) }
        case .string:
            if node.string == nil { typeMismatch(node, expected: type, path: path) }
        case .oneOf(let words):
            guard let word = node.string else {
                typeMismatch(node, expected: type, path: path)
                return
            }
            if !words.contains(word) {
                var message = "`\(word)` is not allowed"
                if let suggestion = closestMatch(to: word, in: words) { message += "; did you mean `\(suggestion)`?" }
                diagnostics.error(node.position, path, message, allowed: describe(type))
            }
        case .word(let word):
            if node.string != word { typeMismatch(node, expected: type, path: path) }
        case .list(let itemType, let minCount):
            guard case .list(let list) = node else {
                typeMismatch(node, expected: type, path: path)
                return
            }
            for (index, item) in list.items.enumerated() {
                validate(item, as: itemType, field: nil, path: KeyPath.item(path, index))
            }
            if list.items.count < minCount {
                diagnostics.error(node.position, path,
                                  "has \(list.items.count) item\(list.items.count == 1 ? "" : "s"), needs at least \(minCount)",
                                  allowed: describe(type))
            }
        case .object(let fields):
            guard case .map(let map) = node else {
                typeMismatch(node, expected: type, path: path)
                return
            }
            validateObject(map, fields: fields, path: path)
        case .dictionary(let valueType):
            guard case .map(let map) = node else {
                typeMismatch(node, expected: type, path: path)
                return
            }
            for entry in map.entries {
                validate(entry.value, as: valueType, field: nil, path: KeyPath.child(path, entry.key))
            }
        case .either(let alternatives):
            // The alternative of the value's shape is checked in depth (a map against the map's
            // keys); a value of no alternative's shape gets one message listing them all.
            // Several map alternatives: the one that knows most of the map's keys.
            let fits = alternatives.filter { shapeFits(node, $0) }
            let keys = Set(node.map?.entries.map(\.key) ?? [])
            func known(_ type: FieldSpec.ValueType) -> Int {
                if case .object(let fields) = type { fields.filter { keys.contains($0.key) }.count } else { 0 }
            }
            if let fitting = fits.max(by: { known($0) < known($1) }) ?? fits.first {
                validate(node, as: fitting, field: field, path: path)
            } else {
                typeMismatch(node, expected: type, path: path)
            }
        }
    }

    private func numeric(_ value: ScalarValue) -> Double? {
        switch value {
        case .integer(let i): Double(i)
        case .number(let d): d
        default: nil
        }
    }

    private func shapeFits(_ node: Located, _ type: FieldSpec.ValueType) -> Bool {
        switch (node, type) {
        case (.map, .object), (.map, .dictionary), (.list, .list): true
        case (.scalar, .word(let w)): node.string == w
        case (.scalar, .bool), (.scalar, .number), (.scalar, .integer), (.scalar, .string), (.scalar, .oneOf): true
        default: false
        }
    }

    private mutating func outOfRange(_ node: Located, _ text: String, _ type: FieldSpec.ValueType, _ field: FieldSpec?,
                                     _ path: String) {
        var message = "`\(text)` is out of range"
        if let help = field?.help, !help.isEmpty { message += ": \(help)" }
        diagnostics.error(node.position, path, message, allowed: describe(type))
    }

    private mutating func typeMismatch(_ node: Located, expected: FieldSpec.ValueType, path: String) {
        var message = "expected \(describe(expected)), got \(describeValue(node))"
        if case .bool = expected, let word = node.string, ["yes", "no", "on", "off", "y", "n"].contains(word.lowercased()) {
            message += " (only true and false are booleans here)"
        }
        if case .scalar(let s) = node, s.quoted, Double(s.text) != nil, isNumeric(expected) {
            message += " (a quoted number is a string: remove the quotes)"
        }
        diagnostics.error(node.position, path, message)
    }

    private func isNumeric(_ type: FieldSpec.ValueType) -> Bool {
        switch type {
        case .number, .integer: true
        default: false
        }
    }

    private func describe(_ type: FieldSpec.ValueType) -> String { type.allowedText }

    private func describeValue(_ node: Located) -> String {
        switch node {
        case .map: return "a map"
        case .list: return "a list"
        case .scalar(let s):
            switch s.value {
            case .null: return "nothing"
            case .bool(let b): return "`\(b)`"
            case .integer, .number: return "the number `\(s.text)`"
            case .string(let t): return "the string `\(t)`"
            }
        }
    }
}

extension FieldSpec.ValueType {
    /// What a value of this type looks like, for "allowed: …".
    var allowedText: String {
        switch self {
        case .bool: return "true or false"
        case .number(let range):
            guard let range else { return "a number" }
            return "a number " + describeRange(range)
        case .integer(let range):
            guard let range else { return "an integer" }
            if range.count <= 3 { return wordList(range.map(String.init)) }
            return "an integer in \(range.lowerBound)…\(range.upperBound)"
        case .string: return "a string"
        case .oneOf(let words): return wordList(words)
        case .word(let word): return "`\(word)`"
        case .list(let item, let minCount):
            return "a list of \(item.pluralText)" + (minCount > 0 ? " (at least \(minCount))" : "")
        case .object(let fields):
            let required = fields.filter(\.required).map(\.key)
            return required.isEmpty ? "a map" : "a map with \(wordList(required, conjunction: "and"))"
        case .dictionary(let value): return "a map of names to \(value.pluralText)"
        case .either(let alternatives): return wordList(alternatives.map(\.allowedText))
        }
    }

    private var pluralText: String {
        switch self {
        case .number(.none): "numbers"
        case .integer(.none): "integers"
        case .string: "strings"
        case .object: "maps"
        default: allowedText
        }
    }

    private func describeRange(_ range: ClosedRange<Double>) -> String {
        func show(_ d: Double) -> String { d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : String(d) }
        let openTop = range.upperBound >= Double.greatestFiniteMagnitude
        if range.lowerBound == Double.leastNonzeroMagnitude { return openTop ? "> 0" : "in (0, \(show(range.upperBound))]" }
        if openTop { return "≥ \(show(range.lowerBound))" }
        return "in \(show(range.lowerBound))…\(show(range.upperBound))"
    }

}
