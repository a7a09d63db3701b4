import AIOSRobot
import Actuators
import CBenchFloors
import CRealtime
import CTransport
import Codecs
import Foundation
import Glibc
import Logging
import Platform
import RTScheduler
import SafetyGuard
import Synchronization
import Transports

/// `robotd bench e2e`: one sensor frame through robotd's real control path and back, beside the
/// same job done by a C echo (the pty's own cost), a three-thread C pipeline (the cost of each
/// hop) and an asyncio + pyserial program — all timed by one driver in the same run, one sample
/// per pipeline per round, the order rotating, so that the VM's noise hits them alike
/// (docs/benchmarks.md).
///
/// robotd's path: the driver writes a range frame into a pty → the serial reader thread decodes
/// it (`FrameSensorInput`) and posts a deadline-tagged event → on the dispatch thread, the event's
/// handler runs the obstacle-avoiding policy and the safety guard's checks → the actuator set →
/// the serial frame back end writes one motor-command frame per wheel → the driver reads both
/// back from the pty master. Measured with the actuator set three ways: `.threaded` with a writer
/// thread doing every device write, `.threaded` with the back end as a direct lane (the dispatch
/// thread writes when that costs no wait, the writer takes over otherwise), and `.inline` (the
/// dispatch thread writes and may wait: lockstep tests only).
public struct EndToEndBenchmark: Sendable {
    public enum Pipeline: String, CaseIterable, Sendable, Codable {
        case robotdThreaded = "robotd-threaded"
        case robotdInline = "robotd-inline"
        case robotdDirect = "robotd-direct"
        case floor = "c-one-thread"
        case topology = "c-three-threads"
        case peer = "python-asyncio"
    }

    public struct Options: Sendable {
        /// Seconds measured (after the warm-up).
        public var seconds: Double = 5
        /// Rounds before measuring: guard ramp-up, first wake-ups, Python's first calls.
        public var warmupSeconds: Double = 0.5
        /// Rounds per second; each round sends one frame to every pipeline.
        public var rateHz: Int = 1000
        public var fifoPriority = 80
        /// The dispatch thread's CPU (and the single-thread pipelines'); the driver takes another.
        public var cpu: Int = max(0, Int(rt_allowed_cpu_count()) - 1)
        /// The Python peer: the venv's interpreter and scripts/peers/e2e_peer.py. nil: not run.
        public var peer: PeerLocation? = PeerLocation.find()
        /// A pipeline that has not answered within this is counted as lost for that sample.
        public var replyTimeoutMilliseconds = 20
        public init() {}
    }

    /// Where the Python peer lives.
    public struct PeerLocation: Sendable, Equatable {
        public var python: String
        public var script: String
        public init(python: String, script: String) {
            self.python = python
            self.script = script
        }

        /// The checkout holding scripts/peers/e2e_peer.py, looked for above the running executable
        /// (.build/<config>/robotd, the test bundle) and above the working directory; the
        /// interpreter is .build/venv/bin/python3 there (scripts/setup-venv.sh). nil when either
        /// is missing.
        public static func find() -> PeerLocation? {
            var starts: [URL] = []
            if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
                starts.append(URL(fileURLWithPath: exe).deletingLastPathComponent())
            }
            starts.append(URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
            for start in starts {
                var dir = start
                for _ in 0..<8 {
                    let script = dir.appendingPathComponent("scripts/peers/e2e_peer.py").path
                    let python = dir.appendingPathComponent(".build/venv/bin/python3").path
                    if FileManager.default.fileExists(atPath: script) {
                        return FileManager.default.isExecutableFile(atPath: python) ? PeerLocation(python: python, script: script) : nil
                    }
                    dir.deleteLastPathComponent()
                }
            }
            return nil
        }
    }

    /// Round trip of one pipeline: driver writes the range frame → driver has read both motor frames.
    public struct Figures: Sendable, Codable, Equatable {
        public var pipeline: Pipeline
        public var samples: Int
        /// Samples with no complete answer within the reply time-out.
        public var lost: Int
        /// Answers that arrived outside a sample's wait (late ones).
        public var strayFrames: Int
        public var p50Us: Double
        public var p99Us: Double
        public var p999Us: Double
        public var maxUs: Double

        enum CodingKeys: String, CodingKey {
            case pipeline, samples, lost
            case strayFrames = "stray_frames"
            case p50Us = "p50_us"
            case p99Us = "p99_us"
            case p999Us = "p999_us"
            case maxUs = "max_us"
        }

        /// A pipeline without samples has no percentiles: null, not a number JSON cannot hold.
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(pipeline, forKey: .pipeline)
            try c.encode(samples, forKey: .samples)
            try c.encode(lost, forKey: .lost)
            try c.encode(strayFrames, forKey: .strayFrames)
            try c.encode(jsonNumber(p50Us), forKey: .p50Us)
            try c.encode(jsonNumber(p99Us), forKey: .p99Us)
            try c.encode(jsonNumber(p999Us), forKey: .p999Us)
            try c.encode(jsonNumber(maxUs), forKey: .maxUs)
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            pipeline = try c.decode(Pipeline.self, forKey: .pipeline)
            samples = try c.decode(Int.self, forKey: .samples)
            lost = try c.decode(Int.self, forKey: .lost)
            strayFrames = try c.decode(Int.self, forKey: .strayFrames)
            p50Us = try c.decodeIfPresent(Double.self, forKey: .p50Us) ?? .nan
            p99Us = try c.decodeIfPresent(Double.self, forKey: .p99Us) ?? .nan
            p999Us = try c.decodeIfPresent(Double.self, forKey: .p999Us) ?? .nan
            maxUs = try c.decodeIfPresent(Double.self, forKey: .maxUs) ?? .nan
        }

