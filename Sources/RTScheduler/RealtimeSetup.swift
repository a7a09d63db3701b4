import CRealtime
import Glibc
import Logging
import Platform

/// What real-time treatment the dispatch thread asks for. Each item is applied when permitted;
/// when not, the thread runs without it and one warning names everything that was not applied.
public struct RealtimeOptions: Sendable, Equatable {
    /// SCHED_FIFO priority (1…99); nil keeps SCHED_OTHER.
    public var fifoPriority: Int?
    /// Pin the dispatch thread to this CPU.
    public var cpu: Int?
    /// Memory locked (mlockall with MCL_ONFAULT, then every present mapping but the unlocked
    /// libraries populated with mlock): no page faults once running.
    public var lockMemory: Bool
    /// These libraries' mappings are left unlocked and never faulted in: code and data the control
    /// path never touches (ICU's tables alone are 38 MB; TLS for the broker link). What must be
    /// locked is the binary, the Swift runtime, libc, the heap and the thread stacks.
    public var unlockedLibraries: [String] = RealtimeOptions.offControlPathLibraries
    /// Hold /dev/cpu_dma_latency at 0 while running (no deep C-states), as cyclictest does.
    public var holdDMALatency: Bool
    /// Stack touched up front so the loop does not fault it in.
    public var prefaultStackBytes: Int

    public init(fifoPriority: Int? = nil, cpu: Int? = nil, lockMemory: Bool = false,
                holdDMALatency: Bool = false, prefaultStackBytes: Int = 256 * 1024) {
        self.fifoPriority = fifoPriority
        self.cpu = cpu
        self.lockMemory = lockMemory
        self.holdDMALatency = holdDMALatency
        self.prefaultStackBytes = prefaultStackBytes
    }

    /// Libraries robotd's control path never runs: internationalisation (ICU and Foundation's
    /// locale layer) and TLS (the broker connection runs on its own thread).
    public static let offControlPathLibraries = ["lib_FoundationICU.so", "libicu", "libFoundationInternationalization.so",
                                                 "libcrypto.so", "libssl.so"]

    /// Everything on: what robotd uses on a robot.
    public static func realtime(priority: Int = 80, cpu: Int? = nil) -> RealtimeOptions {
        RealtimeOptions(fifoPriority: priority, cpu: cpu, lockMemory: true, holdDMALatency: true)
    }
}

/// What was actually applied to the thread.
public struct RealtimeReport: Sendable, Equatable {
    public enum Policy: Sendable, Equatable { case fifo(priority: Int), other }
    public var policy: Policy = .other
    public var cpu: Int?
    public var memoryLocked = false
    /// Bytes left unlocked (`RealtimeOptions.unlockedLibraries`).
    public var unlockedBytes: Int64 = 0
    public var dmaLatencyHeld = false
    /// Each requested item that could not be applied, with the reason (errno text).
    public var notApplied: [String] = []
    var dmaLatencyFD: Int32 = -1

    public init() {}

    /// Closes the /dev/cpu_dma_latency handle (the kernel then drops the request).
    public func release() {
        if dmaLatencyFD >= 0 { close(dmaLatencyFD) }
    }
}

extension RealtimeReport: CustomStringConvertible {
    /// What was applied, in words, then what could not be and why, e.g.
    /// `SCHED_FIFO 80 on CPU 1, memory locked, cpu_dma_latency 0` or
    /// `SCHED_OTHER on any CPU; not applied: SCHED_FIFO priority 80: not permitted (…)`.
    public var description: String {
        var applied: [String] = []
        let policy = switch policy {
        case .fifo(let priority): "SCHED_FIFO \(priority)"
        case .other: "SCHED_OTHER"
        }
        applied.append(policy + (cpu.map { " on CPU \($0)" } ?? " on any CPU"))
        if memoryLocked { applied.append("memory locked") }
        if dmaLatencyHeld { applied.append("cpu_dma_latency 0") }
        let text = applied.joined(separator: ", ")
        return notApplied.isEmpty ? text : text + "; not applied: " + notApplied.joined(separator: "; ")
    }
}

