import Foundation
import Testing
import TestSupport

/// examples/systemd/robotd.service: every key in the section systemd reads it from (a key in the
/// wrong section is ignored with only a log line, e.g. StartLimitIntervalSec= under [Service]), the
/// keys issue 9 asks for, and — where systemd-analyze exists — systemd's own verdict.
@Suite("The example systemd unit")
struct SystemdUnitTests {
    static let unitPath = repositoryRoot.appendingPathComponent("examples/systemd/robotd.service").path

    /// The keys this unit may use, by the section systemd documents them in (systemd.unit(5);
    /// systemd.service(5), systemd.exec(5), systemd.kill(5) for [Service]). A key not listed fails
    /// the test until it is added here under the section systemd's manual gives.
    static let knownKeys: [String: Set<String>] = [
        "Unit": ["Description", "Documentation", "After", "Before", "Wants", "Requires", "BindsTo", "PartOf",
                 "Conflicts", "ConditionPathExists", "AssertPathExists", "OnFailure",
                 "StartLimitIntervalSec", "StartLimitBurst", "StartLimitAction"],
        "Service": ["Type", "ExecStartPre", "ExecStart", "ExecStartPost", "ExecStop", "ExecReload", "KillSignal",
                    "KillMode", "TimeoutStartSec", "TimeoutStopSec", "Restart", "RestartSec", "LimitRTPRIO",
                    "LimitMEMLOCK", "LimitNOFILE", "CPUAffinity", "CPUSchedulingPolicy", "CPUSchedulingPriority",
                    "User", "Group", "Environment", "EnvironmentFile", "WorkingDirectory", "StandardOutput", "StandardError"],
        "Install": ["WantedBy", "RequiredBy", "Alias"],
    ]

    struct Entry {
        let section: String
        let key: String
        let value: String
        let line: Int
    }

    /// A unit file's assignments in order (comments and blank lines skipped; a trailing `\` joins
    /// the next line, as systemd reads it). Lines outside any section get section "".
    static func parse(_ text: String) -> [Entry] {
        var entries: [Entry] = []
        var section = ""
        var pending: (text: String, line: Int)?
        for (index, raw) in text.components(separatedBy: "\n").enumerated() {
            let trimmed = raw.trimmingCharacters(in: .whitespaces)
            if pending == nil && (trimmed.isEmpty || trimmed.hasPrefix("#") || trimmed.hasPrefix(";")) { continue }
            var logical = (pending?.text ?? "") + trimmed
            let line = pending?.line ?? index + 1
            if logical.hasSuffix("\\") {
                logical.removeLast()
                pending = (logical.trimmingCharacters(in: .whitespaces) + " ", line)
                continue
            }
            pending = nil
            if logical.hasPrefix("[") && logical.hasSuffix("]") {
                section = String(logical.dropFirst().dropLast())
                continue
            }
            guard let equals = logical.firstIndex(of: "=") else {
                entries.append(Entry(section: section, key: logical, value: "", line: line))
                continue
            }
            entries.append(Entry(section: section, key: logical[..<equals].trimmingCharacters(in: .whitespaces),
                                 value: logical[logical.index(after: equals)...].trimmingCharacters(in: .whitespaces), line: line))
        }
        return entries
    }

    /// What is wrong with each entry's place, in words (empty: every key where systemd reads it).
    static func misplaced(_ entries: [Entry]) -> [String] {
        entries.compactMap { e in
            if knownKeys[e.section]?.contains(e.key) == true { return nil }
            let home = knownKeys.filter { $0.value.contains(e.key) }.map(\.key).sorted()
            if home.isEmpty { return "line \(e.line): \(e.key)= in [\(e.section)] is not in the test's table of systemd keys" }
            return "line \(e.line): \(e.key)= is in [\(e.section)], systemd reads it in [\(home.joined(separator: "], ["))]"
        }
    }

    @Test func when_a_key_is_in_the_wrong_section_expect_the_check_to_say_where_it_belongs() {
        // The check itself must be able to fail: the unit as it was before the fix.
        let old = Self.parse("[Unit]\nDescription=x\n\n[Service]\nExecStart=/bin/true\nStartLimitIntervalSec=60\n# c\nStartLimitBurst=5\n")
        #expect(Self.misplaced(old) == ["line 6: StartLimitIntervalSec= is in [Service], systemd reads it in [Unit]",
                                        "line 8: StartLimitBurst= is in [Service], systemd reads it in [Unit]"])
        let joined = Self.parse("[Service]\nExecStart=/bin/echo a \\\n  b\nNoSuchKey=1\n")
        #expect(joined.first?.value == "/bin/echo a b")
        #expect(Self.misplaced(joined) == ["line 4: NoSuchKey= in [Service] is not in the test's table of systemd keys"])
    }

    @Test func every_key_of_the_example_unit_is_in_its_section_and_the_real_time_keys_are_there() throws {
        let entries = Self.parse(try String(contentsOfFile: Self.unitPath, encoding: .utf8))
        #expect(Self.misplaced(entries).isEmpty, "\(Self.misplaced(entries))")
        func value(_ section: String, _ key: String) -> String? { entries.first { $0.section == section && $0.key == key }?.value }
        #expect(value("Unit", "StartLimitIntervalSec") == "60" && value("Unit", "StartLimitBurst") == "5")
        #expect(value("Service", "Restart") == "on-failure")
        #expect(value("Service", "LimitRTPRIO") != nil && value("Service", "LimitMEMLOCK") == "infinity")
        #expect(value("Service", "CPUAffinity") != nil)
        #expect(value("Service", "ExecStart")?.contains("robotd run --config") == true)
        #expect(value("Service", "ExecStartPre")?.contains("robotd check --config") == true)
        #expect(value("Install", "WantedBy") == "multi-user.target")
    }

    static let systemdAnalyze: String? = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }

    /// `systemd-analyze verify` on a copy whose commands are /bin/true (it checks that they exist):
    /// its output, both streams.
    func verify(_ text: String) throws -> String {
        let analyze = try #require(Self.systemdAnalyze)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("robotd-unit-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let copy = text.components(separatedBy: "\n").map { line in
            line.hasPrefix("ExecStart=") ? "ExecStart=/bin/true" : line.hasPrefix("ExecStartPre=") ? "ExecStartPre=/bin/true" : line
        }.joined(separator: "\n")
        let path = folder.appendingPathComponent("robotd.service").path
        try copy.write(toFile: path, atomically: true, encoding: .utf8)
        let run = try Subprocess(analyze, ["verify", path])
        _ = try #require(run.wait(seconds: 120), "systemd-analyze did not end")
        return run.stdout + run.stderr
    }

    @Test func systemd_analyze_verify_reports_no_unknown_key() throws {
        guard Self.systemdAnalyze != nil else {
            print("SystemdUnitTests: systemd-analyze is not installed: systemd's own check of the unit skipped")
            return
        }
        let text = try String(contentsOfFile: Self.unitPath, encoding: .utf8)
        // The tool flags a misplaced key on this machine (else its silence below would prove nothing).
        let misplaced = text.replacingOccurrences(of: "[Service]\n", with: "[Service]\nStartLimitIntervalSec=60\n")
        #expect(try verify(misplaced).contains("Unknown key"), "systemd-analyze did not flag a misplaced key")
        let output = try verify(text)
        #expect(!output.contains("Unknown key") && !output.contains("Unknown section") && !output.contains("Failed to parse"), "\(output)")
    }
}
