import Foundation
import Testing
@testable import RobotBenchmarks

/// `Cyclictest.parse` on real rt-tests output (Fixtures/README.md lists each invocation). Expected
/// figures were read off the fixture by hand: nearest-rank percentiles over the printed buckets, the
/// "# Max Latencies" value, and histogram total + "# Histogram Overflows" as the sample count.
@Suite("cyclictest output parsing")
struct CyclictestParseTests {
    static func fixture(_ name: String) throws -> String {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: "txt", subdirectory: "Fixtures"),
                               "fixture \(name).txt is missing from the test bundle")
        return try String(contentsOf: url, encoding: .utf8)
    }

    @Test func when_benchmark_invocation_output_expect_its_percentiles_max_and_count() throws {
        // The exact arguments SchedulerBenchmark passes (-q -h 20000): 20 000 bucket lines, no overflow.
        let result = try Cyclictest.parse(Self.fixture("bench_h20000"))
        #expect(result == Cyclictest.Result(p50Us: 42, p99Us: 91, maxUs: 668, samples: 1000))
    }

    @Test func when_some_samples_overflow_but_p99_is_inside_expect_overflows_counted_as_samples() throws {
        // 990 samples in the 90 µs histogram + 10 overflows: rank 990 is the last in-histogram sample.
        let result = try Cyclictest.parse(Self.fixture("partial_h90"))
        #expect(result == Cyclictest.Result(p50Us: 43, p99Us: 88, maxUs: 1790, samples: 1000))
    }

    @Test func when_p99_lies_in_the_overflow_expect_an_error_not_the_max() throws {
        // 984 in histogram + 16 overflows: the true p99 is somewhere in (70 µs, 2177 µs]. The parser
        // used to report the max (2177) as p99, which flatters the benchmark's jitter ratio.
        let output = try Self.fixture("partial_h70")
        let error = #expect(throws: BenchmarkError.self) { try Cyclictest.parse(output) }
        #expect(error?.description.contains("16 of 1000 samples overflowed") == true)
    }

    @Test func when_most_samples_overflow_expect_an_error() throws {
        // 5 in histogram, 195 overflows: even p50 is unknown.
        let output = try Self.fixture("overflow_h30")
        let error = #expect(throws: BenchmarkError.self) { try Cyclictest.parse(output) }
        #expect(error?.description.contains("p50") == true)
    }

    @Test func when_output_has_status_lines_expect_them_ignored() throws {
        // Without -q cyclictest prints "T: 0 (…) …" lines and cursor escapes before the histogram.
        let result = try Cyclictest.parse(Self.fixture("status_h200"))
        #expect(result == Cyclictest.Result(p50Us: 45, p99Us: 148, maxUs: 2134, samples: 300))
    }

    @Test func when_two_threads_expect_columns_pooled_and_max_of_maxima() throws {
        // Per-thread columns are tab-separated; overflows 1 + 3, totals 299 + 297, maxima 1124 and 961.
        let result = try Cyclictest.parse(Self.fixture("twothreads_h200"))
        #expect(result == Cyclictest.Result(p50Us: 44, p99Us: 144, maxUs: 1124, samples: 600))
    }

    @Test func when_histofall_column_present_expect_it_not_counted_twice() throws {
        // -H adds an all-threads column to rows and trailers (Total 300 300 600): 600 samples, not 1200.
        let result = try Cyclictest.parse(Self.fixture("twothreads_histofall_h200"))
        #expect(result == Cyclictest.Result(p50Us: 41, p99Us: 57, maxUs: 112, samples: 600))
    }

    @Test func when_output_is_truncated_expect_an_error() throws {
        // Cut before the trailers: no thread count, so no figures at all.
        let full = try Self.fixture("bench_h20000")
        let truncated = String(full.prefix(full.count / 2))
        #expect(throws: BenchmarkError.self) { try Cyclictest.parse(truncated) }
    }

    @Test func when_histogram_lines_are_missing_expect_an_error() throws {
        // Trailers intact but bucket lines lost: the histogram no longer adds up to "# Total".
        let lines = try Self.fixture("partial_h90").split(separator: "\n", omittingEmptySubsequences: false)
        let dropped = lines.filter { !$0.hasPrefix("000043 ") }
        #expect(dropped.count == lines.count - 1)
        let error = #expect(throws: BenchmarkError.self) { try Cyclictest.parse(dropped.joined(separator: "\n")) }
        #expect(error?.description.contains("total says 990") == true)
    }

    @Test func when_output_is_not_a_histogram_expect_an_error() {
        #expect(throws: BenchmarkError.self) { try Cyclictest.parse("T: 0 ( 7404) P:80 I:1000 C: 100 Min: 32\n") }
        #expect(throws: BenchmarkError.self) { try Cyclictest.parse("") }
    }
}
