import Foundation
import RobotConfig
import Testing

/// The repository's root (examples/, docs/), found from this file.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// As `robotd check` loads a file (host names looked up); `lookUpNames: false`: as a run does.
func check(_ yaml: String, file: String = "test.yaml", lookUpNames: Bool = true) -> ConfigurationReport {
    ConfigurationLoader.load(text: yaml, file: file, catalog: TestKinds.catalog, lookUpNames: lookUpNames)
}

/// The problem at exactly `line:column` with exactly `keyPath`, or a test failure listing what
/// was reported instead.
@discardableResult
func expectProblem(_ report: ConfigurationReport, _ severity: ConfigProblem.Severity = .error, at line: Int, _ column: Int,
                   _ keyPath: String, _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) -> ConfigProblem? {
    let found = report.problems.first {
        $0.severity == severity && $0.line == line && $0.column == column && $0.keyPath == keyPath && $0.message.contains(fragment)
    }
    #expect(found != nil, "no \(severity) at \(line):\(column) \(keyPath) containing \"\(fragment)\"; reported:\n\(report)",
            sourceLocation: sourceLocation)
    return found
}

/// A minimal valid file: one velocity channel carried by the simulator, `estop: none`.
/// Tests replace one line or append sections; line numbers below are this text's.
let baseLines = [
    "robot: {id: test}",                 // 1
    "estop: none",                       // 2
    "channels:",                         // 3
    "  - name: wheel",                   // 4
    "    kind: continuous",              // 5
    "    interface: velocity",           // 6
    "    limits:",                       // 7
    "      max_velocity: 10",            // 8
    "      max_acceleration: 20",        // 9
    "    safe_value: 0",                 // 10
    "    stop_category: 1",              // 11
    "    watchdog_timeout_ms: 100",      // 12
    "actuators:",                        // 13
    "  - name: sim",                     // 14
    "    kind: simulator",               // 15
    "    channels: [wheel]",             // 16
]

/// The base file with lines replaced (1-based; a replacement may hold several lines), lines
/// removed, and lines appended.
func base(replacing replacements: [Int: String] = [:], removing removed: Set<Int> = [], appending extra: [String] = []) -> String {
    var lines: [String] = []
    for (index, line) in baseLines.enumerated() where !removed.contains(index + 1) {
        lines.append(replacements[index + 1] ?? line)
    }
    return (lines + extra).joined(separator: "\n") + "\n"
}
