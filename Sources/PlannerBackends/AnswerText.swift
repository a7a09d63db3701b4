/// Text taken from a plan being judged — an ability's name, a key, a string value — as the
/// validator's messages repeat it. A model (or the sender of an ability call) writes that text, and
/// the messages travel on: back to the model as feedback, onto the `plan` topic, into the episodic
/// memory and the logs. So it is clipped to a few bytes between characters and escaped: it stays
/// one line, cannot close the quotes around it, and cannot pass for robotd's own words.
///
/// Here, not in Planner, so that `JSONValue.kindText` (this module) escapes as the validator does:
/// Planner depends on this module, not the other way round.
package enum AnswerText {
    /// The most bytes of UTF-8 kept of one name or value (before escaping).
    package static let maxBytes = 40

    /// A plain name (letters, digits, `_`, `-`, at most `maxBytes`) as it is — `fly` — so the usual
    /// mistakes read naturally; anything else JSON-quoted, clipped and escaped.
    package static func name(_ text: String) -> String {
        isPlain(text) ? text : quoted(text)
    }

    /// A key appended to a path: `steps[0].speeed` for a plain key, `steps[0]["a b"]` otherwise.
    package static func path(_ path: String, key: String) -> String {
        isPlain(key) ? "\(path).\(key)" : "\(path)[\(quoted(key))]"
    }

    /// Always quoted: `"NaN"`, `"a\nb"`, `"🤖🤖…"`.
    package static func quoted(_ text: String, maxBytes: Int = maxBytes) -> String {
        "\"" + escaped(clip(text, maxBytes: maxBytes)) + "\""
    }

    /// Clipped and escaped, without quotes (a decoder's path, a parser's message).
    package static func bare(_ text: String, maxBytes: Int) -> String {
        escaped(clip(text, maxBytes: maxBytes))
    }

    package static func isPlain(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= maxBytes
            && text.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x5F || $0 == 0x2D }
    }

    /// At most `maxBytes` bytes, cut between characters, `…` when something was cut. A character
    /// longer than the budget (a base with thousands of combining marks) is cut out whole.
    package static func clip(_ text: String, maxBytes: Int) -> String {
        guard text.utf8.count > maxBytes else { return text }
        let ellipsis = "…"
        let budget = maxBytes - ellipsis.utf8.count
        guard budget > 0 else { return "" }
        var kept = ""
        var used = 0
        for character in text {
            let width = character.utf8.count
            if used + width > budget { break }
            used += width
            kept.append(character)
        }
        return kept + ellipsis
    }

    /// JSON's escapes for quotes, backslashes and control characters, and `\uXXXX` as well for the
    /// line and paragraph separators and the bidirectional controls (which JSON lets through raw).
    package static func escaped(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                let v = scalar.value
                let isControl = v < 0x20 || (0x7F...0x9F).contains(v)
                let isSeparatorOrBidi = v == 0x2028 || v == 0x2029 || (0x200E...0x200F).contains(v)
                    || (0x202A...0x202E).contains(v) || (0x2066...0x2069).contains(v)
                if isControl || isSeparatorOrBidi {
                    let hex = String(v, radix: 16, uppercase: true)
                    out += "\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }
}
