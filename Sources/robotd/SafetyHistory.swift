import AIOSRobot
import Foundation
import RTScheduler
import SafetyGuard

/// Every latch with its cause and every refused reset with its reasons, from the guard's audit
/// (drained once a second), for the demo's summary.
struct SafetyHistory {
    let origin: Instant
    let sensorNames: [String]
    private(set) var latches: [(at: Double, cause: String, category: Int)] = []
    private(set) var refusals: [(at: Double, causes: String)] = []
    private(set) var warnings: [(at: Double, fault: String)] = []

    init(origin: Instant, sensorNames: [String]) {
        self.origin = origin
        self.sensorNames = sensorNames
    }

    mutating func note(_ records: [AuditRecord]) {
        for r in records {
            let at = (Double(r.at.nanoseconds(since: origin)) / 1e6).rounded() / 1e3
            switch r.kind {
            case .latched: latches.append((at, r.fault?.description ?? "?", r.category?.rawValue ?? -1))
            case .resetRefused: refusals.append((at, r.causes.description))
            case .warn:
                let sensor = (r.fault == .staleSensor || r.fault == .silentSensor) && sensorNames.indices.contains(r.channel)
                    ? " (\(sensorNames[r.channel]))" : ""
                warnings.append((at, (r.fault?.description ?? "?") + sensor))
            default: break
            }
        }
    }

    var latchesJSON: String {
        "[" + latches.map { l in
            var j = JSONLine()
            j.add("t_s", l.at)
            j.add("cause", l.cause)
            j.add("category", l.category)
            return j.text
        }.joined(separator: ",") + "]"
    }

    /// Warnings, at most one per fault kind and second (a flapping one stays readable).
    var warningsJSON: String {
        var seen = Set<String>()
        return "[" + warnings.filter { seen.insert("\($0.fault)@\(Int($0.at))").inserted }.map { w in
            var j = JSONLine()
            j.add("t_s", w.at)
            j.add("fault", w.fault)
            return j.text
        }.joined(separator: ",") + "]"
    }

    var refusalsJSON: String {
        "[" + refusals.map { r in
            var j = JSONLine()
            j.add("t_s", r.at)
            j.add("causes", r.causes)
            return j.text
        }.joined(separator: ",") + "]"
    }
}