        init(pipeline: Pipeline, samples: Int, lost: Int, strayFrames: Int, p50Us: Double, p99Us: Double, p999Us: Double, maxUs: Double) {
            self.pipeline = pipeline
            self.samples = samples
            self.lost = lost
            self.strayFrames = strayFrames
            self.p50Us = p50Us
            self.p99Us = p99Us
            self.p999Us = p999Us
            self.maxUs = maxUs
        }
    }

    public struct Result: Sendable, Codable {
        public var machine: String
        public var realtime: String
        /// How robotd's daemon writes serial frames by default (`write:` of `serial_frames`):
        /// "direct" (the `e2e_direct_*` figures) or "writer" (the `e2e_*` figures).
        public var actuatorMode: String
        public var rateHz: Int
        public var seconds: Double
        public var pipelines: [Figures]
        public var e2eP50Us: Double
        public var e2eP99Us: Double
        public var e2eP999Us: Double
        public var e2eMaxUs: Double
        public var e2eSamples: Int
        public var e2eInlineP50Us: Double
        public var e2eInlineP99Us: Double
        public var e2eInlineP999Us: Double
        public var e2eInlineMaxUs: Double
        public var e2eInlineSamples: Int
        /// The direct lane (`write: direct`).
        public var e2eDirectP50Us: Double
        public var e2eDirectP99Us: Double
        public var e2eDirectP999Us: Double
        public var e2eDirectMaxUs: Double
        public var e2eDirectSamples: Int
        public var floorP50Us: Double
        public var floorP99Us: Double
        public var floorSamples: Int
        public var topologyFloorP50Us: Double
        public var topologyFloorP99Us: Double
        public var topologyFloorSamples: Int
        public var peerP50Us: Double?
        public var peerP99Us: Double?
        public var peerSamples: Int?
        /// robotd p99 ÷ the one-thread C p99 (aim ≤ 1.5).
        public var floorRatio: Double
        /// The Python peer's p99 ÷ robotd's (aim ≥ 2).
        public var peerRatio: Double?
        public var inlineFloorRatio: Double
        public var inlinePeerRatio: Double?
        public var directFloorRatio: Double
        public var directPeerRatio: Double?
        /// robotd's dispatch hop alone (serial reader posts → the handler starts), from the
        /// scheduler's own histogram, per mode.
        public var dispatchHopP99Us: Double
        public var inlineDispatchHopP99Us: Double
        public var directDispatchHopP99Us: Double
        /// The direct lane's commands: written by the dispatch thread itself, handed to the writer
        /// (the device lock busy, an older command waiting, the pty full, …), and frames it left
        /// partly written for the writer to finish.
        public var directWritten: UInt64
        public var directDeferred: UInt64
        public var directPartial: UInt64
        /// Inline writes that found the pty full and had to wait (a blocking wait on the dispatch
        /// thread); must be 0 for the inline figures to describe a non-blocking write.
        public var inlineWriteWaits: UInt64
        /// The guard's verdicts on the policy's commands (both modes): clamped ones are still written.
        public var guardPassed: Int
        public var guardClamped: Int
        public var guardRefused: Int
        public var notes: [String]

        enum CodingKeys: String, CodingKey {
            case machine, realtime, pipelines, seconds, notes
            case actuatorMode = "actuator_mode"
            case rateHz = "rate_hz"
            case e2eP50Us = "e2e_p50_us"
            case e2eP99Us = "e2e_p99_us"
            case e2eP999Us = "e2e_p999_us"
            case e2eMaxUs = "e2e_max_us"
            case e2eSamples = "e2e_samples"
            case e2eInlineP50Us = "e2e_inline_p50_us"
            case e2eInlineP99Us = "e2e_inline_p99_us"
            case e2eInlineP999Us = "e2e_inline_p999_us"
            case e2eInlineMaxUs = "e2e_inline_max_us"
            case e2eInlineSamples = "e2e_inline_samples"
            case e2eDirectP50Us = "e2e_direct_p50_us"
            case e2eDirectP99Us = "e2e_direct_p99_us"
            case e2eDirectP999Us = "e2e_direct_p999_us"
            case e2eDirectMaxUs = "e2e_direct_max_us"
            case e2eDirectSamples = "e2e_direct_samples"
            case floorP50Us = "floor_p50_us"
            case floorP99Us = "floor_p99_us"
            case floorSamples = "floor_samples"
            case topologyFloorP50Us = "topology_floor_p50_us"
            case topologyFloorP99Us = "topology_floor_p99_us"
            case topologyFloorSamples = "topology_floor_samples"
            case peerP50Us = "peer_p50_us"
            case peerP99Us = "peer_p99_us"
            case peerSamples = "peer_samples"
            case floorRatio = "floor_ratio"
            case peerRatio = "peer_ratio"
            case inlineFloorRatio = "inline_floor_ratio"
            case inlinePeerRatio = "inline_peer_ratio"
            case directFloorRatio = "direct_floor_ratio"
            case directPeerRatio = "direct_peer_ratio"
            case dispatchHopP99Us = "dispatch_hop_p99_us"
            case inlineDispatchHopP99Us = "inline_dispatch_hop_p99_us"
            case directDispatchHopP99Us = "direct_dispatch_hop_p99_us"
            case directWritten = "direct_written"
            case directDeferred = "direct_deferred"
            case directPartial = "direct_partial"
            case inlineWriteWaits = "inline_write_waits"
            case guardPassed = "guard_passed"
            case guardClamped = "guard_clamped"
            case guardRefused = "guard_refused"
        }

        /// Encodes absent optionals as null, so every key is always there.
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(machine, forKey: .machine)
            try c.encode(realtime, forKey: .realtime)
            try c.encode(actuatorMode, forKey: .actuatorMode)
            try c.encode(rateHz, forKey: .rateHz)
            try c.encode(seconds, forKey: .seconds)
            try c.encode(pipelines, forKey: .pipelines)
            try c.encode(jsonNumber(e2eP50Us), forKey: .e2eP50Us)
            try c.encode(jsonNumber(e2eP99Us), forKey: .e2eP99Us)
            try c.encode(jsonNumber(e2eP999Us), forKey: .e2eP999Us)
            try c.encode(jsonNumber(e2eMaxUs), forKey: .e2eMaxUs)
            try c.encode(e2eSamples, forKey: .e2eSamples)
            try c.encode(jsonNumber(e2eInlineP50Us), forKey: .e2eInlineP50Us)
            try c.encode(jsonNumber(e2eInlineP99Us), forKey: .e2eInlineP99Us)
            try c.encode(jsonNumber(e2eInlineP999Us), forKey: .e2eInlineP999Us)
            try c.encode(jsonNumber(e2eInlineMaxUs), forKey: .e2eInlineMaxUs)
            try c.encode(e2eInlineSamples, forKey: .e2eInlineSamples)
            try c.encode(jsonNumber(e2eDirectP50Us), forKey: .e2eDirectP50Us)
            try c.encode(jsonNumber(e2eDirectP99Us), forKey: .e2eDirectP99Us)
            try c.encode(jsonNumber(e2eDirectP999Us), forKey: .e2eDirectP999Us)
            try c.encode(jsonNumber(e2eDirectMaxUs), forKey: .e2eDirectMaxUs)
            try c.encode(e2eDirectSamples, forKey: .e2eDirectSamples)
            try c.encode(jsonNumber(floorP50Us), forKey: .floorP50Us)
            try c.encode(jsonNumber(floorP99Us), forKey: .floorP99Us)
            try c.encode(floorSamples, forKey: .floorSamples)
            try c.encode(jsonNumber(topologyFloorP50Us), forKey: .topologyFloorP50Us)
            try c.encode(jsonNumber(topologyFloorP99Us), forKey: .topologyFloorP99Us)
            try c.encode(topologyFloorSamples, forKey: .topologyFloorSamples)
            try c.encode(peerP50Us.flatMap(jsonNumber), forKey: .peerP50Us)
            try c.encode(peerP99Us.flatMap(jsonNumber), forKey: .peerP99Us)
            try c.encode(peerSamples, forKey: .peerSamples)
            try c.encode(jsonNumber(floorRatio), forKey: .floorRatio)
            try c.encode(peerRatio.flatMap(jsonNumber), forKey: .peerRatio)
            try c.encode(jsonNumber(inlineFloorRatio), forKey: .inlineFloorRatio)
            try c.encode(inlinePeerRatio.flatMap(jsonNumber), forKey: .inlinePeerRatio)
            try c.encode(jsonNumber(directFloorRatio), forKey: .directFloorRatio)
            try c.encode(directPeerRatio.flatMap(jsonNumber), forKey: .directPeerRatio)
            try c.encode(jsonNumber(dispatchHopP99Us), forKey: .dispatchHopP99Us)
            try c.encode(jsonNumber(inlineDispatchHopP99Us), forKey: .inlineDispatchHopP99Us)
            try c.encode(jsonNumber(directDispatchHopP99Us), forKey: .directDispatchHopP99Us)
            try c.encode(directWritten, forKey: .directWritten)
            try c.encode(directDeferred, forKey: .directDeferred)
            try c.encode(directPartial, forKey: .directPartial)
            try c.encode(inlineWriteWaits, forKey: .inlineWriteWaits)
            try c.encode(guardPassed, forKey: .guardPassed)
            try c.encode(guardClamped, forKey: .guardClamped)
            try c.encode(guardRefused, forKey: .guardRefused)
            try c.encode(notes, forKey: .notes)
        }

        public func figures(_ pipeline: Pipeline) -> Figures? { pipelines.first { $0.pipeline == pipeline } }
    }

    let options: Options
    let logger: Logger
    public init(options: Options = Options(), logger: Logger = Logger(label: "robotd.bench")) {
        self.options = options
        self.logger = logger
    }

    private var driverCPU: Int { options.cpu == 0 ? min(1, Int(rt_allowed_cpu_count()) - 1) : 0 }

    public func run(progress: (String) -> Void = { _ in }) throws -> Result {
        var notes: [String] = []
        let priority = options.fifoPriority
        let dispatchRealtime = RealtimeOptions.realtime(priority: priority, cpu: options.cpu)
        // The pipelines' threads mirror robotd's: serial reader 3 below the dispatch thread, the
        // actuator writer 1 below it; the C pipelines' threads get the same places.
        let readerPriority = max(1, priority - 3)
        let writerPriority = max(1, priority - 1)

        progress("starting pipelines")
        // Everything started is stopped in reverse order, on the way out or on an error.
        let cleanup = Cleanup()
        defer { cleanup.run() }
        var pipelines: [Pipeline] = [.robotdThreaded, .robotdDirect, .robotdInline, .floor, .topology]
        if options.peer != nil { pipelines.append(.peer) } else {
            notes.append("python peer not run: no .build/venv/bin/python3 beside scripts/peers/e2e_peer.py (run scripts/setup.sh)")
        }
        var ptys: [Pipeline: Pty] = [:]
        for p in pipelines { ptys[p] = try Pty() }
        func pty(_ p: Pipeline) throws -> Pty {
            guard let found = ptys[p] else { throw BenchmarkError("no pty for \(p.rawValue)") }
            return found
        }

        // robotd: one scheduler (one dispatch thread) serving the three actuator-set variants.
        let scheduler = Scheduler(clock: MonotonicClock(), logger: logger)
        let threaded = try RobotdLane(name: "threaded", slave: pty(.robotdThreaded).slavePath, scheduler: scheduler,
                                      mode: .threaded(ActuatorSet.WriterOptions(fifoPriority: writerPriority)), logger: logger)
        let direct = try RobotdLane(name: "direct", slave: pty(.robotdDirect).slavePath, scheduler: scheduler,
                                    mode: .threaded(ActuatorSet.WriterOptions(fifoPriority: writerPriority, directWrites: ["motors-direct"])),
                                    logger: logger)
        let inline = try RobotdLane(name: "inline", slave: pty(.robotdInline).slavePath, scheduler: scheduler,
                                    mode: .inline, logger: logger)
        let lanes = [threaded, direct, inline]

        // (a) one C thread, set up as the dispatch thread is.
        let floorFD = try pty(.floor).openSlave()
        cleanup.add { close(floorFD) }
        guard let echo = bf_echo_create(floorFD) else { throw BenchmarkError("out of memory") }
        let echoPointer = SendablePointer(echo)
        cleanup.add { bf_echo_destroy(echoPointer.raw) }
        let echoThread = try RealtimeThread(name: "bench-c-echo") { [logger] in
            let r = RealtimeSetup.apply(dispatchRealtime, logger: logger)
            bf_echo_serve(echoPointer.raw)
            r.release()
        }
        cleanup.add { bf_echo_stop(echoPointer.raw); echoThread.join() }
        // (b) three C threads placed as robotd's reader, dispatch thread and writer.
        let topologyFD = try pty(.topology).openSlave()
        cleanup.add { close(topologyFD) }
        guard let topology = bf_topology_create(topologyFD) else { throw BenchmarkError("out of memory") }
        let topologyPointer = SendablePointer(topology)
        cleanup.add { bf_topology_destroy(topologyPointer.raw) }
        let roles: [(String, RealtimeOptions, @Sendable (OpaquePointer) -> Void)] = [
            ("bench-c-reader", RealtimeOptions(fifoPriority: readerPriority), { bf_topology_reader($0) }),
            ("bench-c-worker", dispatchRealtime, { bf_topology_worker($0) }),
            ("bench-c-writer", RealtimeOptions(fifoPriority: writerPriority), { bf_topology_writer($0) }),
        ]
        var topologyThreads: [RealtimeThread] = []
        for (name, setup, body) in roles {
            let thread = try RealtimeThread(name: name) { [logger] in
                let r = RealtimeSetup.apply(setup, logger: logger)
                body(topologyPointer.raw)
                r.release()
            }
            topologyThreads.append(thread)
            cleanup.add { bf_topology_stop(topologyPointer.raw); thread.join() }
        }
        // (c) the Python peer, same priority and CPU as the dispatch thread.
        var peer: PeerProcess?
        if let location = options.peer, let pty = ptys[.peer] {
            do {
                let started = try PeerProcess(location: location, device: pty.slavePath, priority: priority, cpu: options.cpu)
                peer = started
                cleanup.add { _ = started.stop() }
                if !started.notApplied.isEmpty { notes.append("python peer: not applied: " + started.notApplied.joined(separator: "; ")) }
            } catch {
                notes.append("python peer failed to start: \(error)")
                pipelines.removeAll { $0 == .peer }
            }
        }

        // robotd last, right before the driver: its guard's clock starts with the dispatch thread,
        // and a range sensor silent past the start-up time-out (the Python peer can take seconds to
        // start on a loaded machine) would latch a stop, as on a robot.
        for lane in lanes {
            lane.actuators.start()
            cleanup.add { lane.stop() }
        }
        let report = try scheduler.start(realtime: dispatchRealtime)
        cleanup.add { scheduler.stop() }
        if !report.notApplied.isEmpty { notes.append("real-time setup incomplete: " + report.notApplied.joined(separator: "; ")) }
        for lane in lanes {
            try lane.startReader(priority: readerPriority)
            cleanup.add { lane.stopReader() }
        }

        // The driver: one thread, above every pipeline, on the other CPU.
        let driver = Driver(pipelines: pipelines, masters: try pipelines.map { try pty($0).master }, rateHz: options.rateHz,
                            seconds: options.seconds, warmupSeconds: options.warmupSeconds,
                            replyTimeoutNs: Int64(options.replyTimeoutMilliseconds) * 1_000_000)
        let driverRealtime = RealtimeOptions(fifoPriority: min(99, priority + 2), cpu: driverCPU, lockMemory: true)
        progress(String(format: "driving %@ at %d rounds/s: %.1f s warm-up, then %.1f s measured",
                        pipelines.map(\.rawValue).joined(separator: ", "), options.rateHz, options.warmupSeconds, options.seconds))
        let driverThread = try RealtimeThread(name: "bench-driver") { [logger] in
            _ = RealtimeSetup.apply(driverRealtime, logger: logger)
            driver.run()
        }
        var reported = 0
        while !driver.finished.load(ordering: .acquiring) {
            rt_sleep_until(rt_monotonic_ns() + 200_000_000)
            let rounds = driver.measuredRounds.load(ordering: .relaxed)
            let second = rounds / options.rateHz
            if second > reported && !driver.finished.load(ordering: .acquiring) {
                reported = second
                progress(String(format: "measured %d s of %.1f (%d rounds)", second, options.seconds, rounds))
            }
        }
        driverThread.join()
        // Now, before the sensor stream's end makes the range stale (a stop, as it should be).
        let latchNotes = lanes.compactMap { lane in lane.latchNote.map { "guard of robotd-\(lane.name) at the end of driving: \($0)" } }
        progress("stopping pipelines")
        if let counts = peer?.stop() { notes.append("python peer counters: \(counts)") }
        // Counters first (the C objects are freed by the cleanup).
        bf_echo_stop(echo)
        echoThread.join()
        bf_topology_stop(topology)
        for thread in topologyThreads { thread.join() }
        let floorCounts = bf_echo_counts(echo)
        let topologyCounts = bf_topology_counts(topology)
        let inlineWaits = inline.link.link.waits.load(ordering: .relaxed)
        let hops = (threaded.dispatchHop(scheduler), inline.dispatchHop(scheduler), direct.dispatchHop(scheduler))
        let directCounts = (direct.actuators.directWritten.load(ordering: .relaxed), direct.actuators.directDeferred.load(ordering: .relaxed),
                            direct.actuators.directPartial.load(ordering: .relaxed))
        let verdicts = lanes.map { $0.verdicts }
        cleanup.run()
        if floorCounts.rejected + topologyCounts.rejected + floorCounts.write_errors + topologyCounts.write_errors > 0 {
            notes.append("C pipelines: \(floorCounts.rejected + topologyCounts.rejected) frames rejected, "
                         + "\(floorCounts.write_errors + topologyCounts.write_errors) short writes")
        }
        if driver.overruns > 0 { notes.append("driver: \(driver.overruns) rounds skipped (a round overran its period)") }

        var figures: [Figures] = []
        for (i, p) in pipelines.enumerated() {
            figures.append(driver.figures(index: i, pipeline: p))
        }
        func find(_ p: Pipeline) -> Figures {
            figures.first { $0.pipeline == p } ?? Figures(pipeline: p, samples: 0, lost: 0, strayFrames: 0, p50Us: .nan, p99Us: .nan, p999Us: .nan, maxUs: .nan)
        }
        let e2e = find(.robotdThreaded), e2eInline = find(.robotdInline), e2eDirect = find(.robotdDirect)
        let floor = find(.floor), topo = find(.topology)
        let peerFigures = figures.first { $0.pipeline == .peer }
        for f in figures where f.lost > 0 { notes.append("\(f.pipeline.rawValue): \(f.lost) samples lost (no answer within \(options.replyTimeoutMilliseconds) ms)") }
        for (i, p) in pipelines.enumerated() where driver.abandoned[i] {
            notes.append("\(p.rawValue): abandoned after \(Driver.abandonAfter) answers in a row did not come")
        }
        notes += latchNotes
        for lane in lanes {
            switch lane.firstRefusal {
            case .rejected(let reason)?: notes.append("guard of robotd-\(lane.name): first refusal: \(reason.rawValue)")
            case .stop(let category, let kind)?: notes.append("guard of robotd-\(lane.name): first refusal: stop \(category) (\(kind))")
            default: break
            }
        }
        let policy: String = switch report.policy {
        case .fifo(let p): "dispatch SCHED_FIFO \(p) on cpu \(report.cpu.map(String.init) ?? "any"); serial readers FIFO \(readerPriority), writer FIFO \(writerPriority); driver FIFO \(min(99, priority + 2)) on cpu \(driverCPU)"
        case .other: "SCHED_OTHER (not permitted: \(report.notApplied.joined(separator: "; ")))"
        }
        return Result(
            machine: SchedulerBenchmark.machineDescription(), realtime: policy, actuatorMode: RobotKinds.serialFramesWriteDefault,
            rateHz: options.rateHz, seconds: options.seconds, pipelines: figures,
            e2eP50Us: e2e.p50Us, e2eP99Us: e2e.p99Us, e2eP999Us: e2e.p999Us, e2eMaxUs: e2e.maxUs, e2eSamples: e2e.samples,
            e2eInlineP50Us: e2eInline.p50Us, e2eInlineP99Us: e2eInline.p99Us, e2eInlineP999Us: e2eInline.p999Us,
            e2eInlineMaxUs: e2eInline.maxUs, e2eInlineSamples: e2eInline.samples,
            e2eDirectP50Us: e2eDirect.p50Us, e2eDirectP99Us: e2eDirect.p99Us, e2eDirectP999Us: e2eDirect.p999Us,
            e2eDirectMaxUs: e2eDirect.maxUs, e2eDirectSamples: e2eDirect.samples,
            floorP50Us: floor.p50Us, floorP99Us: floor.p99Us, floorSamples: floor.samples,
            topologyFloorP50Us: topo.p50Us, topologyFloorP99Us: topo.p99Us, topologyFloorSamples: topo.samples,
            peerP50Us: peerFigures?.p50Us, peerP99Us: peerFigures?.p99Us, peerSamples: peerFigures?.samples,
            floorRatio: e2e.p99Us / floor.p99Us, peerRatio: peerFigures.map { $0.p99Us / e2e.p99Us },
            inlineFloorRatio: e2eInline.p99Us / floor.p99Us, inlinePeerRatio: peerFigures.map { $0.p99Us / e2eInline.p99Us },
            directFloorRatio: e2eDirect.p99Us / floor.p99Us, directPeerRatio: peerFigures.map { $0.p99Us / e2eDirect.p99Us },
            dispatchHopP99Us: hops.0.p99Us, inlineDispatchHopP99Us: hops.1.p99Us, directDispatchHopP99Us: hops.2.p99Us,
            directWritten: directCounts.0, directDeferred: directCounts.1, directPartial: directCounts.2, inlineWriteWaits: inlineWaits,
            guardPassed: verdicts.reduce(0) { $0 + $1.passed }, guardClamped: verdicts.reduce(0) { $0 + $1.clamped },
            guardRefused: verdicts.reduce(0) { $0 + $1.rejected + $1.stopped }, notes: notes)
    }
}

