import Foundation
import Glibc
import Telemetry

/// Which robotd run published a message: the kernel's boot (`/proc/sys/kernel/random/boot_id`)
/// and the process. Goal numbers and topic sequence numbers restart with every run, so a reader
/// that matches an answer by number (`robotd mcp`) also needs the run: `state` and every `plan`
/// message carry both, the same values from the one function below.
public struct RunIdentity: Sendable, Hashable, CustomStringConvertible {
    public var bootId: String
    public var pid: Int

    public init(bootId: String, pid: Int) {
        self.bootId = bootId
        self.pid = pid
    }

    /// The run a `state` names.
    public init(_ state: StatePayload) { self.init(bootId: state.bootId, pid: state.pid) }

    /// This process's run; `unknown` for a boot id that cannot be read (no /proc).
    public static func current() -> RunIdentity {
        let text = (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)) ?? ""
        let id = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return RunIdentity(bootId: id.isEmpty ? "unknown" : id, pid: Int(getpid()))
    }

    /// For a person (an answer's reason): the boot id cut at 64 characters (a real one has 36;
    /// this may be another robot's payload).
    public var description: String { "boot_id \(bootId.prefix(64)), pid \(pid)" }
}
