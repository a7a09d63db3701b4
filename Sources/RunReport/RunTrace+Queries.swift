extension RoverTrace {
    /// Where the rover was at `t`, interpolated between the path samples around it. nil when `t`
    /// lies more than `slack` seconds outside the samples (no ground truth covers it).
    public func position(at t: Double, slack: Double = 0.25) -> Point2D? {
        guard let first = samples.first, let last = samples.last, t.isFinite,
              t >= first.t - slack, t <= last.t + slack else { return nil }
        if t <= first.t { return Point2D(x: first.x, y: first.y) }
        if t >= last.t { return Point2D(x: last.x, y: last.y) }
        // First sample at or after t (samples are in time order).
        var low = 0, high = samples.count - 1
        while low < high {
            let mid = (low + high) / 2
            if samples[mid].t < t { low = mid + 1 } else { high = mid }
        }
        let b = samples[low], a = samples[max(low - 1, 0)]
        let span = b.t - a.t
        let f = span > 0 ? (t - a.t) / span : 1
        return Point2D(x: a.x + (b.x - a.x) * f, y: a.y + (b.y - a.y) * f)
    }
}

extension RunTrace {
    /// The end of a fault window, a window without one closing at the end of the run.
    public func end(of fault: FaultWindow) -> Double { fault.end ?? max(duration, fault.start) }

    /// Intervals during which robotd had the stop latched, from the samples' flags.
    public var latchedIntervals: [(start: Double, end: Double)] {
        let flags: [(t: Double, latched: Bool)] = rover?.samples.map { ($0.t, $0.latched) }
            ?? rig?.samples.map { ($0.t, $0.latched) } ?? []
        var intervals: [(start: Double, end: Double)] = []
        var open: Double?
        for f in flags {
            if f.latched, open == nil { open = f.t }
            if !f.latched, let s = open {
                intervals.append((s, f.t))
                open = nil
            }
        }
        if let s = open { intervals.append((s, max(flags.last?.t ?? s, s))) }
        return intervals
    }
}

/// Thinning long series for drawing: at most about `maxPoints` kept, always the first and the last
/// and both samples around every change of a flag, so that a colour change stays where it was.
enum Decimation {
    static func indices(count: Int, maxPoints: Int, changes: (Int) -> Bool) -> [Int] {
        guard count > 0 else { return [] }
        let stride = max(1, (count + maxPoints - 1) / max(maxPoints, 1))
        var kept: [Int] = []
        kept.reserveCapacity(min(count, maxPoints + 16))
        for i in 0..<count {
            let boundary = i == 0 || i == count - 1 || (i > 0 && changes(i)) || (i + 1 < count && changes(i + 1))
            if boundary || i % stride == 0 { kept.append(i) }
        }
        return kept
    }
}