/// JSON has no NaN or infinity: those figures (a pipeline without samples) are written as null.
func jsonNumber(_ value: Double) -> Double? { value.isFinite ? value : nil }

// MARK: robotd's path

/// One of robotd's pipelines: its pty, serial reader, frame input, guard, policy and actuator set.
/// Built from the parts `RobotRuntime` builds for examples/rover-sim.yaml (a `serial` input with
/// the frame codec, the `wander` policy's drive, the guard, a `serial_frames` actuator set), wired
/// by hand and reduced to the range sensor and the two wheels: the range event's handler is the
/// policy (event-driven, no periodic drive task).
final class RobotdLane: Sendable {
    struct Control: Sendable {
        var guardian: SafetyGuard
        var policy = ObstacleAvoidingDrive()
        var verdicts = VerdictCounts()
        /// The first verdict that refused a policy command, for the report.
        var firstRefusal: Verdict?
        mutating func route(_ verdict: Verdict, to write: (ApprovedCommand) -> Void) {
            if verdict.approved == nil && firstRefusal == nil { firstRefusal = verdict }
            verdicts.route(verdict, to: write)
        }
    }

    /// The guard and the policy, shared by the lane's two handlers (both on the dispatch thread).
    final class ControlCell: Sendable {
        let state: Mutex<Control>
        init(_ control: sending Control) { state = Mutex(control) }
    }

