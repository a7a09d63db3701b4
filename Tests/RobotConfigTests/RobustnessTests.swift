import Foundation
import AIOSRobot
import RobotConfig
import Testing

/// Bad input gets problems, never a crash: every value of every example replaced, in turn, by
/// values of the wrong type, sign or size (four per value, rotating through the list so that
/// each value meets several), and every line deleted in turn.
@Suite("Validator robustness")
struct RobustnessTests {
    static let oddValues = ["-1", "0", ".nan", "1e400", "[]", "{}", "~", "x", "[1, [2]]", "{a: 1}"]

    @Test(arguments: ExampleConfigTests.examples)
    func every_value_replaced_by_an_odd_one_gives_problems_not_a_crash(name: String) throws {
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent("examples/\(name)"), encoding: .utf8)
        let lines = text.components(separatedBy: "\n")
        var loads = 0, refused = 0
        for (index, line) in lines.enumerated() {
            guard let colon = line.range(of: ": "), !line.trimmingCharacters(in: .whitespaces).hasPrefix("#") else { continue }
            for k in 0..<4 {
                let odd = Self.oddValues[(index * 3 + k) % Self.oddValues.count]
                var mutated = lines
                mutated[index] = String(line[..<colon.upperBound]) + odd
                let report = RobotFileCheck.load(text: mutated.joined(separator: "\n"), file: name)
                loads += 1
                if report.configuration == nil {
                    refused += 1
                    // A refusal always says why, and where (the runtime's refusals too).
                    #expect(!report.errors.isEmpty)
                    #expect(report.errors.allSatisfy { $0.line >= 1 }, "line \(index + 1): \(mutated[index])\n\(report)")
                }
            }
        }
        for index in lines.indices {
            var mutated = lines
            mutated.remove(at: index)
            let report = RobotFileCheck.load(text: mutated.joined(separator: "\n"), file: name)
            #expect((report.configuration == nil) == !report.errors.isEmpty)
            #expect(report.errors.allSatisfy { $0.line >= 1 }, "without line \(index + 1)\n\(report)")
        }
        #expect(loads > 80)
        #expect(refused > loads / 2)  // most odd values are wrong somewhere
    }
}
