// libc's math only (cos, hypot, log10): the module stays free of Foundation.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The rover's run seen from above: the arena to scale with a metre grid, the path driven (red
/// while latched), start and end, waypoints, latches, collisions and resets where they happened,
/// and a timeline of latched time, faults and events underneath.
struct RoverDrawing {
    let trace: RunTrace
    let rover: RoverTrace
    let options: RunSVG.Options
    /// What the map shows (m): the arena, or the samples' extent if the arena is unusable.
    let view: (minX: Double, minY: Double, maxX: Double, maxY: Double)
    let pixelsPerMetre: Double
    /// Wide enough for the timeline's row labels (fault kinds) left of the map.
    let left: Double
    let top = 70.0

    init(trace: RunTrace, options: RunSVG.Options) {
        self.trace = trace
        self.options = options
        left = max(56, Double((trace.faults.map(\.kind.count) + [7]).max() ?? 7) * 6.6 + 16)
        let rover = trace.rover ?? RoverTrace(arena: ArenaShape(minX: -1, minY: -1, maxX: 1, maxY: 1),
                                              start: TracePose(x: 0, y: 0, yaw: 0))
        self.rover = rover
        let a = rover.arena
        if [a.minX, a.minY, a.maxX, a.maxY].allSatisfy(\.isFinite), a.maxX > a.minX, a.maxY > a.minY {
            view = (a.minX, a.minY, a.maxX, a.maxY)
        } else {
            // Clamped: a wild sample must not make the picture kilometres wide.
            let xs = rover.samples.map(\.x).filter { abs($0) <= 1000 }, ys = rover.samples.map(\.y).filter { abs($0) <= 1000 }
            view = ((xs.min() ?? 0) - 1, (ys.min() ?? 0) - 1, (xs.max() ?? 0) + 1, (ys.max() ?? 0) + 1)
        }
        let width = view.maxX - view.minX, height = view.maxY - view.minY
        let scale = min(700 / width, 540 / height, 200)
        pixelsPerMetre = scale
        // Grid lines at least 20 px apart: 1 m in any arena of a sensible size.
        gridStep = [1.0, 2, 5, 10, 20, 50, 100, 200, 500].first { $0 * scale >= 20 } ?? 1000
    }

    let gridStep: Double

    var mapWidth: Double { (view.maxX - view.minX) * pixelsPerMetre }
    var mapHeight: Double { (view.maxY - view.minY) * pixelsPerMetre }

    /// Arena (m) to picture (px): y up in the arena, down in SVG.
    func px(_ x: Double) -> Double { left + (x - view.minX) * pixelsPerMetre }
    func py(_ y: Double) -> Double { top + (view.maxY - y) * pixelsPerMetre }

    /// Where an event without its own position happened, from the path.
    func position(_ t: Double) -> Point2D? { rover.position(at: t) }

    func render() -> String {
        let rows = faultRows(trace)
        let timelineTop = top + mapHeight + 44
        let timelineHeight = Double(2 + rows.count) * 20 + 40
        let legendItems = legend()
        let legendX = left + mapWidth + 28
        let width = legendX + 220
        let height = max(timelineTop + timelineHeight, top + Double(legendItems.count) * 20 + 50)
        var canvas = SVGCanvas(width: width, height: height)
        canvas.rect(x: 0, y: 0, width: width, height: height, [("fill", "#ffffff")])
        drawTitle(&canvas, trace, world: "rover", x: left, summary: eventSummary(trace, extra: [
            "\(SVGCanvas.fixed(distanceDriven, decimals: 1)) m driven",
            plural(rover.collisions.count, "collision", "collisions"),
        ]))
        grid(&canvas)
        arena(&canvas)
        waypoints(&canvas)
        path(&canvas)
        startAndEnd(&canvas)
        var placer = LabelPlacer(bounds: (left, top, left + mapWidth, top + mapHeight))
        collisions(&canvas, &placer)
        resets(&canvas, &placer)
        latches(&canvas, &placer)
        if trace.rover == nil {
            canvas.text("no rover data in this trace", x: left + mapWidth / 2, y: top + mapHeight / 2,
                        [("text-anchor", "middle"), ("fill", Palette.axis)])
        }
        timeline(&canvas, top: timelineTop, rows: rows)
        _ = drawLegend(&canvas, x: legendX, y: top, items: legendItems)
        return canvas.document(title: "robotd run: \(trace.robot), rover",
                               description: "Path of the simulated rover (ground truth) with latches, resets, collisions and injected faults.")
    }