    let name: String
    let slave: String
    let actuators: ActuatorSet
    let link: SerialPortWriter
    let input: FrameSensorInput
    private let control: ControlCell
    private let reader = Mutex<SerialReader?>(nil)

    init(name: String, slave: String, scheduler: Scheduler, mode: ActuatorSet.Mode, logger: Logger) throws {
        self.name = name
        self.slave = slave
        var configuration = GuardConfiguration(
            channels: ["wheel_left", "wheel_right"].map {
                ChannelConfiguration(name: $0, limits: .continuous(.velocity(maxVelocity: 12, maxAcceleration: 40)),
                                     watchdogTimeout: .milliseconds(100))
            },
            sensors: [RequiredSensor(name: "range", maxAge: .milliseconds(250), reaction: .stop(.one), validRange: 0...4)])
        configuration.maxTickAge = .milliseconds(30)
        let guardian = try SafetyGuard(configuration: configuration)
        guard let rangeID = guardian.sensor(named: "range") else { throw BenchmarkError("the guard has no range sensor") }
        // The motor side opens the port itself, as the daemon's does.
        let link = try SerialPortWriter(endpoint: .path(slave), settings: SerialSettings())
        self.link = link
        let motors = SerialFrameBackend(name: "motors-\(name)", mappings: [
            .init(channel: ChannelID(index: 0), motor: 0, mode: .velocity),
            .init(channel: ChannelID(index: 1), motor: 1, mode: .velocity),
        ], writer: link)
        let actuators = try ActuatorSet(seal: guardian.seal, backends: [motors], clock: scheduler.clock, mode: mode,
                                        logger: logger)
        self.actuators = actuators
        let control = ControlCell(Control(guardian: guardian))
        self.control = control
        let write: @Sendable (ApprovedCommand) -> Void = { actuators.write($0) }
        let clock = scheduler.clock
        let lifetime = Duration.milliseconds(60)
        let range = scheduler.addSource("range-\(name)", queue: QueueSpec(capacity: 8, overflow: .dropOldest),
                                        subscription: Subscription(priority: .high, relativeDeadline: .milliseconds(10))) { event in
            guard case .values(let v) = event.payload else { return }
            control.state.withLock { c in
                let value = ObstacleAvoidingDrive.effectiveRange(value: v[0], status: Int(v[1]), maximum: 4)
                _ = c.guardian.noteSensor(rangeID, value: value, at: event.release, emit: write)
                let r = c.guardian.freshValue(of: rangeID, now: event.release) ?? .nan
                let (left, right) = c.policy.step(range: r)
                let now = clock.now()
                c.route(c.guardian.check(Command(channel: ChannelID(index: 0), value: .continuous(left), origin: .policy,
                                                          issuedAt: event.release, validUntil: event.release + lifetime), now: now), to: write)
                c.route(c.guardian.check(Command(channel: ChannelID(index: 1), value: .continuous(right), origin: .policy,
                                                          issuedAt: event.release, validUntil: event.release + lifetime), now: now), to: write)
            }
        }
        // The guard's own tick (watchdogs, levels, ramps; `maxTickAge` refuses commands without it).
        scheduler.addPeriodic("guard-\(name)", PeriodicSpec(period: .milliseconds(10), priority: .high)) { event in
            control.state.withLock { c in
                var notices = actuators.takeSafeStateNotices()
                while notices != 0 {
                    let channel = ChannelID(index: notices.trailingZeroBitCount)
                    notices &= notices &- 1
                    c.guardian.noteSafeStateApplied(to: channel, at: event.release, replacing: actuators.safeStateNoticeReplaced(channel))
                }
                c.guardian.tick(now: event.release, emit: write)
            }
        }
        input = FrameSensorInput(sources: .init(range: range))
    }

