// libc's math only (cos, hypot, log10): the module stays free of Foundation.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Renders a `RunTrace` as a standalone SVG 1.1 document (UTF-8, no external assets): the rover's
/// arena to scale with the path driven, or the rig's temperature against time, with every latch,
/// reset, collision and injected fault marked. Bad values (not finite, empty series) are left out
/// of the drawing, never a crash.
public enum RunSVG {
    public struct Options: Sendable, Equatable {
        /// Long series are thinned to about this many points per series (the file stays small).
        public var maxPoints = 2000
        /// Radius of the circle drawn around each waypoint (m), the criteria's default tolerance.
        public var waypointTolerance = 0.2
        public init() {}
    }

    public static func render(_ trace: RunTrace, options: Options = Options()) -> String {
        switch trace.world {
        case .rover: RoverDrawing(trace: trace, options: options).render()
        case .iotRig: RigDrawing(trace: trace, options: options).render()
        }
    }
}

// MARK: shared pieces

/// Title and one summary line, the same for both worlds.
func drawTitle(_ canvas: inout SVGCanvas, _ trace: RunTrace, world: String, x: Double, summary: String) {
    var title = "\(trace.robot) — \(world) · \(SVGCanvas.fixed(trace.duration, decimals: 1)) s"
    if let seed = trace.seed { title += " · seed \(seed)" }
    canvas.text(title, x: x, y: 26, [("class", "title"), ("font-size", "17"), ("font-weight", "bold"), ("fill", Palette.ink)])
    canvas.text(summary, x: x, y: 46, [("class", "subtitle"), ("font-size", "12"), ("fill", Palette.axis)])
}

/// "2 latches · 1 reset · faults: serial-unplug 5.0–7.0 s"
func eventSummary(_ trace: RunTrace, extra: [String]) -> String {
    var parts = extra
    parts.append(plural(trace.latches.count, "latch", "latches"))
    parts.append(plural(trace.resets.count, "reset", "resets"))
    if trace.faults.isEmpty {
        parts.append("no injected fault")
    } else {
        parts.append("faults: " + trace.faults.map {
            "\($0.kind) \(SVGCanvas.fixed($0.start, decimals: 1))–\(SVGCanvas.fixed(trace.end(of: $0), decimals: 1)) s"
        }.joined(separator: ", "))
    }
    return parts.joined(separator: " · ")
}

func plural(_ n: Int, _ one: String, _ many: String) -> String { "\(n) \(n == 1 ? one : many)" }

/// Tick positions for an axis: a step of 1, 2 or 5 × 10ⁿ giving at most about `count` ticks.
func niceTicks(from low: Double, to high: Double, count: Int = 8) -> [Double] {
    guard low.isFinite, high.isFinite, high > low, count > 0 else { return [] }
    let raw = (high - low) / Double(count)
    let magnitude = pow(10, (log10(raw)).rounded(.down))
    let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
    var ticks: [Double] = []
    var v = (low / step).rounded(.up) * step
    while v <= high + step * 1e-9, ticks.count < 100 {
        ticks.append(abs(v) < step * 1e-9 ? 0 : v)
        v += step
    }
    return ticks
}

/// One entry of a legend: a small drawing and its words.
enum LegendSwatch {
    case line(colour: String, dashed: Bool, width: Double)
    case area(colour: String, opacity: Double)
    case diamond(colour: String)
    case cross(colour: String)
    case ring(colour: String)
    case disc(colour: String)
    case arrow(colour: String)
}

func drawLegend(_ canvas: inout SVGCanvas, x: Double, y: Double, items: [(LegendSwatch, String)]) -> Double {
    let rowHeight = 20.0
    let height = Double(items.count) * rowHeight + 30
    canvas.open(group: "legend")
    canvas.rect(x: x, y: y, width: 200, height: height,
                [("fill", "#ffffff"), ("stroke", Palette.grid), ("stroke-width", "1"), ("rx", "4")])
    canvas.text("Legend", x: x + 10, y: y + 18, [("font-weight", "bold"), ("fill", Palette.ink)])
    for (i, item) in items.enumerated() {
        let cy = y + 36 + Double(i) * rowHeight
        drawMarker(&canvas, item.0, x: x + 22, y: cy)
        canvas.text(item.1, x: x + 42, y: cy + 4, [("fill", Palette.ink)])
    }
    canvas.close()
    return height
}