    var distanceDriven: Double {
        zip(rover.samples, rover.samples.dropFirst()).reduce(0) { sum, pair in
            let d = hypot(pair.1.x - pair.0.x, pair.1.y - pair.0.y)
            return d.isFinite ? sum + d : sum
        }
    }

    private func grid(_ canvas: inout SVGCanvas) {
        canvas.open(group: "grid")
        // At most 200 lines each way, whatever the arena's size claims.
        var x = (view.minX / gridStep).rounded(.up) * gridStep, lines = 0
        while x <= view.maxX && lines < 200 {
            lines += 1
            canvas.line(px(x), top, px(x), top + mapHeight, [("stroke", Palette.grid), ("stroke-width", "1")])
            canvas.text(SVGCanvas.num(x), x: px(x), y: top + mapHeight + 16,
                        [("text-anchor", "middle"), ("font-size", "10"), ("fill", Palette.axis)])
            x += gridStep
        }
        var y = (view.minY / gridStep).rounded(.up) * gridStep
        lines = 0
        while y <= view.maxY && lines < 200 {
            lines += 1
            canvas.line(left, py(y), left + mapWidth, py(y), [("stroke", Palette.grid), ("stroke-width", "1")])
            canvas.text(SVGCanvas.num(y), x: left - 6, y: py(y) + 4,
                        [("text-anchor", "end"), ("font-size", "10"), ("fill", Palette.axis)])
            y += gridStep
        }
        canvas.text("x (m)", x: left + mapWidth, y: top + mapHeight + 30,
                    [("text-anchor", "end"), ("font-size", "11"), ("fill", Palette.axis)])
        canvas.text("y (m)", x: left - 6, y: top - 8, [("text-anchor", "end"), ("font-size", "11"), ("fill", Palette.axis)])
        canvas.close()
    }

    private func arena(_ canvas: inout SVGCanvas) {
        let a = rover.arena
        canvas.open(group: "walls")
        canvas.rect(x: px(a.minX), y: py(a.maxY), width: (a.maxX - a.minX) * pixelsPerMetre,
                    height: (a.maxY - a.minY) * pixelsPerMetre,
                    [("fill", "none"), ("stroke", Palette.wall), ("stroke-width", "4")])
        canvas.close()
        canvas.open(group: "obstacles")
        for o in a.obstacles where o.x.isFinite && o.y.isFinite && o.radius.isFinite {
            canvas.circle(cx: px(o.x), cy: py(o.y), r: o.radius * pixelsPerMetre,
                          [("fill", Palette.obstacle), ("stroke", Palette.wall), ("stroke-width", "1.5")])
        }
        canvas.close()
    }

    private func waypoints(_ canvas: inout SVGCanvas) {
        guard !rover.waypoints.isEmpty else { return }
        canvas.open(group: "waypoints")
        for (i, w) in rover.waypoints.enumerated() where w.x.isFinite && w.y.isFinite {
            canvas.circle(cx: px(w.x), cy: py(w.y), r: options.waypointTolerance * pixelsPerMetre,
                          [("fill", Palette.waypoint), ("fill-opacity", "0.1"), ("stroke", Palette.waypoint),
                           ("stroke-width", "1.5"), ("stroke-dasharray", "4 3")])
            canvas.circle(cx: px(w.x), cy: py(w.y), r: 2.5, [("fill", Palette.waypoint)])
            canvas.text(String(i + 1), x: px(w.x), y: py(w.y) - options.waypointTolerance * pixelsPerMetre - 4,
                        [("class", "waypoint-number"), ("text-anchor", "middle"), ("font-weight", "bold"),
                         ("fill", Palette.waypoint)])
        }
        canvas.close()
    }

