// libc's math only (cos, hypot, log10): the module stays free of Foundation.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The rig's run as a chart: chamber temperature against time with the setpoint and its band, the
/// fan's duty on a second axis, injected faults shaded, latches and resets as vertical markers,
/// and strips along the time axis for the heater relay and the latched time.
struct RigDrawing {
    let trace: RunTrace
    let rig: RigTrace
    let options: RunSVG.Options
    /// Wide enough for the strips' row labels and the temperature axis.
    let left: Double
    let top = 70.0
    let plotWidth = 760.0
    let plotHeight = 320.0
    let span: Double
    /// Temperature axis (°C).
    let low: Double
    let high: Double

    init(trace: RunTrace, options: RunSVG.Options) {
        self.trace = trace
        self.options = options
        left = max(70, Double((trace.faults.map(\.kind.count) + [9]).max() ?? 9) * 6.6 + 16)
        let rig = trace.rig ?? RigTrace(band: 0)
        self.rig = rig
        span = max(trace.duration.isFinite ? trace.duration : 0, rig.samples.last?.t ?? 0, 1e-3)
        let band = rig.band.isFinite ? abs(rig.band) : 0
        // Readings beyond ±1000 °C are not a chamber's: they are left out of the scale.
        let values = rig.samples.flatMap { [$0.temperature, $0.setpoint - band, $0.setpoint + band] }
            .filter { $0.isFinite && abs($0) < 1000 }
        let lo = values.min() ?? 0, hi = values.max() ?? 1
        let pad = max((hi - lo) * 0.08, 0.5)
        low = lo - pad
        high = hi + pad
    }

    func tx(_ t: Double) -> Double { left + min(max(t, 0), span) / span * plotWidth }
    /// Temperature to picture y; values off the scale sit on its edge.
    func ty(_ c: Double) -> Double { top + (high - min(max(c, low), high)) / (high - low) * plotHeight }
    func fy(_ duty: Double) -> Double { top + (1 - min(max(duty, 0), 1)) * plotHeight }

    func render() -> String {
        let legendX = left + plotWidth + 70
        let items = legend()
        let stripTop = top + plotHeight + 30
        let width = legendX + 220
        let height = max(stripTop + 2 * 20 + 50, top + Double(items.count) * 20 + 50)
        var canvas = SVGCanvas(width: width, height: height)
        canvas.rect(x: 0, y: 0, width: width, height: height, [("fill", "#ffffff")])
        drawTitle(&canvas, trace, world: "IoT rig", x: left, summary: eventSummary(trace, extra: temperatureSummary))
        axes(&canvas)
        faults(&canvas)
        setpoint(&canvas)
        fan(&canvas)
        temperature(&canvas)
        markers(&canvas)
        if rig.samples.isEmpty {
            canvas.text(trace.rig == nil ? "no rig data in this trace" : "no samples", x: left + plotWidth / 2,
                        y: top + plotHeight / 2, [("text-anchor", "middle"), ("fill", Palette.axis)])
        }
        let strip = Timeline(x0: left, x1: left + plotWidth, span: span)
        strip.row(&canvas, label: "heater on", y: stripTop, intervals: intervals { $0.heaterOn }, colour: Palette.heater,
                  cls: "heater-on")
        strip.row(&canvas, label: "latched", y: stripTop + 20, intervals: trace.latchedIntervals.map { ($0.start, $0.end) },
                  colour: Palette.latched, cls: "latched-time")
        strip.axis(&canvas, y: stripTop + 42)
        _ = drawLegend(&canvas, x: legendX, y: top, items: items)
        return canvas.document(title: "robotd run: \(trace.robot), IoT rig",
                               description: "Chamber temperature (ground truth) against time with setpoint, heater, fan, latches, resets and injected faults.")
    }

    private var temperatureSummary: [String] {
        let temps = rig.samples.map(\.temperature).filter(\.isFinite)
        guard let lo = temps.min(), let hi = temps.max() else { return [] }
        var parts = ["\(SVGCanvas.fixed(lo, decimals: 1))–\(SVGCanvas.fixed(hi, decimals: 1)) °C"]
        if let sp = rig.samples.last?.setpoint, sp.isFinite { parts.append("setpoint \(SVGCanvas.fixed(sp, decimals: 1)) °C") }
        return parts
    }

