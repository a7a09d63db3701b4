import SafetyGuard

/// What the guard said to a policy's commands, counted; approved ones (passed or clamped) go on.
public struct VerdictCounts: Sendable, Equatable, BitwiseCopyable {
    public var passed = 0
    public var clamped = 0
    public var rejected = 0
    public var stopped = 0
    public init() {}

    public mutating func route(_ verdict: Verdict, to write: (ApprovedCommand) -> Void) {
        switch verdict {
        case .pass(let approved):
            passed += 1
            write(approved)
        case .clamped(let approved, _):
            clamped += 1
            write(approved)
        case .rejected: rejected += 1
        case .stop: stopped += 1
        }
    }
}
