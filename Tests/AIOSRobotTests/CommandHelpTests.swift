import Foundation
import TestSupport
import Testing

/// Every command's --help shows how it is used (an "Example:" block), found by walking the
/// SUBCOMMANDS of `robotd --help` so that a command added later is held to it too.
@Suite("--help of every command")
struct CommandHelpTests {
    func help(_ program: String, _ path: [String]) throws -> String {
        let run = try Subprocess(builtProduct(program), path + ["--help"])
        #expect(run.wait(seconds: 20) == 0, "\(program) \(path.joined(separator: " ")) --help failed")
        return run.stdout
    }

    /// The names in a help text's SUBCOMMANDS section ("  sim, demo   …": the first name).
    func subcommands(in help: String) -> [String] {
        guard let start = help.range(of: "SUBCOMMANDS:\n") else { return [] }
        var names: [String] = []
        for line in help[start.upperBound...].split(separator: "\n", omittingEmptySubsequences: false) {
            if line.isEmpty || line.hasPrefix("  See ") { break }
            // An entry starts at column 2; its wrapped description lines are indented further.
            guard line.hasPrefix("  "), line.dropFirst(2).first.map({ $0 != " " }) == true else { continue }
            let name = line.dropFirst(2).prefix { $0 != " " && $0 != "," }
            if name != "help" { names.append(String(name)) }
        }
        return names
    }

    @Test func when_any_command_shows_its_help_expect_an_example() throws {
        var pending: [[String]] = [[]]
        var seen: [String] = []
        while let path = pending.popLast() {
            let text = try help("robotd", path)
            let name = (["robotd"] + path).joined(separator: " ")
            seen.append(name)
            #expect(text.contains("Example:"), "\(name) --help has no example")
            pending += subcommands(in: text).map { path + [$0] }
        }
        // robotd, sim, monitor, bench (scheduler, guard), echo (serial, evdev, mqtt), ports: the walk found them all.
        #expect(seen.count >= 10, "only found \(seen)")
        #expect(Set(seen).isSuperset(of: ["robotd sim", "robotd monitor", "robotd bench scheduler", "robotd echo mqtt", "robotd ports"]))
        #expect(try help("robotd", ["demo"]).contains("Example:"))  // the former name of `sim`
        #expect(try help("robotd-sim", []).contains("Example:"))
    }
}