    /// Time intervals where `flag` holds, from sample to sample (a sample's state lasts to the next).
    private func intervals(_ flag: (RigSample) -> Bool) -> [(Double, Double)] {
        var out: [(Double, Double)] = []
        var open: Double?
        for s in rig.samples {
            if flag(s), open == nil { open = s.t }
            if !flag(s), let start = open {
                out.append((start, s.t))
                open = nil
            }
        }
        if let start = open { out.append((start, rig.samples.last?.t ?? start)) }
        return out
    }

    private func axes(_ canvas: inout SVGCanvas) {
        canvas.open(group: "axes")
        canvas.rect(x: left, y: top, width: plotWidth, height: plotHeight, [("fill", "#ffffff"), ("stroke", Palette.axis)])
        for c in niceTicks(from: low, to: high, count: 8) {
            canvas.line(left, ty(c), left + plotWidth, ty(c), [("stroke", Palette.grid)])
            canvas.text(SVGCanvas.num(c, decimals: 1), x: left - 6, y: ty(c) + 4,
                        [("text-anchor", "end"), ("font-size", "10"), ("fill", Palette.axis)])
        }
        for t in niceTicks(from: 0, to: span, count: 10) {
            canvas.line(tx(t), top, tx(t), top + plotHeight, [("stroke", Palette.grid), ("stroke-dasharray", "2 4")])
        }
        canvas.text("temperature (°C)", x: left, y: top - 8, [("font-size", "11"), ("fill", Palette.axis)])
        for d in [0.0, 0.25, 0.5, 0.75, 1] {
            canvas.line(left + plotWidth, fy(d), left + plotWidth + 4, fy(d), [("stroke", Palette.fan)])
            canvas.text("\(Int((d * 100).rounded())) %", x: left + plotWidth + 7, y: fy(d) + 4,
                        [("font-size", "10"), ("fill", Palette.fan)])
        }
        canvas.text("fan duty", x: left + plotWidth, y: top - 8, [("text-anchor", "end"), ("font-size", "11"), ("fill", Palette.fan)])
        canvas.close()
    }

    private func faults(_ canvas: inout SVGCanvas) {
        for f in trace.faults where f.start.isFinite {
            let a = tx(f.start), b = tx(trace.end(of: f))
            canvas.open(group: "fault-window", tooltip: "fault \(f.kind): \(SVGCanvas.fixed(f.start, decimals: 1))–\(SVGCanvas.fixed(trace.end(of: f), decimals: 1)) s")
            canvas.rect(x: a, y: top, width: max(b - a, 1.5), height: plotHeight,
                        [("fill", Palette.fault), ("fill-opacity", "0.15")])
            canvas.text(f.kind, x: a + 4, y: top + plotHeight - 6, [("font-size", "11"), ("fill", Palette.fault)])
            canvas.close()
        }
    }

    private func kept(_ changes: @escaping (Int) -> Bool) -> [RigSample] {
        Decimation.indices(count: rig.samples.count, maxPoints: options.maxPoints, changes: changes).map { rig.samples[$0] }
    }

    /// A value that holds until the next command (setpoint, fan duty) as a step line through its
    /// changes only: a constant setpoint is two points, not one per sample. Changes beyond
    /// `maxPoints` are thinned.
    private func steps(_ value: (RigSample) -> Double) -> [(t: Double, v: Double)] {
        let samples = rig.samples
        guard let last = samples.last else { return [] }
        var changes = samples.indices.filter { $0 == 0 || value(samples[$0]) != value(samples[$0 - 1]) }
        if changes.count > options.maxPoints {
            let stride = (changes.count + options.maxPoints - 1) / options.maxPoints
            changes = changes.enumerated().filter { $0.offset % stride == 0 }.map(\.element)
        }
        var out: [(t: Double, v: Double)] = []
        for (k, i) in changes.enumerated() {
            if k > 0 { out.append((samples[i].t, value(samples[changes[k - 1]]))) }
            out.append((samples[i].t, value(samples[i])))
        }
        out.append((last.t, value(samples[changes.last ?? 0])))
        return out
    }

    private func setpoint(_ canvas: inout SVGCanvas) {
        let line = steps(\.setpoint)
        guard !line.isEmpty else { return }
        let band = rig.band.isFinite ? abs(rig.band) : 0
        canvas.open(group: "setpoint")
        if band > 0 {
            let upper = line.map { (tx($0.t), ty($0.v + band)) }, lower = line.map { (tx($0.t), ty($0.v - band)) }
            canvas.polygon(upper + lower.reversed(), [("class", "setpoint-band"), ("fill", Palette.setpoint), ("fill-opacity", "0.12")])
        }
        canvas.polyline(line.map { (tx($0.t), ty($0.v)) }, [("class", "setpoint-line"), ("stroke", Palette.setpoint),
                                                             ("stroke-width", "1.5"), ("stroke-dasharray", "7 4")])
        canvas.close()
    }

