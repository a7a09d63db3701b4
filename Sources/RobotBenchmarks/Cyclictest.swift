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

    /// Parses `-h` output: "NNNNNN CCCCCC" lines (µs bucket, count) and "# Max Latencies: NNNNN".
    public static func parse(_ output: String) throws -> Result {
        var buckets: [(us: Int, count: UInt64)] = []
        var maxUs: Int?
        var overflows: UInt64 = 0
        for line in output.split(separator: "\n") {
            if line.hasPrefix("# Max Latencies:") {
                maxUs = Int(line.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "")
            } else if line.hasPrefix("# Histogram Overflows:") {
                overflows = UInt64(line.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "") ?? 0
            } else if !line.hasPrefix("#") {
                let parts = line.split(separator: " ")
                if parts.count == 2, let us = Int(parts[0]), let count = UInt64(parts[1]), count > 0 {
                    buckets.append((us, count))
                }
            }
        }
        let total = buckets.reduce(overflows) { $0 + $1.count }
        guard total > 0, let maxUs else { throw BenchmarkError("cyclictest printed no histogram") }
        func percentile(_ p: Double) -> Double {
            let rank = UInt64((p / 100 * Double(total)).rounded(.up))
            var seen: UInt64 = 0
            for bucket in buckets {
                seen += bucket.count
                if seen >= rank { return Double(bucket.us) }
            }
            return Double(maxUs)
        }
        return Result(p50Us: percentile(50), p99Us: percentile(99), maxUs: Double(maxUs), samples: total)
    }
}

public struct BenchmarkError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
