import Foundation
import RTScheduler
import SafetyGuard  // deliberately not @testable: this file sees what any other module sees
import Testing

/// Invariant 1 as a type fact: actuators accept only `ApprovedCommand`, and only SafetyGuard
/// can make one. These tests run the compiler on two snippets (Tests/GateSnippets): one that
/// forges an approved command (must fail to compile, for that reason) and one that obtains it
/// from the guard (must compile — so the harness itself is known to work).
@Suite("The gate is a type")
struct GateTypeTests {
    @Test func when_code_outside_the_guard_constructs_an_approved_command_expect_compile_error() throws {
        let result = try Self.typecheck("forge")
        #expect(result.status != 0)
        #expect(result.output.contains("'ApprovedCommand' initializer is inaccessible due to 'internal' protection level"))
    }

    @Test func when_code_gets_an_approved_command_from_the_guard_expect_it_compiles() throws {
        let result = try Self.typecheck("through-guard")
        #expect(result.status == 0, "\(result.output)")
    }

    @Test func when_a_command_passes_the_guard_expect_an_approved_command_carrying_it() throws {
        var guardian = try SafetyGuard(configuration: GuardConfiguration(channels: [
            ChannelConfiguration(name: "wheel", limits: .continuous(.velocity(maxVelocity: 1)))]))
        let proposal = Command(channel: ChannelID(index: 0), value: .continuous(0.05), origin: .teleop, sourceTag: 7,
                               issuedAt: .zero, validUntil: .distantFuture)
        let approved = try #require(guardian.check(proposal, now: .zero).approved)
        #expect(approved.value == .continuous(0.05) && approved.origin == .teleop && approved.sourceTag == 7)
    }

    static func typecheck(_ snippet: String) throws -> (status: Int32, output: String) {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let products = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let source = FileManager.default.temporaryDirectory.appendingPathComponent("gate-\(snippet)-\(getpid()).swift")
        try FileManager.default.copyItem(at: root.appendingPathComponent("Tests/GateSnippets/\(snippet).swift.txt"), to: source)
        defer { try? FileManager.default.removeItem(at: source) }
        var arguments = ["swiftc", "-typecheck", "-I", products.appendingPathComponent("Modules").path]
        // C modules that the imported Swift modules depend on: SwiftPM's generated module maps
        // and the module maps shipped in dependencies' include folders.
        let fm = FileManager.default
        for entry in (try? fm.contentsOfDirectory(atPath: products.path)) ?? [] where entry.hasSuffix(".build") {
            let map = products.appendingPathComponent(entry).appendingPathComponent("module.modulemap").path
            if fm.fileExists(atPath: map) { arguments += ["-Xcc", "-fmodule-map-file=\(map)"] }
        }
        let checkouts = root.appendingPathComponent(".build/checkouts")
        if let walker = fm.enumerator(atPath: checkouts.path) {
            for case let path as String in walker where path.hasSuffix("include/module.modulemap") {
                arguments += ["-I", checkouts.appendingPathComponent(path).deletingLastPathComponent().path]
            }
        }
        arguments.append(source.path)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