public enum RealtimeSetup {
    /// For a daemon, before any thread starts: one malloc arena (glibc reserves 64 MiB per extra
    /// arena, and mlockall would count each as locked memory).
    public static func prepareProcess() {
        _ = rt_malloc_single_arena()
    }

    /// This process's resident and locked memory (kB, from /proc/self/status; -1 when unknown).
    public static var memory: (residentKiB: Int64, lockedKiB: Int64) {
        (rt_status_kib("VmRSS"), rt_status_kib("VmLck"))
    }

    /// Applies `options` to the calling thread. Never fails: what is not permitted is reported.
    public static func apply(_ options: RealtimeOptions, logger: Logger) -> RealtimeReport {
        var report = RealtimeReport()
        if let cpu = options.cpu {
            let rc = rt_pin_current_thread(Int32(cpu))
            if rc == 0 {
                report.cpu = cpu
            } else {
                let why = rc == EINVAL ? "CPU \(cpu) is not available to this process" : SystemErrorWords.text(rc)
                report.notApplied.append("CPU affinity \(cpu): \(why)")
            }
        }
        if options.lockMemory {
            var skipped: Int64 = 0
            let rc = withCStrings(options.unlockedLibraries) { rt_lock_memory($0, Int32(options.unlockedLibraries.count), &skipped) }
            if rc == 0 {
                report.memoryLocked = true
                report.unlockedBytes = skipped
            } else {
                report.notApplied.append("mlockall: \(errnoText(rc))")
            }
        }
        if options.holdDMALatency {
            let fd = open("/dev/cpu_dma_latency", O_RDWR)
            if fd >= 0 {
                var zero: Int32 = 0
                if write(fd, &zero, 4) == 4 {
                    report.dmaLatencyHeld = true
                    report.dmaLatencyFD = fd
                } else {
                    report.notApplied.append("cpu_dma_latency 0: \(dmaLatencyText(errno))")
                    close(fd)
                }
            } else {
                report.notApplied.append("cpu_dma_latency 0: \(dmaLatencyText(errno))")
            }
        }
        if let priority = options.fifoPriority {
            let rc = rt_set_fifo(Int32(priority))
            if rc == 0 {
                report.policy = .fifo(priority: priority)
            } else {
                let why = rc == EPERM ? "not permitted (needs root or CAP_SYS_NICE and an RLIMIT_RTPRIO budget)" : SystemErrorWords.text(rc)
                report.notApplied.append("SCHED_FIFO priority \(priority): \(why)")
            }
        }
        if options.prefaultStackBytes > 0 { rt_prefault_stack(UInt32(options.prefaultStackBytes)) }
        if !report.notApplied.isEmpty {
            let policy = report.policy == .other ? "SCHED_OTHER" : "SCHED_FIFO"
            logger.warning("real-time setup incomplete; the dispatch thread runs with \(policy) and without: \(report.notApplied.joined(separator: "; "))")
        }
        return report
    }

    /// The strings as a C array of C strings for the duration of `body`.
    static func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
        let copies = strings.map { strdup($0) }
        defer { copies.forEach { free($0) } }
        // NULL-terminated, so the buffer is never empty.
        let pointers: [UnsafePointer<CChar>?] = copies.map { $0.map { UnsafePointer($0) } } + [nil]
        return pointers.withUnsafeBufferPointer { body($0.baseAddress) }
    }

    static func errnoText(_ code: Int32) -> String { SystemErrorWords.text(code) }

    private static func dmaLatencyText(_ code: Int32) -> String {
        switch code {
        case EACCES, EPERM: "permission denied on /dev/cpu_dma_latency (needs root)"
        case ENOENT: "this kernel has no /dev/cpu_dma_latency"
        default: SystemErrorWords.text(code)
        }
    }
}