    private func fan(_ canvas: inout SVGCanvas) {
        canvas.polyline(steps(\.fanDuty).map { (tx($0.t), fy($0.v)) },
                        [("class", "fan-duty"), ("stroke", Palette.fan), ("stroke-width", "1"), ("stroke-opacity", "0.8")])
    }

    /// Segmented like the rover's path: blue while robotd runs, red and dashed while latched.
    private func temperature(_ canvas: inout SVGCanvas) {
        let samples = rig.samples
        let points = kept { samples[$0].latched != samples[$0 - 1].latched }
        guard let first = points.first else { return }
        canvas.open(group: "temperature-series")
        var stretch: [(Double, Double)] = []
        var latched = first.latched
        for s in points {
            let point = (tx(s.t), ty(s.temperature))
            if s.latched != latched {
                stretch.append(point)
                draw(&canvas, stretch, latched: latched)
                stretch = []
                latched = s.latched
            }
            stretch.append(point)
        }
        draw(&canvas, stretch, latched: latched)
        canvas.close()
    }

    private func draw(_ canvas: inout SVGCanvas, _ points: [(Double, Double)], latched: Bool) {
        var style = [("class", latched ? "temperature-latched" : "temperature"),
                     ("stroke", latched ? Palette.latched : Palette.driving), ("stroke-width", "2"), ("stroke-linejoin", "round")]
        if latched { style.append(("stroke-dasharray", "5 3")) }
        canvas.polyline(points, style)
    }

    private func markers(_ canvas: inout SVGCanvas) {
        var placer = LabelPlacer(bounds: (left, top, left + plotWidth, top + plotHeight))
        for r in trace.resets where r.t.isFinite {
            let x = tx(r.t)
            canvas.open(group: "reset", tooltip: "reset at \(SVGCanvas.fixed(r.t, decimals: 2)) s")
            canvas.line(x, top, x, top + plotHeight, [("stroke", Palette.reset), ("stroke-width", "1.5"), ("stroke-dasharray", "3 3")])
            canvas.circle(cx: x, cy: top + 10, r: 5, [("fill", "#ffffff"), ("stroke", Palette.reset), ("stroke-width", "2.5")])
            let label = "reset \(SVGCanvas.fixed(r.t, decimals: 1)) s"
            let at = placer.place(label, nearX: x, y: top + 24)
            canvas.label(label, x: at.x, y: at.y, [("fill", Palette.reset)])
            canvas.close()
        }
        for cluster in latchClusters(trace.latches) {
            guard let l = cluster.first else { continue }
            let x = tx(l.t)
            canvas.open(group: "latch", tooltip: latchTooltip(cluster))
            canvas.line(x, top, x, top + plotHeight, [("stroke", Palette.latchMarker), ("stroke-width", "1.5"), ("stroke-dasharray", "3 3")])
            diamond(&canvas, x: x, y: top + 10, size: 7, colour: Palette.latchMarker)
            let label = latchLabel(cluster)
            let at = placer.place(label, nearX: x, y: top + 24)
            canvas.label(label, x: at.x, y: at.y, [("class", "latch-label"),
                                                    ("fill", Palette.latchMarker), ("font-weight", "bold")])
            canvas.close()
        }
    }

    private func legend() -> [(LegendSwatch, String)] {
        var items: [(LegendSwatch, String)] = [
            (.line(colour: Palette.driving, dashed: false, width: 2), "temperature"),
            (.line(colour: Palette.latched, dashed: true, width: 2), "temperature, latched"),
            (.line(colour: Palette.setpoint, dashed: true, width: 1.5), "setpoint"),
        ]
        if rig.band.isFinite && rig.band != 0 {
            items.append((.area(colour: Palette.setpoint, opacity: 0.12), "± \(SVGCanvas.num(abs(rig.band))) °C band"))
        }
        items += [
            (.line(colour: Palette.fan, dashed: false, width: 1), "fan duty (right axis)"),
            (.area(colour: Palette.heater, opacity: 0.85), "heater on"),
            (.diamond(colour: Palette.latchMarker), "latch (cause)"),
            (.ring(colour: Palette.reset), "reset"),
        ]
        if !trace.faults.isEmpty { items.append((.area(colour: Palette.fault, opacity: 0.3), "injected fault")) }
        return items
    }
}
