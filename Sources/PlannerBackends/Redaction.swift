import Foundation

/// What a server said, made fit for a failure that is recorded, published over MQTT and printed:
/// the API key and any `Bearer` token removed, one printable line, bounded. A server's error page
/// may quote the request's `Authorization` header back; the key must not travel on from there.
enum Redaction {
    /// What replaces a key or a token.
    static let marker = "[redacted]"

    /// `body` as one printable line of at most `count` characters (and a trailing "…" when cut),
    /// without `secret` (as sent, and JSON-escaped) or any `Bearer …` token.
    ///
    /// The whole body is scrubbed before it is clipped, so that a key straddling the cut cannot
    /// leave its first characters behind; the body is bounded by the back end's response cap.
    static func printableLine(_ body: Data, secret: String?, count: Int = 200) -> String {
        let text = scrubbed(String(decoding: body, as: UTF8.self), secret: secret)
        // Line breaks become spaces; other control characters (a terminal's escapes) are dropped.
        let line = text.unicodeScalars.lazy
            .map { $0 == "\n" || $0 == "\r" || $0 == "\t" || $0 == "\u{2028}" || $0 == "\u{2029}" ? " " : $0 }
            .filter { !CharacterSet.controlCharacters.contains($0) }
        var clipped = String.UnicodeScalarView()
        var kept = 0
        var cut = false
        for scalar in line {
            // The first `count` scalars, leading spaces skipped (trailing ones trimmed below).
            if kept == 0, scalar == " " { continue }
            if kept == count {
                cut = true
                break
            }
            clipped.append(scalar)
            kept += 1
        }
        let trimmed = String(clipped).trimmingCharacters(in: .whitespaces)
        return cut ? trimmed + "…" : trimmed
    }

    /// `text` with `secret` (as sent, and JSON-escaped) and every `Bearer …` token replaced by the
    /// marker, nothing else changed: for a 200 answer's text, which is recorded and echoed as well.
    /// Inside a JSON string the marker keeps the JSON valid (it has no quote and no backslash).
    static func scrubbed(_ text: String, secret: String?) -> String {
        var text = text
        if let secret, !secret.isEmpty {
            for form in forms(of: secret) where text.contains(form) {
                text = text.replacingOccurrences(of: form, with: marker)
            }
        }
        return withoutBearerTokens(text)
    }

    /// The key as it may appear in a body: as sent, and inside a JSON string (`/` as `\/`, …).
    private static func forms(of secret: String) -> [String] {
        var forms = [secret]
        if let data = try? JSONEncoder().encode(secret) {
            let quoted = String(decoding: data, as: UTF8.self)
            let escaped = String(quoted.dropFirst().dropLast())
            if escaped != secret, !escaped.isEmpty { forms.append(escaped) }
        }
        return forms
    }

    /// `Bearer <token>` (any case, any run of spaces) becomes `Bearer [redacted]`: whatever key a
    /// server quotes, also one robotd never sent (a proxy's, another tenant's).
    static func withoutBearerTokens(_ text: String) -> String {
        let scalars = Array(text.unicodeScalars)
        let word = Array("bearer".unicodeScalars)
        var out = String.UnicodeScalarView()
        var i = 0
        while i < scalars.count {
            if i + word.count < scalars.count, matches(word, in: scalars, at: i),
               i == 0 || !isLetterOrDigit(scalars[i - 1]) {
                var j = i + word.count
                var spaces = 0
                while j < scalars.count, scalars[j] == " " || scalars[j] == "\t" || scalars[j] == "=" || scalars[j] == ":" {
                    j += 1
                    spaces += 1
                }
                var end = j
                while end < scalars.count, isTokenScalar(scalars[end]) { end += 1 }
                if spaces > 0, end > j {
                    out.append(contentsOf: scalars[i..<(i + word.count)])
                    out.append(" ")
                    out.append(contentsOf: marker.unicodeScalars)
                    i = end
                    continue
                }
            }
            out.append(scalars[i])
            i += 1
        }
        return String(out)
    }

    private static func matches(_ word: [Unicode.Scalar], in scalars: [Unicode.Scalar], at index: Int) -> Bool {
        for (offset, letter) in word.enumerated() {
            let s = scalars[index + offset]
            guard s.isASCII, Character(s).lowercased() == String(letter) else { return false }
        }
        return true
    }

    private static func isLetterOrDigit(_ s: Unicode.Scalar) -> Bool {
        s.properties.isAlphabetic || s.properties.numericType != nil
    }

    /// A token's characters: anything but space, quotes and the separators around it in headers,
    /// JSON and prose.
    private static func isTokenScalar(_ s: Unicode.Scalar) -> Bool {
        !(s.properties.isWhitespace || s == "\"" || s == "'" || s == "," || s == ";" || s == ")" || s == "(" || s == "<"
            || s == ">" || s == "}" || s == "{" || s == "]" || s == "[" || s == "\\" || CharacterSet.controlCharacters.contains(s))
    }
}