    func startReader(priority: Int) throws {
        let input = self.input
        let started = try SerialReader(endpoint: .path(slave), settings: SerialSettings(), fifoPriority: priority,
                                       onEvent: { _ in }) { bytes, arrival in input.feed(bytes, arrival: arrival) }
        reader.withLock { $0 = started }
    }

    func stopReader() { reader.withLock { $0?.stop(); $0 = nil } }

    func stop() {
        actuators.safeStop(reason: "benchmark done")
        link.close()
    }

    var verdicts: VerdictCounts { control.state.withLock { $0.verdicts } }

    var firstRefusal: Verdict? { control.state.withLock { $0.firstRefusal } }

    /// Why the guard is latched at the end, if it is (then it refused the policy's commands).
    var latchNote: String? {
        control.state.withLock { c in c.guardian.latch.isLatched ? "latched (\(c.guardian.latch.cause.map { "\($0)" } ?? "unknown cause"))" : nil }
    }

    func dispatchHop(_ scheduler: Scheduler) -> SchedulerBenchmark.LatencyFigures {
        guard let id = scheduler.taskID(named: "range-\(name)") else {
            return .init(rate: 0, events: 0, p50Us: .nan, p99Us: .nan, p999Us: .nan, maxUs: .nan)
        }
        let summary = scheduler.statistics(for: id).startLatency.summary()
        return .init(rate: 0, events: summary.count, summary: summary)
    }
}

