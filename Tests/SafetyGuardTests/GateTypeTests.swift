import Foundation
import RTScheduler
import SafetyGuard  // deliberately not @testable: this file sees what any other module sees
import TestSupport
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

    /// The harness is shared with ActuatorsTests (TestSupport).
    static func typecheck(_ snippet: String) throws -> (status: Int32, output: String) { try typecheckSnippet(snippet) }
}
