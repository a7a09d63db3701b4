import ArgumentParser
import Foundation
import Logging
import RobotBenchmarks

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure what this machine can hold, each figure beside a baseline from the same run.",
        discussion: """
        Example:
          # dispatch latency, flood isolation, 1 kHz jitter beside cyclictest
          robotd bench scheduler --cpu 1
          # the cost of one safety-guard check, as JSON
          robotd bench guard --json
          # a sensor frame through robotd and back as a motor frame, beside C and Python pipelines
          robotd bench e2e --seconds 10
          # a remote stop over MQTT with telemetry at its floor and at its default, beside an MQTT echo
          robotd bench remote-stop
        """,
        subcommands: [SchedulerBench.self, GuardBench.self, EndToEndBench.self, RemoteStopBench.self])
}

struct SchedulerBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scheduler",
        abstract: "Dispatch latency, flood isolation, throughput, 1 kHz jitter vs cyclictest, allocations per event.",
        discussion: """
        Needs root for SCHED_FIFO, mlockall and cpu_dma_latency; without it, it runs and its "dispatch:" \
        line says what could not be applied and why.

        Example:
          sudo robotd bench scheduler --priority 80 --cpu 1
          robotd bench scheduler --json --seconds 1 --jitter-seconds 2 > bench.json
        """)

    @Flag(help: "Print one JSON object instead of a report.")
    var json = false

    @Option(help: "Seconds per latency and throughput phase.")
    var seconds: Double = 2

    @Option(help: "Seconds of 1 kHz jitter measurement (each for robotd, a bare nanosleep loop and cyclictest).")
    var jitterSeconds: Double = 5

    @Option(help: "SCHED_FIFO priority of the dispatch thread (and of cyclictest).")
    var priority: Int = 80

    @Option(help: "CPU for the dispatch thread and cyclictest (default: the last allowed CPU).")
    var cpu: Int?

    func validate() throws {
        guard seconds > 0, jitterSeconds > 0 else { throw ValidationError("durations must be positive") }
        guard (1...99).contains(priority) else { throw ValidationError("priority must be 1…99") }
    }

    func run() throws {
        var options = SchedulerBenchmark.Options()
        options.seconds = seconds
        options.jitterSeconds = jitterSeconds
        options.fifoPriority = priority
        if let cpu { options.cpu = cpu }
        let logger = Logger(label: "robotd.bench")
        let json = self.json
        let result = try SchedulerBenchmark(options: options, logger: logger).run { phase in
            if !json { FileHandle.standardError.write(Data("… \(phase)\n".utf8)) }
        }
        try printResult(result, json: json) { BenchReport.scheduler($0) }
    }
}

struct GuardBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "guard",
        abstract: "Cost of one safety-guard check (median, p99) and heap allocations per check.",
        discussion: """
        Example:
          robotd bench guard
          robotd bench guard --checks 100000 --json
        """)

    @Flag(help: "Print one JSON object instead of a report.")
    var json = false

    @Option(help: "Number of checks to time.")
    var checks: Int = 1_000_000

    func validate() throws {
        guard checks >= 1000 else { throw ValidationError("use at least 1000 checks") }
    }

    func run() throws {
        let result = try GuardBenchmark(checks: checks).run()
        try printResult(result, json: json) { BenchReport.guardReport($0) }
    }
}

