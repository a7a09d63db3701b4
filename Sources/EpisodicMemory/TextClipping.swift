/// Bounding and showing untrusted text.
public enum TextClipping {
    /// At most `maxBytes` bytes of UTF-8, cut between two characters (never inside a UTF-8 sequence
    /// or a grapheme cluster), ending in `…` when something was cut.
    public static func clip(_ text: String, maxBytes: Int) -> String {
        guard text.utf8.count > maxBytes else { return text }
        let ellipsis = "…"
        let budget = maxBytes - ellipsis.utf8.count
        guard budget > 0 else { return "" }
        var used = 0
        var end = text.startIndex
        for index in text.indices {
            let width = text[index].utf8.count
            if used + width > budget { break }
            used += width
            end = text.index(after: index)
        }
        return String(text[..<end]) + ellipsis
    }

    /// `clip`, with NUL written as U+FFFD: SQLite's C strings end at a NUL, so a text holding one
    /// would come back cut there.
    public static func storable(_ text: String, maxBytes: Int) -> String {
        let clipped = clip(text, maxBytes: maxBytes)
        guard clipped.unicodeScalars.contains("\u{0}") else { return clipped }
        return String(String.UnicodeScalarView(clipped.unicodeScalars.map { $0 == "\u{0}" ? "\u{FFFD}" : $0 }))
    }

    /// The text on one line with nothing a terminal would act on: control characters, line and
    /// paragraph separators and bidirectional overrides are written as escapes (`\n`, `\u{1B}`).
    public static func printable(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\\": out += "\\\\"
            default:
                let v = scalar.value
                let isControl = v < 0x20 || (0x7F...0x9F).contains(v)
                let isSeparatorOrBidi = v == 0x2028 || v == 0x2029 || (0x202A...0x202E).contains(v) || (0x2066...0x2069).contains(v)
                if isControl || isSeparatorOrBidi {
                    out += "\\u{" + String(v, radix: 16, uppercase: true) + "}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }
}