func drawMarker(_ canvas: inout SVGCanvas, _ swatch: LegendSwatch, x: Double, y: Double) {
    switch swatch {
    case let .line(colour, dashed, width):
        var style = [("stroke", colour), ("stroke-width", SVGCanvas.num(width))]
        if dashed { style.append(("stroke-dasharray", "6 3")) }
        canvas.line(x - 12, y, x + 12, y, style)
    case let .area(colour, opacity):
        canvas.rect(x: x - 12, y: y - 6, width: 24, height: 12, [("fill", colour), ("fill-opacity", SVGCanvas.num(opacity))])
    case let .diamond(colour):
        diamond(&canvas, x: x, y: y, size: 6, colour: colour)
    case let .cross(colour):
        cross(&canvas, x: x, y: y, size: 5, colour: colour)
    case let .ring(colour):
        canvas.circle(cx: x, cy: y, r: 5, [("fill", "#ffffff"), ("stroke", colour), ("stroke-width", "2.5")])
    case let .disc(colour):
        canvas.circle(cx: x, cy: y, r: 7, [("fill", colour), ("stroke", Palette.wall)])
    case let .arrow(colour):
        canvas.line(x - 12, y, x + 8, y, [("stroke", colour), ("stroke-width", "2")])
        canvas.polygon([(x + 12, y), (x + 5, y - 4), (x + 5, y + 4)], [("fill", colour)])
    }
}

func diamond(_ canvas: inout SVGCanvas, x: Double, y: Double, size: Double, colour: String) {
    canvas.polygon([(x, y - size), (x + size, y), (x, y + size), (x - size, y)],
                   [("fill", colour), ("stroke", "#ffffff"), ("stroke-width", "1")])
}

func cross(_ canvas: inout SVGCanvas, x: Double, y: Double, size: Double, colour: String) {
    let style = [("stroke", colour), ("stroke-width", "3"), ("stroke-linecap", "round")]
    canvas.line(x - size, y - size, x + size, y + size, style)
    canvas.line(x - size, y + size, x + size, y - size, style)
}

/// Places short labels next to their markers without covering one another: tries a few offsets
/// around the anchor and keeps the first that overlaps no label placed before (or the last).
struct LabelPlacer {
    private var boxes: [(x0: Double, y0: Double, x1: Double, y1: Double)] = []
    let bounds: (x0: Double, y0: Double, x1: Double, y1: Double)

    init(bounds: (x0: Double, y0: Double, x1: Double, y1: Double)) { self.bounds = bounds }

    /// Returns the text's start point (left end of the baseline) for text-anchor start.
    mutating func place(_ text: String, nearX x: Double, y: Double, fontSize: Double = 11) -> (x: Double, y: Double) {
        let width = Double(text.count) * fontSize * 0.65
        let offsets: [(Double, Double)] = [(9, -7), (9, 15), (-9 - width, -7), (-9 - width, 15),
                                           (9, -21), (9, 29), (-9 - width, -21), (-9 - width, 29), (9, -35), (9, 43)]
        var chosen = (x: x + 9, y: y - 7)
        for (dx, dy) in offsets {
            let cx = min(max(x + dx, bounds.x0), bounds.x1 - width)
            let cy = min(max(y + dy, bounds.y0 + fontSize), bounds.y1)
            let box = (x0: cx - 1, y0: cy - fontSize, x1: cx + width + 1, y1: cy + 3)
            chosen = (cx, cy)
            if !boxes.contains(where: { $0.x0 < box.x1 && box.x0 < $0.x1 && $0.y0 < box.y1 && box.y0 < $0.y1 }) {
                break
            }
        }
        boxes.append((chosen.x - 1, chosen.y - fontSize, chosen.x + width + 1, chosen.y + 3))
        return chosen
    }
}

