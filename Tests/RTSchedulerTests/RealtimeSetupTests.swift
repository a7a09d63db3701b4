import Platform
import CRealtime
import Foundation
import Logging
import Synchronization
import Testing
@testable import RTScheduler

@Suite("Real-time setup of the dispatch thread")
struct RealtimeSetupTests {
    /// Runs on a thread whose own credentials were dropped to `nobody` (a per-thread raw syscall),
    /// so SCHED_FIFO and mlockall are really refused by the kernel while the rest of the test
    /// process keeps root.
    @Test func when_not_permitted_expect_fallback_with_one_warning() throws {
        let warnings = WarningCollector()
        let logger = Logger(label: "test") { _ in warnings }
        let outcome = Mutex<(dropped: Int32, report: RealtimeReport, policy: Int32)?>(nil)
        let thread = try RealtimeThread(name: "unprivileged") {
            let dropped = rt_thread_drop_privileges(65534, 65534)
            let report = RealtimeSetup.apply(.realtime(priority: 50), logger: logger)
            outcome.withLock { $0 = (dropped, report, rt_current_policy()) }
            report.release()
        }
        thread.join()
        let result = try #require(outcome.withLock { $0 })
        try #require(result.dropped == 0, "could not drop privileges on the test thread")
        #expect(result.report.policy == .other)
        #expect(result.policy == 0)  // SCHED_OTHER
        #expect(result.report.notApplied.contains { $0.hasPrefix("SCHED_FIFO priority 50") })
        // What the daemon prints at start: the policy in words, then each refusal with its cause.
        #expect(result.report.description.hasPrefix("SCHED_OTHER on any CPU; not applied: "))
        #expect(result.report.description.contains("SCHED_FIFO priority 50: not permitted (needs root or CAP_SYS_NICE"))
        #expect(warnings.messages.count == 1)
        #expect(warnings.messages.first?.contains("SCHED_OTHER") == true)
    }

    @Test(.enabled(if: getuid() == 0, "SCHED_FIFO needs root or CAP_SYS_NICE"))
    func when_permitted_expect_fifo_and_pinning_applied() throws {
        let outcome = Mutex<(report: RealtimeReport, policy: Int32)?>(nil)
        let thread = try RealtimeThread(name: "privileged") {
            let report = RealtimeSetup.apply(RealtimeOptions(fifoPriority: 10, cpu: 0), logger: Logger(label: "test"))
            outcome.withLock { $0 = (report, rt_current_policy()) }
        }
        thread.join()
        let result = try #require(outcome.withLock { $0 })
        #expect(result.report.policy == .fifo(priority: 10))
        #expect(result.policy == 1)  // SCHED_FIFO
        #expect(result.report.cpu == 0)
        #expect(result.report.notApplied.isEmpty)
    }

    @Test func when_a_cpu_does_not_exist_expect_it_reported_not_applied() throws {
        let outcome = Mutex<RealtimeReport?>(nil)
        let thread = try RealtimeThread(name: "badcpu") {
            outcome.withLock { $0 = RealtimeSetup.apply(RealtimeOptions(cpu: 4095), logger: Logger(label: "test")) }
        }
        thread.join()
        let report = try #require(outcome.withLock { $0 })
        #expect(report.cpu == nil)
        #expect(report.notApplied.count == 1)
        #expect(report.description.contains("CPU affinity 4095: CPU 4095 is not available to this process"))
    }

    @Test func when_a_report_is_printed_expect_what_was_applied_in_words() {
        var report = RealtimeReport()
        report.policy = .fifo(priority: 80)
        report.cpu = 1
        report.memoryLocked = true
        report.dmaLatencyHeld = true
        #expect("\(report)" == "SCHED_FIFO 80 on CPU 1, memory locked, cpu_dma_latency 0")
        #expect("\(RealtimeReport())" == "SCHED_OTHER on any CPU")
    }
}

final class WarningCollector: LogHandler, @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    var messages: [String] { lock.lock(); defer { lock.unlock() }; return stored }
    func log(event: LogEvent) {
        guard event.level >= .warning else { return }
        lock.lock(); stored.append(event.message.description); lock.unlock()
    }
}