// MARK: the driver

/// Writes one range frame to each pipeline per round (rotating the order), times until both
/// motor frames are back, and keeps every sample (preallocated: nothing allocates while driving).
final class Driver: @unchecked Sendable {
    // @unchecked: everything but the atomics is touched only by the driver thread until
    // `finished`, and read by the caller after joining it.
    let pipelines: [Pipeline]
    typealias Pipeline = EndToEndBenchmark.Pipeline
    let masters: [Int32]
    let period: Int64
    let rounds: Int
    let warmupRounds: Int
    let replyTimeoutNs: Int64
    let samples: [UnsafeMutablePointer<Int64>]
    var counts: [Int]
    var lost: [Int]
    var stray: [Int]
    /// A pipeline that missed this many answers in a row is no longer sampled (each miss costs
    /// the whole reply time-out, which would stretch the run for the others).
    static let abandonAfter = 25
    var missedInARow: [Int]
    var abandoned: [Bool]
    var overruns = 0
    let measuredRounds = Atomic<Int>(0)
    let finished = Atomic<Bool>(false)
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
    private let frame = UnsafeMutableRawBufferPointer.allocate(byteCount: Frame.maxWireCount, alignment: 8)
    private let payload = UnsafeMutableRawBufferPointer.allocate(byteCount: Frame.maxPayload, alignment: 8)
    private var decoders: [ReplyDecoder]

