/// A minimal writer of standalone SVG 1.1: elements appended as text, every attribute value and
/// text content escaped here (callers never build markup by hand), numbers in plain decimal.
struct SVGCanvas {
    let width: Double
    let height: Double
    private var parts: [String] = []

    init(width: Double, height: Double) {
        self.width = width
        self.height = height
    }

    /// The whole document. `title` and `description` become `<title>`/`<desc>` (what screen readers
    /// and file browsers show).
    func document(title: String, description: String) -> String {
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
        out += "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"\(Self.num(width))\" height=\"\(Self.num(height))\""
        out += " viewBox=\"0 0 \(Self.num(width)) \(Self.num(height))\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
        out += "<title>\(Self.escape(title))</title>\n<desc>\(Self.escape(description))</desc>\n"
        out += parts.joined(separator: "\n")
        out += "\n</svg>\n"
        return out
    }

    // MARK: elements

    mutating func open(group cls: String, tooltip: String? = nil, attributes: [(String, String)] = []) {
        parts.append("<g" + Self.attributes([("class", cls)] + attributes) + ">")
        if let tooltip { parts.append("<title>\(Self.escape(tooltip))</title>") }
    }

    mutating func close() { parts.append("</g>") }

    mutating func rect(x: Double, y: Double, width: Double, height: Double, _ style: [(String, String)]) {
        element("rect", [("x", Self.num(x)), ("y", Self.num(y)), ("width", Self.num(max(0, width))),
                         ("height", Self.num(max(0, height)))] + style)
    }

    mutating func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, _ style: [(String, String)]) {
        element("line", [("x1", Self.num(x1)), ("y1", Self.num(y1)), ("x2", Self.num(x2)), ("y2", Self.num(y2))] + style)
    }

    mutating func circle(cx: Double, cy: Double, r: Double, _ style: [(String, String)]) {
        element("circle", [("cx", Self.num(cx)), ("cy", Self.num(cy)), ("r", Self.num(max(0, r)))] + style)
    }

    /// Points that are not finite are left out (no sample is better than a broken element).
    mutating func polyline(_ points: [(Double, Double)], _ style: [(String, String)]) {
        let finite = points.filter { $0.0.isFinite && $0.1.isFinite }
        guard finite.count >= 2 else { return }
        element("polyline", [("points", Self.points(finite)), ("fill", "none")] + style)
    }

    mutating func polygon(_ points: [(Double, Double)], _ style: [(String, String)]) {
        let finite = points.filter { $0.0.isFinite && $0.1.isFinite }
        guard finite.count >= 3 else { return }
        element("polygon", [("points", Self.points(finite))] + style)
    }

    mutating func text(_ content: String, x: Double, y: Double, _ style: [(String, String)] = []) {
        parts.append("<text" + Self.attributes([("x", Self.num(x)), ("y", Self.num(y))] + style) + ">"
                     + Self.escape(content) + "</text>")
    }

    /// Text on a white backing, so that a marker's label stays legible over lines and fills. The
    /// backing's width is an estimate (no font metrics here): 0.65 em a character.
    mutating func label(_ content: String, x: Double, y: Double, fontSize: Double = 11, _ style: [(String, String)] = []) {
        let width = Double(content.count) * fontSize * 0.65
        rect(x: x - 2, y: y - fontSize, width: width + 4, height: fontSize + 4,
             [("fill", "#ffffff"), ("fill-opacity", "0.85"), ("rx", "2")])
        text(content, x: x, y: y, [("font-size", Self.num(fontSize))] + style)
    }

    private mutating func element(_ name: String, _ attributes: [(String, String)]) {
        parts.append("<\(name)" + Self.attributes(attributes) + "/>")
    }

    // MARK: text and numbers

    static func attributes(_ list: [(String, String)]) -> String {
        list.map { " \($0.0)=\"\(escape($0.1))\"" }.joined()
    }

    static func points(_ list: [(Double, Double)]) -> String {
        list.map { num($0.0) + "," + num($0.1) }.joined(separator: " ")
    }

    /// XML 1.0 text: the five entities, and characters XML cannot carry at all (control characters
    /// other than tab, newline and return; U+FFFE, U+FFFF) replaced by U+FFFD, so that any cause
    /// text gives a well-formed file.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            case "\t", "\n", "\r": out.unicodeScalars.append(scalar)
            default:
                if scalar.value < 0x20 || scalar.value == 0xFFFE || scalar.value == 0xFFFF {
                    out += "\u{FFFD}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    /// Plain decimal with up to `decimals` places, trailing zeros dropped ("12.5", "3", "-0.25").
    static func num(_ value: Double, decimals: Int = 2) -> String {
        let text = fixed(value, decimals: decimals)
        guard text.contains(".") else { return text }
        var trimmed = Substring(text)
        while trimmed.last == "0" { trimmed = trimmed.dropLast() }
        if trimmed.last == "." { trimmed = trimmed.dropLast() }
        return trimmed == "-0" ? "0" : String(trimmed)
    }

    /// Exactly `decimals` places ("12.0"), for labels; without Foundation's formatter so that the
    /// output is the same everywhere. Not finite: "?".
    static func fixed(_ value: Double, decimals: Int = 1) -> String {
        guard value.isFinite else { return "?" }
        let places = min(max(decimals, 0), 6)
        var scale: Int64 = 1
        for _ in 0..<places { scale *= 10 }
        // Clamped so that the scaled value fits an Int64 (1e12 · 1e6 < 9.2e18): nothing drawn is that big.
        let clamped = min(max(value, -1e12), 1e12)
        let n = Int64((abs(clamped) * Double(scale)).rounded())
        let sign = clamped < 0 && n != 0 ? "-" : ""
        guard places > 0 else { return sign + String(n) }
        let fraction = String(n % scale)
        return sign + String(n / scale) + "." + String(repeating: "0", count: places - fraction.count) + fraction
    }
}

/// Colours, shared by both drawings and their legends so that one look means one thing.
enum Palette {
    static let driving = "#2563eb"
    static let latched = "#dc2626"
    static let latchMarker = "#7f1d1d"
    static let collision = "#ea580c"
    static let reset = "#16a34a"
    static let waypoint = "#7c3aed"
    static let fault = "#a855f7"
    static let grid = "#e5e7eb"
    static let axis = "#6b7280"
    static let ink = "#111827"
    static let obstacle = "#9ca3af"
    static let wall = "#374151"
    static let heater = "#f97316"
    static let fan = "#0891b2"
    static let setpoint = "#15803d"
    static let temperature = "#b91c1c"
}
