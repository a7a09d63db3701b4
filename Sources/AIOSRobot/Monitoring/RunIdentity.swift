import Foundation
import Glibc
import Telemetry

/// Which robotd run published a message: the kernel's boot (`/proc/sys/kernel/random/boot_id`),
/// the process, and a random number drawn once per process (`run_id`) — in a container robotd
/// may be pid 1 at every restart on the same boot, so boot and pid alone do not tell two runs
/// apart. Goal numbers and topic sequence numbers restart with every run, so a reader that matches
/// an answer by number (`robotd mcp`) also needs the run: `state` and every `plan` message carry
/// all three, the same values from `current()`.
public struct RunIdentity: Sendable, Hashable, CustomStringConvertible {
    public var bootId: String
    public var pid: Int
    /// "": a message from a robotd before runs had one (never equal to a run that has one).
    public var runId: String

    public init(bootId: String, pid: Int, runId: String = "") {
        self.bootId = bootId
        self.pid = pid
        self.runId = runId
    }

    /// The run a `state` names.
    public init(_ state: StatePayload) { self.init(bootId: state.bootId, pid: state.pid, runId: state.runId ?? "") }

    /// This process's run: the same value at every call. `unknown` for a boot id that cannot be
    /// read (no /proc).
    public static func current() -> RunIdentity { thisProcess }

    // Immutable once drawn: every caller of this process gets the one value.
    private static let thisProcess: RunIdentity = {
        let text = (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)) ?? ""
        let id = text.trimmingCharacters(in: .whitespacesAndNewlines)
        var random = SystemRandomNumberGenerator()
        let runId = String(format: "%016llx%016llx", random.next() as UInt64, random.next() as UInt64)
        return RunIdentity(bootId: id.isEmpty ? "unknown" : id, pid: Int(getpid()), runId: runId)
    }()

    /// For a person (an answer's reason): the boot id cut at 64 characters (a real one has 36;
    /// this may be another robot's payload).
    public var description: String { "boot_id \(bootId.prefix(64)), pid \(pid), run_id \(runId.isEmpty ? "none" : String(runId.prefix(64)))" }
}