    init(pipelines: [Pipeline], masters: [Int32], rateHz: Int, seconds: Double, warmupSeconds: Double, replyTimeoutNs: Int64) {
        self.pipelines = pipelines
        self.masters = masters
        period = Int64(1e9 / Double(rateHz))
        rounds = Int(Double(rateHz) * seconds)
        warmupRounds = Int(Double(rateHz) * warmupSeconds)
        self.replyTimeoutNs = replyTimeoutNs
        samples = pipelines.map { _ in UnsafeMutablePointer<Int64>.allocate(capacity: max(1, Int(Double(rateHz) * seconds))) }
        counts = Array(repeating: 0, count: pipelines.count)
        lost = counts
        stray = counts
        missedInARow = counts
        abandoned = Array(repeating: false, count: pipelines.count)
        decoders = pipelines.map { _ in ReplyDecoder() }
    }

    deinit {
        for s in samples { s.deallocate() }
        buffer.deallocate()
        frame.deallocate()
        payload.deallocate()
    }

    func run() {
        defer { finished.store(true, ordering: .releasing) }
        var next = rt_monotonic_ns() + 2_000_000
        var round = 0
        var sequence: UInt8 = 0
        let n = pipelines.count
        while round < warmupRounds + rounds {
            rt_sleep_until(next)
            let measuring = round >= warmupRounds
            // A range that wanders between 1.5 and 2.5 m: the policy cruises, the guard passes.
            let range = Float(2.0 + 0.5 * sin(Double(round) * 0.01))
            sequence &+= 1
            for j in 0..<n {
                sample((j + round) % n, range: range, sequence: sequence, deviceTime: UInt32(truncatingIfNeeded: round * 1000),
                       measuring: measuring)
            }
            round += 1
            if measuring { measuredRounds.store(round - warmupRounds, ordering: .relaxed) }
            next += period
            let now = rt_monotonic_ns()
            if now > next {  // overran: skip to the next grid instant, counted
                let skipped = (now - next) / period + 1
                overruns += Int(skipped)
                next += skipped * period
            }
        }
    }