/// A strip of rows under a drawing: time on x, intervals and instants on each row.
struct Timeline {
    let x0: Double
    let x1: Double
    let span: Double

    init(x0: Double, x1: Double, span: Double) {
        self.x0 = x0
        self.x1 = x1
        self.span = span > 0 && span.isFinite ? span : 1
    }

    func x(_ t: Double) -> Double { x0 + min(max(t, 0), span) / span * (x1 - x0) }

    func row(_ canvas: inout SVGCanvas, label: String, y: Double, intervals: [(Double, Double)], colour: String,
             cls: String, opacity: Double = 0.85) {
        canvas.text(label, x: x0 - 8, y: y + 11, [("text-anchor", "end"), ("font-size", "11"), ("fill", Palette.axis)])
        canvas.rect(x: x0, y: y, width: x1 - x0, height: 14, [("fill", "#f9fafb"), ("stroke", Palette.grid)])
        canvas.open(group: cls)
        for (a, b) in intervals where a.isFinite && b.isFinite {
            let left = x(a), right = x(max(a, b))
            canvas.rect(x: left, y: y, width: max(right - left, 1.5), height: 14,
                        [("fill", colour), ("fill-opacity", SVGCanvas.num(opacity))])
        }
        canvas.close()
    }

    func axis(_ canvas: inout SVGCanvas, y: Double) {
        canvas.line(x0, y, x1, y, [("stroke", Palette.axis)])
        for t in niceTicks(from: 0, to: span, count: 10) {
            canvas.line(x(t), y, x(t), y + 4, [("stroke", Palette.axis)])
            canvas.text(SVGCanvas.num(t, decimals: 1), x: x(t), y: y + 16,
                        [("text-anchor", "middle"), ("font-size", "10"), ("fill", Palette.axis)])
        }
        canvas.text("time (s)", x: x1, y: y + 30, [("text-anchor", "end"), ("font-size", "11"), ("fill", Palette.axis)])
    }
}

/// Fault windows of one kind per row, in the order the kinds first appear.
func faultRows(_ trace: RunTrace) -> [(kind: String, windows: [(Double, Double)])] {
    var rows: [(kind: String, windows: [(Double, Double)])] = []
    for f in trace.faults {
        let window = (f.start, trace.end(of: f))
        if let i = rows.firstIndex(where: { $0.kind == f.kind }) {
            rows[i].windows.append(window)
        } else {
            rows.append((f.kind, [window]))
        }
    }
    return rows
}

/// Latches in time order, those less than `window` seconds after the previous one together: one
/// fault often latches twice within milliseconds (connection-lost, then actuator-failure), and two
/// markers on one spot would hide each other's labels.
func latchClusters(_ latches: [LatchEvent], window: Double = 0.3) -> [[LatchEvent]] {
    var clusters: [[LatchEvent]] = []
    for l in latches.filter({ $0.t.isFinite }).sorted(by: { $0.t < $1.t }) {
        if let last = clusters.last?.last, l.t - last.t < window {
            clusters[clusters.count - 1].append(l)
        } else {
            clusters.append([l])
        }
    }
    return clusters
}

/// "connection-lost + actuator-failure 5.0 s"
func latchLabel(_ cluster: [LatchEvent]) -> String {
    var causes: [String] = []
    for l in cluster where !causes.contains(l.cause) { causes.append(l.cause) }
    return causes.joined(separator: " + ") + " \(SVGCanvas.fixed(cluster.first?.t ?? 0, decimals: 1)) s"
}

func latchTooltip(_ cluster: [LatchEvent]) -> String {
    cluster.map { "latch at \(SVGCanvas.fixed($0.t, decimals: 2)) s: \($0.cause), stop category \($0.category)" }
        .joined(separator: "; ")
}
