import Foundation

/// Runs rt-tests' `cyclictest` as the machine's own latency floor and reads its histogram.
public struct Cyclictest: Sendable {
    public struct Result: Sendable, Codable, Equatable {
        public var p50Us: Double
        public var p99Us: Double
        public var maxUs: Double
        public var samples: UInt64
    }

    public var executable = "/usr/bin/cyclictest"
    public init() {}

    public var isAvailable: Bool { FileManager.default.isExecutableFile(atPath: executable) }

    /// Same policy and interval as the scheduler's periodic task: SCHED_FIFO `priority`, one thread
    /// pinned to `cpu`, `intervalUs` period, memory locked, /dev/cpu_dma_latency held at 0.
    public func run(priority: Int, cpu: Int, intervalUs: Int, loops: Int) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["-m", "-p", "\(priority)", "-i", "\(intervalUs)", "-l", "\(loops)", "-t", "1",
                             "-a", "\(cpu)", "-q", "-h", "20000"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = Pipe()
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw BenchmarkError("cyclictest exited with status \(process.terminationStatus)")
        }
        return try Self.parse(String(decoding: data, as: UTF8.self))
    }

    /// Parses `-h`/`-H` output. The histogram has one line per µs bucket: the bucket, then one count
    /// per thread (tab-separated), plus an all-threads column with `-H`. The trailers ("# Min
    /// Latencies:", "# Max Latencies:", "# Histogram Overflows:", "# Total:") carry one value per
    /// thread (and the all-threads value with `-H`); threads are pooled. Samples at or above the
    /// histogram size are only counted in "Overflows", so a percentile that falls among them is
    /// unknown: that throws rather than report a made-up figure.
    public static func parse(_ output: String) throws -> Result {
        var rows: [(us: Int, counts: [UInt64])] = []
        var bucketLines = 0
        var threads: Int?
        var maxima: [UInt64] = []
        var overflows: [UInt64] = []
        var totals: [UInt64] = []
        for line in output.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if line.hasPrefix("#") {
                guard let colon = line.firstIndex(of: ":") else { continue }
                let values = line[line.index(after: colon)...].split(whereSeparator: { $0 == " " || $0 == "\t" })
                    .compactMap { UInt64($0) }
                switch line[..<colon] {
                case "# Min Latencies": threads = values.count
                case "# Max Latencies": maxima = values
                case "# Histogram Overflows": overflows = values
                case "# Total": totals = values
                default: break
                }
            } else if fields.count >= 2, let us = Int(fields[0]) {
                // Status lines ("T: 0 (…", "policy: …", cursor escapes) never start with a number.
                let counts = fields.dropFirst().compactMap { UInt64($0) }
                guard counts.count == fields.count - 1 else { continue }
                bucketLines += 1
                if counts.contains(where: { $0 > 0 }) { rows.append((us, counts)) }
            }
        }
        guard let threads, threads > 0, bucketLines > 0 else { throw BenchmarkError("cyclictest printed no histogram") }
        // -H appends an all-threads column to rows and trailers; only the per-thread ones are summed.
        guard maxima.count >= threads, overflows.count >= threads, totals.count >= threads,
              rows.allSatisfy({ $0.counts.count == threads || $0.counts.count == threads + 1 }) else {
            throw BenchmarkError("cyclictest histogram does not match its \(threads) thread(s)")
        }
        let buckets = rows.map { (us: $0.us, count: $0.counts.prefix(threads).reduce(0, +)) }
        let inHistogram = buckets.reduce(0) { $0 + $1.count }
        // A truncated output would otherwise yield plausible but wrong percentiles.
        guard inHistogram == totals.prefix(threads).reduce(0, +) else {
            throw BenchmarkError("cyclictest histogram holds \(inHistogram) samples, its total says \(totals.prefix(threads).reduce(0, +))")
        }
        let overflowed = overflows.prefix(threads).reduce(0, +)
        let total = inHistogram + overflowed
        guard total > 0 else { throw BenchmarkError("cyclictest recorded no samples") }
        // Integer rank (nearest-rank method): 0.99 * n in floating point can land one sample off.
        func percentile(permille: UInt64) throws -> Double {
            let rank = (permille * total + 999) / 1000
            var seen: UInt64 = 0
            for bucket in buckets {
                seen += bucket.count
                if seen >= rank { return Double(bucket.us) }
            }
            throw BenchmarkError("cyclictest p\(permille / 10) lies beyond its \(bucketLines) µs histogram "
                                 + "(\(overflowed) of \(total) samples overflowed)")
        }
        return Result(p50Us: try percentile(permille: 500), p99Us: try percentile(permille: 990),
                      maxUs: Double(maxima.prefix(threads).max()!), samples: total)
    }
}

public struct BenchmarkError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