    private func sample(_ p: Int, range: Float, sequence: UInt8, deviceTime: UInt32, measuring: Bool) {
        guard !abandoned[p] else { return }
        let fd = masters[p]
        // Whatever came after the last sample's answer (late answers, safe-state frames) is stray.
        while true {
            let n = read(fd, buffer.baseAddress, buffer.count)
            guard n > 0 else { break }
            stray[p] += decoders[p].feed(UnsafeRawBufferPointer(rebasing: buffer[0..<n])).replies
        }
        let count = RangeMessage(deviceTimeMicros: deviceTime, range: range).write(into: payload)
        guard let wire = Frame.encode(type: Frame.MessageType.range.rawValue, sequence: sequence,
                                      payload: UnsafeRawBufferPointer(rebasing: payload[0..<count]), into: frame) else { return }
        let start = rt_monotonic_ns()
        guard write(fd, frame.baseAddress, wire) == wire else {
            if measuring { lost[p] += 1 }
            return
        }
        var replies = 0
        var end = start
        while replies < 2 {
            let left = start + replyTimeoutNs - rt_monotonic_ns()
            if left <= 0 { break }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, Int32(max(1, left / 1_000_000))) > 0 else { continue }
            let n = read(fd, buffer.baseAddress, buffer.count)
            end = rt_monotonic_ns()
            guard n > 0 else { continue }
            replies += decoders[p].feed(UnsafeRawBufferPointer(rebasing: buffer[0..<n])).replies
        }
        missedInARow[p] = replies < 2 ? missedInARow[p] + 1 : 0
        if missedInARow[p] >= Self.abandonAfter { abandoned[p] = true }
        guard measuring else { return }
        if replies < 2 { lost[p] += 1; return }
        if counts[p] < rounds {
            samples[p][counts[p]] = end - start
            counts[p] += 1
        }
    }

    func figures(index p: Int, pipeline: Pipeline) -> EndToEndBenchmark.Figures {
        let n = counts[p]
        var sorted = UnsafeMutableBufferPointer(start: samples[p], count: n)
        sorted.sort()
        // Nearest rank: the smallest sample with at least q·n samples at or below it.
        func percentile(_ q: Double) -> Double {
            guard n > 0 else { return .nan }
            let rank = max(1, Int((q * Double(n)).rounded(.up)))
            return Double(sorted[min(n, rank) - 1]) / 1000
        }
        return EndToEndBenchmark.Figures(pipeline: pipeline, samples: n, lost: lost[p], strayFrames: stray[p],
                                         p50Us: percentile(0.5), p99Us: percentile(0.99), p999Us: percentile(0.999),
                                         maxUs: n > 0 ? Double(sorted[n - 1]) / 1000 : .nan)
    }
}

/// Counts the motor-command frames that answer a sample (energised; a de-energise frame is a safe
/// state, not an answer) in the bytes a pipeline sends back.
final class ReplyDecoder {
    var decoder = FrameDecoder()
    var others = 0

    func feed(_ bytes: UnsafeRawBufferPointer) -> (replies: Int, others: Int) {
        var replies = 0
        var others = 0
        decoder.feed(bytes) { view in
            if view.type == Frame.MessageType.motorCommand.rawValue,
               let command = MotorCommandMessage(payload: view.payload), !command.deenergize {
                replies += 1
            } else {
                others += 1
            }
        }
        self.others += others
        return (replies, others)
    }
}

// MARK: plumbing

/// A pseudo-terminal pair: the driver holds the master (non-blocking); a pipeline opens the slave.
final class Pty {
    let master: Int32
    let slavePath: String

    init() throws {
        var name = [CChar](repeating: 0, count: 128)
        let fd = tr_open_pty(&name, name.count)
        guard fd >= 0 else { throw BenchmarkError("cannot open a pseudo-terminal: \(String(cString: strerror(errno)))") }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        master = fd
        slavePath = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The slave, raw and non-blocking, as robotd's termios port opens it.
    func openSlave() throws -> Int32 {
        let fd = open(slavePath, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw BenchmarkError("cannot open \(slavePath): \(String(cString: strerror(errno)))") }
        let rc = tr_configure_raw(fd, 115_200, 8, CChar(UInt8(ascii: "N")), 1, 0)
        guard rc == 0 else {
            close(fd)
            throw BenchmarkError("cannot configure \(slavePath): errno \(rc)")
        }
        return fd
    }

    deinit { close(master) }
}

/// Stop actions run once, last added first.
final class Cleanup {
    private var actions: [() -> Void] = []
    func add(_ action: @escaping () -> Void) { actions.append(action) }
    func run() {
        while let action = actions.popLast() { action() }
    }
}

/// A C object handed to the thread that runs its loop (the owner keeps it alive until joined).
struct SendablePointer: @unchecked Sendable {
    let raw: OpaquePointer
    init(_ raw: OpaquePointer) { self.raw = raw }
}

/// scripts/peers/e2e_peer.py, running until `stop`.
final class PeerProcess {
    private let process = Process()
    private let output = Pipe()
    private var stopped = false
    let notApplied: [String]

    init(location: EndToEndBenchmark.PeerLocation, device: String, priority: Int, cpu: Int) throws {
        process.executableURL = URL(fileURLWithPath: location.python)
        process.arguments = [location.script, device, "--priority", "\(priority)", "--cpu", "\(cpu)"]
        process.standardOutput = output
        try process.run()
        // Its first line says it is ready (or it exits: EOF).
        guard let line = Self.readLine(output.fileHandleForReading),
              let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              object["ready"] as? Bool == true else {
            process.terminate()
            process.waitUntilExit()
            throw BenchmarkError("the python peer exited before it was ready (status \(process.terminationStatus))")
        }
        notApplied = object["not_applied"] as? [String] ?? []
    }

    /// SIGTERM (SIGKILL after 2 s); returns its counters line.
    func stop() -> String? {
        guard !stopped else { return nil }
        stopped = true
        process.terminate()
        let deadline = rt_monotonic_ns() + 2_000_000_000
        while process.isRunning && rt_monotonic_ns() < deadline { rt_sleep_until(rt_monotonic_ns() + 10_000_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        let rest = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return rest.split(separator: "\n").last.map(String.init)
    }

    private static func readLine(_ handle: FileHandle) -> String? {
        var bytes: [UInt8] = []
        while true {
            var byte: UInt8 = 0
            let n = read(handle.fileDescriptor, &byte, 1)
            if n <= 0 { return nil }
            if byte == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(byte)
        }
    }
}
