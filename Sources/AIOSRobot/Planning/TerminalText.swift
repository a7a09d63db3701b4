/// Text from outside — a goal, a user name from a topic, a model's error — on one line with
/// nothing a terminal would act on: control characters, line and paragraph separators and
/// bidirectional overrides written as escapes (`\n`, `\u{1B}`), as `robotd memory` shows them.
enum TerminalText {
    static func printable(_ text: String) -> String {
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

extension PlanTopicPayload {
    /// `line`, which is escaped itself (the name its callers had before it was).
    public var printableLine: String { line }
}
