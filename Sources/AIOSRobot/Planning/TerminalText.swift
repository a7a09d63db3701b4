import EpisodicMemory

/// Text from outside — a goal, a user name from a topic, a model's error — on one line with
/// nothing a terminal would act on: control characters, line and paragraph separators and
/// bidirectional overrides written as escapes (`\n`, `\u{1B}`), as `robotd memory` shows them.
enum TerminalText {
    /// The same escaping as `robotd memory`'s (one function, so the two never disagree).
    static func printable(_ text: String) -> String { TextClipping.printable(text) }
}

extension PlanTopicPayload {
    /// `line`, which is escaped itself (the name its callers had before it was).
    public var printableLine: String { line }
}