struct EndToEndBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "e2e",
        abstract: "Sensor frame in → policy → guard → motor frames out, over ptys, beside C and Python pipelines timed in the same run.",
        discussion: """
        At --rate rounds per second, one driver thread writes a range frame into a pty for each \
        pipeline in turn (the order rotating each round) and times until both motor-command frames \
        are back: robotd's real path with every device write on the writer thread (e2e_*), with \
        direct writes from the dispatch thread (e2e_direct_*) and inline (e2e_inline_*), a one-thread C echo (the pty's own cost: floor_*), the same work on \
        three C threads (topology_floor_*), and scripts/peers/e2e_peer.py (asyncio + pyserial, from \
        .build/venv, which scripts/setup.sh creates: peer_*). Needs root for SCHED_FIFO.

        Example:
          # 10 s measured, one JSON object on stdout, progress on stderr
          swift build -c release
          sudo .build/release/robotd bench e2e --seconds 10 --json
        """)

    @Flag(help: "Print one JSON object instead of a report.")
    var json = false

    @Option(help: "Seconds measured (after a 0.5 s warm-up).")
    var seconds: Double = 5

    @Option(help: "Rounds per second (each sends one frame to every pipeline).")
    var rate: Int = 1000

    @Option(help: "SCHED_FIFO priority of the dispatch thread (the other threads are placed relative to it).")
    var priority: Int = 80

    @Option(help: "CPU for the dispatch thread and the single-thread pipelines (default: the last allowed CPU).")
    var cpu: Int?

    @Option(help: "Python interpreter for the peer (default: .build/venv/bin/python3 of this checkout).")
    var python: String?

    func validate() throws {
        guard seconds > 0 else { throw ValidationError("--seconds must be positive") }
        guard (1...10_000).contains(rate) else { throw ValidationError("--rate must be 1…10000") }
        guard (1...97).contains(priority) else { throw ValidationError("priority must be 1…97 (the driver runs 2 above it)") }
    }

    func run() throws {
        var options = EndToEndBenchmark.Options()
        options.seconds = seconds
        options.rateHz = rate
        options.fifoPriority = priority
        if let cpu { options.cpu = cpu }
        if let python {
            guard let found = EndToEndBenchmark.PeerLocation.find() else {
                throw ValidationError("scripts/peers/e2e_peer.py not found above this executable or the working directory")
            }
            options.peer = EndToEndBenchmark.PeerLocation(python: python, script: found.script)
        }
        // Progress on stderr (stdout stays one JSON object with --json); always shown on a terminal.
        let showProgress = !json || isatty(STDERR_FILENO) != 0
        let result = try EndToEndBenchmark(options: options, logger: Logger(label: "robotd.bench")).run { phase in
            if showProgress { FileHandle.standardError.write(Data("… \(phase)\n".utf8)) }
        }
        try printResult(result, json: json) { BenchReport.endToEnd($0) }
    }
}

struct RemoteStopBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remote-stop",
        abstract: "A remote stop over MQTT with telemetry at its floor and at its default interval, beside an MQTT echo timed in the same run.",
        discussion: """
        A client of its own publishes `stop` on robotd/bench-stop/estop; timed until the heater's safe \
        value (`off`, published by robotd's MQTT back end) and the retained `state` with the latch \
        reach an observer. Blocks of samples alternate between mqtt.telemetry.interval_ms at its floor \
        (100) and at its default (1000), a new robotd for each block, on a Mosquitto started here. \
        The floor: a message relayed by a third client through the same broker, after each sample. \
        Needs mosquitto; as root robotd's threads run SCHED_FIFO as under `robotd run`.

        Example:
          swift build -c release
          .build/release/robotd bench remote-stop --json
        """)

    @Flag(help: "Print one JSON object instead of a report.")
    var json = false

    @Option(help: "Blocks per telemetry interval (they alternate).")
    var rounds: Int = 3

    @Option(help: "Stop samples per block.")
    var samples: Int = 10

    func validate() throws {
        guard (1...100).contains(rounds) else { throw ValidationError("--rounds must be 1…100") }
        guard (1...1000).contains(samples) else { throw ValidationError("--samples must be 1…1000") }
    }

    func run() throws {
        var options = RemoteStopBenchmark.Options()
        options.rounds = rounds
        options.samplesPerBlock = samples
        // Progress on stderr (stdout stays one JSON object with --json); always shown on a terminal.
        let showProgress = !json || isatty(STDERR_FILENO) != 0
        let result = try RemoteStopBenchmark(options: options).run { phase in
            if showProgress { FileHandle.standardError.write(Data("… \(phase)\n".utf8)) }
        }
        try printResult(result, json: json) { BenchReport.remoteStop($0) }
    }
}

/// One JSON object (`--json`) or the human report.
func printResult<R: Encodable>(_ result: R, json: Bool, report: (R) -> String) throws {
    if json {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        print(String(decoding: try encoder.encode(result), as: UTF8.self))
    } else {
        print(report(result))
    }
}
