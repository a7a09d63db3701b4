/// Where slow, asynchronous work (the LLM planner, a network call) runs: on Swift concurrency's
/// threads, never on the dispatch thread. Its results come back only as events posted to a
/// source, so they carry their own priority and deadline and wait their turn like any input.
public struct AsyncLane: Sendable {
    public let results: SourceHandle

    public init(results: SourceHandle) { self.results = results }

    /// Starts `work` on the global concurrent executor; when it returns a payload, that payload is
    /// posted to `results` (released at the completion instant). Returns the task so the caller
    /// can cancel it. A hung `work` holds only its own task. A payload the source refuses (its
    /// queue full, the scheduler stopped) goes to `refused`, so that it is never lost unsaid.
    @discardableResult
    public func submit(key: UInt32 = 0, refused: (@Sendable (Payload, PostResult) -> Void)? = nil,
                       _ work: @escaping @Sendable () async -> Payload?) -> Task<PostResult?, Never> {
        let results = self.results
        return Task.detached(priority: .utility) {
            guard let payload = await work(), !Task.isCancelled else { return nil }
            let result = results.post(payload, key: key)
            if !result.wasAccepted { refused?(payload, result) }
            return result
        }
    }
}