    /// One polyline per stretch of constant latch state; each stretch ends at the next one's first
    /// point so that the line stays continuous where its colour changes.
    private func path(_ canvas: inout SVGCanvas) {
        let samples = rover.samples
        let kept = Decimation.indices(count: samples.count, maxPoints: options.maxPoints) {
            samples[$0].latched != samples[$0 - 1].latched
        }
        guard !kept.isEmpty else { return }
        canvas.open(group: "path")
        var stretch: [(Double, Double)] = []
        var latched = samples[kept[0]].latched
        for i in kept {
            let s = samples[i]
            let point = (px(s.x), py(s.y))
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
        var style = [("class", latched ? "path-latched" : "path-driving"), ("stroke", latched ? Palette.latched : Palette.driving),
                     ("stroke-width", latched ? "3" : "2.5"), ("stroke-linejoin", "round"), ("stroke-linecap", "round")]
        if latched { style.append(("stroke-dasharray", "5 3")) }
        canvas.polyline(points, style)
    }

    private func startAndEnd(_ canvas: inout SVGCanvas) {
        let s = rover.start
        if s.x.isFinite && s.y.isFinite && s.yaw.isFinite {
            canvas.open(group: "start", tooltip: "start (\(SVGCanvas.fixed(s.x, decimals: 2)), \(SVGCanvas.fixed(s.y, decimals: 2))) m, yaw \(SVGCanvas.fixed(s.yaw, decimals: 2)) rad")
            let x = px(s.x), y = py(s.y)
            canvas.circle(cx: x, cy: y, r: max(rover.bodyRadius, 0) * pixelsPerMetre,
                          [("fill", "#ffffff"), ("fill-opacity", "0.6"), ("stroke", Palette.ink), ("stroke-width", "1.5")])
            // The arrow is 0.6 m long on the arena's scale; y flips between arena and picture.
            let length = 0.6 * pixelsPerMetre
            let dx = cos(s.yaw), dy = -sin(s.yaw)
            let tipX = x + dx * length, tipY = y + dy * length
            canvas.line(x, y, tipX - dx * 8, tipY - dy * 8, [("stroke", Palette.ink), ("stroke-width", "2.5")])
            canvas.polygon([(tipX, tipY), (tipX - dx * 11 - dy * 5.5, tipY - dy * 11 + dx * 5.5),
                            (tipX - dx * 11 + dy * 5.5, tipY - dy * 11 - dx * 5.5)], [("fill", Palette.ink)])
            canvas.text("start", x: x, y: y + max(rover.bodyRadius, 0) * pixelsPerMetre + 14,
                        [("text-anchor", "middle"), ("font-size", "11"), ("fill", Palette.ink)])
            canvas.close()
        }
        if let last = rover.samples.last(where: { $0.x.isFinite && $0.y.isFinite }) {
            canvas.open(group: "end", tooltip: "end at \(SVGCanvas.fixed(last.t, decimals: 1)) s")
            canvas.rect(x: px(last.x) - 4.5, y: py(last.y) - 4.5, width: 9, height: 9,
                        [("fill", Palette.ink), ("stroke", "#ffffff"), ("stroke-width", "1")])
            canvas.close()
        }
    }

    private func collisions(_ canvas: inout SVGCanvas, _ placer: inout LabelPlacer) {
        for c in rover.collisions where c.x.isFinite && c.y.isFinite {
            let label = "collision \(SVGCanvas.fixed(c.t, decimals: 1)) s"
            canvas.open(group: "collision", tooltip: "collision at \(SVGCanvas.fixed(c.t, decimals: 2)) s at (\(SVGCanvas.fixed(c.x, decimals: 2)), \(SVGCanvas.fixed(c.y, decimals: 2))) m")
            cross(&canvas, x: px(c.x), y: py(c.y), size: 6, colour: Palette.collision)
            let at = placer.place(label, nearX: px(c.x), y: py(c.y))
            canvas.label(label, x: at.x, y: at.y, [("fill", Palette.collision), ("font-weight", "bold")])
            canvas.close()
        }
    }

    private func resets(_ canvas: inout SVGCanvas, _ placer: inout LabelPlacer) {
        for r in trace.resets {
            guard let p = position(r.t) else { continue }
            let label = "reset \(SVGCanvas.fixed(r.t, decimals: 1)) s"
            canvas.open(group: "reset", tooltip: "reset at \(SVGCanvas.fixed(r.t, decimals: 2)) s")
            canvas.circle(cx: px(p.x), cy: py(p.y), r: 6, [("fill", "#ffffff"), ("stroke", Palette.reset), ("stroke-width", "2.5")])
            let at = placer.place(label, nearX: px(p.x), y: py(p.y))
            canvas.label(label, x: at.x, y: at.y, [("fill", Palette.reset)])
            canvas.close()
        }
    }

    private func latches(_ canvas: inout SVGCanvas, _ placer: inout LabelPlacer) {
        for cluster in latchClusters(trace.latches) {
            guard let l = cluster.first else { continue }
            let p = l.x.flatMap { x in l.y.map { Point2D(x: x, y: $0) } } ?? position(l.t)
            guard let p, p.x.isFinite, p.y.isFinite else { continue }
            let label = latchLabel(cluster)
            canvas.open(group: "latch", tooltip: latchTooltip(cluster))
            diamond(&canvas, x: px(p.x), y: py(p.y), size: 7, colour: Palette.latchMarker)
            let at = placer.place(label, nearX: px(p.x), y: py(p.y))
            canvas.label(label, x: at.x, y: at.y, [("class", "latch-label"),
                                                    ("fill", Palette.latchMarker), ("font-weight", "bold")])
            canvas.close()
        }
    }

    private func timeline(_ canvas: inout SVGCanvas, top y0: Double, rows: [(kind: String, windows: [(Double, Double)])]) {
        let span = max(trace.duration, rover.samples.last?.t ?? 0)
        let line = Timeline(x0: left, x1: left + mapWidth, span: span)
        canvas.open(group: "timeline")
        var y = y0
        line.row(&canvas, label: "latched", y: y, intervals: trace.latchedIntervals.map { ($0.start, $0.end) },
                 colour: Palette.latched, cls: "latched-time")
        y += 20
        for row in rows {
            line.row(&canvas, label: row.kind, y: y, intervals: row.windows, colour: Palette.fault, cls: "fault-window", opacity: 0.6)
            y += 20
        }
        canvas.text("events", x: left - 8, y: y + 11, [("text-anchor", "end"), ("font-size", "11"), ("fill", Palette.axis)])
        canvas.rect(x: left, y: y, width: mapWidth, height: 14, [("fill", "#f9fafb"), ("stroke", Palette.grid)])
        for c in rover.collisions { cross(&canvas, x: line.x(c.t), y: y + 7, size: 4, colour: Palette.collision) }
        for r in trace.resets {
            canvas.circle(cx: line.x(r.t), cy: y + 7, r: 4, [("fill", "#ffffff"), ("stroke", Palette.reset), ("stroke-width", "2")])
        }
        for l in trace.latches { diamond(&canvas, x: line.x(l.t), y: y + 7, size: 5, colour: Palette.latchMarker) }
        line.axis(&canvas, y: y + 22)
        canvas.close()
    }

    private func legend() -> [(LegendSwatch, String)] {
        var items: [(LegendSwatch, String)] = [
            (.line(colour: Palette.driving, dashed: false, width: 2.5), "path driven"),
            (.line(colour: Palette.latched, dashed: true, width: 3), "path while latched"),
            (.arrow(colour: Palette.ink), "start pose"),
            (.disc(colour: Palette.obstacle), "obstacle"),
        ]
        if !rover.waypoints.isEmpty {
            items.append((.ring(colour: Palette.waypoint), "waypoint (\(SVGCanvas.num(options.waypointTolerance)) m)"))
        }
        items.append((.diamond(colour: Palette.latchMarker), "latch (cause)"))
        items.append((.cross(colour: Palette.collision), "collision"))
        items.append((.ring(colour: Palette.reset), "reset"))
        if !trace.faults.isEmpty { items.append((.area(colour: Palette.fault, opacity: 0.6), "injected fault")) }
        items.append((.line(colour: Palette.grid, dashed: false, width: 1), "grid: \(SVGCanvas.num(gridStep)) m"))
        return items
    }
}
