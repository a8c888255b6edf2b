// LoadToolTests: `fanout load` — options, the seeded schedule, exact accounting against a real server, the
// coordinated-omission check, exact merging and the HdrHistogram interval log.
import AlertFanout
import ArgumentParser
import CZlib
import CurlReactor
import FanoutLoad
import Foundation
import MockTarget
import TestSupport
import XCTest

@testable import FanoutCLI

final class LoadToolTests: XCTestCase {
    func plan(_ urls: [String], concurrency: Int = 8, requests: Int = .max, duration: Duration = .seconds(10), rate: Double? = nil) -> LoadPlan {
        LoadPlan(
            urls: urls.map { WeightedURL(url: $0, weight: 1) }, method: "GET", headers: [], body: nil, timeout: .seconds(10),
            http2: false, keepAlive: true, concurrency: concurrency, maxRequests: requests, duration: duration, rate: rate, seed: 7)
    }

    func run(_ plan: LoadPlan) async throws -> LoadResult {
        let reactor = try CurlReactor(configuration: .init(maxInFlightPerHost: plan.concurrency, maxInFlightTotal: plan.concurrency))
        let result = try await LoadEngine(reactor: reactor, plan: plan).run()
        await reactor.shutdown(.drain)
        XCTAssertTrue(reactor.stats().isIdleAndEmpty)
        return result
    }

    /// A program linking FanoutLoad gets every problem of its plan as one clear error, and nothing is sent.
    func testTheLibraryRefusesAPlanWithProblemsNamingEachOne() async throws {
        let reactor = try CurlReactor()
        let bad = LoadPlan(
            urls: [WeightedURL(url: "ftp://127.0.0.1/x", weight: 1), WeightedURL(url: "http://127.0.0.1/y", weight: 0)], method: "GE T",
            concurrency: 0, maxRequests: 0, duration: .zero, rate: -1)
        XCTAssertThrowsError(try LoadEngine(reactor: reactor, plan: bad)) { error in
            let m = "\(error)"
            for part in [
                "'ftp://127.0.0.1/x' is not an http:// or https:// URL", "the weight of 'http://127.0.0.1/y' must be a positive number (got 0.0)",
                "'GE T' is not an HTTP method", "concurrency must be at least 1 (got 0)", "the request count must be at least 1 (got 0)",
                "the duration must be positive", "the rate must be a positive number of requests per second (got -1.0)",
            ] {
                XCTAssertTrue(m.contains(part), "\(part) missing from: \(m)")
            }
        }
        XCTAssertEqual(LoadPlan(urls: [WeightedURL(url: "http://127.0.0.1:1/", weight: 2)], concurrency: 4).problems(), [])
        await assertReleased(reactor)
    }

    func testOptionsAreValidatedWithClearMessages() throws {
        let bad: [([String], String)] = [
            ([], "give at least one URL"),
            (["ftp://x/"], "is not an http:// or https:// URL"),
            (["http://127.0.0.1/", "-c", "0"], "-c must be at least 1"),
            (["http://127.0.0.1/", "-n", "0"], "-n must be at least 1"),
            (["http://127.0.0.1/", "--rate", "0"], "--rate must be a positive number"),
            (["http://127.0.0.1/", "--rate=-5"], "--rate must be a positive number"),
            (["http://127.0.0.1/", "-d", "soon"], "is not a duration"),
            (["http://127.0.0.1/", "--body", "x", "--body-file", "f"], "cannot be used together"),
            (["http://127.0.0.1/", "-H", "NoColon"], "is not of the form 'Name: value'"),
            (["http://127.0.0.1/", "--bogus"], "Unknown option"),
        ]
        for (args, fragment) in bad {
            XCTAssertThrowsError(try LoadRunCommand.parse(args), "\(args)") { e in
                let text = LoadRunCommand.message(for: e)
                XCTAssertTrue(text.contains(fragment), "\(args): '\(text)' lacks '\(fragment)'")
                XCTAssertEqual(LoadRunCommand.exitCode(for: e).rawValue, 64, "\(args)")
            }
        }
        let ok = try LoadRunCommand.parse(["http://127.0.0.1/a", "-c", "16", "-n", "100", "--rate", "250", "-d", "3s", "-H", "X-A: b", "--seed", "9"])
        let p = try ok.makePlan()
        XCTAssertEqual(p.concurrency, 16)
        XCTAssertEqual(p.maxRequests, 100)
        XCTAssertEqual(p.rate, 250)
        XCTAssertEqual(p.duration, .seconds(3))
        XCTAssertEqual(p.headers, [HTTPHeader("X-A", "b")])
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("urls-\(UUID().uuidString).txt").path
        try "# comment\nhttp://127.0.0.1/a 3\n\nhttp://127.0.0.1/b   # weight 1\n".write(toFile: file, atomically: true, encoding: .utf8)
        XCTAssertEqual(
            try LoadRunCommand.readURLsFile(file), [WeightedURL(url: "http://127.0.0.1/a", weight: 3), WeightedURL(url: "http://127.0.0.1/b", weight: 1)])
        try "http://127.0.0.1/a zero\n".write(toFile: file, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try LoadRunCommand.readURLsFile(file))
    }

    func testTheScheduleIsFixedForASeed() {
        let urls = [WeightedURL(url: "a", weight: 1), WeightedURL(url: "b", weight: 3)]
        var s1 = LoadSchedule(urls: urls, rate: 200, seed: 42)
        var s2 = LoadSchedule(urls: urls, rate: 200, seed: 42)
        let first = (0..<64).map { _ in s1.nextURL() }
        XCTAssertEqual(first, (0..<64).map { _ in s2.nextURL() }, "same seed, same URLs")
        var other = LoadSchedule(urls: urls, rate: 200, seed: 43)
        XCTAssertNotEqual(first, (0..<64).map { _ in other.nextURL() })
        var big = LoadSchedule(urls: urls, rate: 200, seed: 1)
        let bs = (0..<20_000).reduce(0) { n, _ in n + big.nextURL() }
        XCTAssertEqual(Double(bs) / 20_000, 0.75, accuracy: 0.02, "weights 1:3")
        XCTAssertEqual([0, 1, 200, 1000].map { s1.intendedOffset($0) }, [0, 0.005, 1, 5], "request i is due i/rate s after the start")
        // What the engine sends by: request i at i/rate s, so at t the first ⌊t·rate⌋ + 1 are due.
        XCTAssertEqual([0, 1, 200, 1000].map { s1.intendedNanoseconds($0) }, [0, 5_000_000, 1_000_000_000, 5_000_000_000])
        XCTAssertEqual([0, 4_999_999, 5_000_000, 1_000_000_000].map { s1.dueCount(elapsedNanoseconds: $0) }, [1, 1, 2, 201])
        XCTAssertEqual(LoadSchedule(urls: urls, rate: nil, seed: 1).dueCount(elapsedNanoseconds: 9_000_000_000), 0, "the closed loop has no schedule")
    }

    func testReportedRequestsEqualWhatTheServerSaw() async throws {
        let server = try MockTarget(recordRequests: false)
        defer { server.stop() }
        let closed = try await run(plan([server.url("/a"), server.url("/b")], concurrency: 16, requests: 3000))
        XCTAssertEqual(closed.total.requests, 3000)
        XCTAssertEqual(closed.total.statuses[200], 3000)
        XCTAssertEqual(server.requestCount, 3000)
        XCTAssertEqual(closed.total.latency.totalCount, 3000)
        let open = try await run(plan([server.url("/c")], concurrency: 32, duration: .seconds(1), rate: 400))
        XCTAssertEqual(server.requestCount, 3000 + open.total.requests)
        XCTAssertEqual(Double(open.total.requests), 400, accuracy: 8, "a constant 400/s for 1 s")
    }

    func testAStallShowsUpInTheOpenLoopPercentiles() async throws {
        // Requests arriving between 1.0 s and 2.0 s after the first one are held until 2.0 s.
        let first = LockedInstant()
        let server = try MockTarget(
            routes: [
                "/s": .custom { _ in
                    let t = first.elapsedSinceFirst()
                    return .text("ok", delay: t >= 1.0 && t < 2.0 ? .milliseconds(Int64((2.0 - t) * 1000)) : .zero)
                }
            ], recordRequests: false)
        defer { server.stop() }
        let r = try await run(plan([server.url("/s")], concurrency: 500, duration: .seconds(3), rate: 200))
        let h = r.total.latency
        XCTAssertEqual(Double(r.total.requests), 600, accuracy: 10)
        XCTAssertLessThan(h.valueAtPercentile(50), 300_000, "most requests were quick")
        XCTAssertGreaterThan(h.valueAtPercentile(99), 800_000, "the stall is in the high percentiles, p99 = \(h.valueAtPercentile(99)) µs")
        XCTAssertGreaterThan(h.valueAtPercentile(90), 300_000, "a third of the run was stalled")
    }

    /// The progress line's data: about once a second, with counts that only grow and end at most at the result's;
    /// an interrupt ends the run early with everything sent accounted for.
    func testProgressComesOnceASecondAndInterruptStopsTheRun() async throws {
        let server = try MockTarget(recordRequests: false)
        defer { server.stop() }
        let reactor = try CurlReactor(configuration: .init(maxInFlightPerHost: 4, maxInFlightTotal: 4))
        let engine = try LoadEngine(reactor: reactor, plan: plan([server.url("/p")], concurrency: 4, duration: .seconds(30), rate: 200))
        let seen = TestLock<[LoadProgress]>([])
        engine.onProgress = { p in
            let count = seen.withLock { s -> Int in
                s.append(p)
                return s.count
            }
            if count == 2 { engine.interrupt() }
        }
        let result = await engine.run()
        await reactor.shutdown(.drain)
        let progress = seen.withLock { $0 }
        XCTAssertGreaterThanOrEqual(progress.count, 2)
        XCTAssertGreaterThanOrEqual(progress[0].elapsedSeconds, 0.99, "the first report after a second")
        XCTAssertGreaterThanOrEqual(progress[1].elapsedSeconds - progress[0].elapsedSeconds, 0.9, "then once a second")
        XCTAssertLessThanOrEqual(progress[0].requests, progress[1].requests)
        XCTAssertGreaterThan(progress[0].requests, 0)
        XCTAssertLessThanOrEqual(progress[1].requests, result.total.requests)
        XCTAssertTrue(result.interrupted)
        XCTAssertLessThan(result.total.requests, 200 * 30, "the interrupt ended it long before 30 s")
        XCTAssertEqual(result.total.requests, server.requestCount, "everything sent is accounted for")
        XCTAssertEqual(result.total.lag.totalCount, UInt64(result.total.requests), "an open loop records each request's schedule lag")
    }

    func testMergingTwoResultFilesEqualsTheirSum() async throws {
        let server = try MockTarget(recordRequests: false)
        defer { server.stop() }
        let a = LoadReport(try await run(plan([server.url("/a")], requests: 200)))
        let b = LoadReport(try await run(plan([server.url("/a"), server.url("/b")], requests: 300)))
        // Through the JSON files, as `fanout load merge` reads them.
        let pa = try LoadReport.parse(JSONValue.parse(a.json.jsonText)).get()
        let pb = try LoadReport.parse(JSONValue.parse(b.json.jsonText)).get()
        XCTAssertEqual(pa.total.latency, a.total.latency, "a result file keeps its histogram exactly")
        var merged = LoadReport.empty
        merged.merge(pa)
        merged.merge(pb)
        XCTAssertEqual(merged.runs, 2)
        XCTAssertEqual(merged.total.requests, 500)
        XCTAssertEqual(merged.total.statuses[200], 500)
        var sum = a.total.latency
        sum.add(b.total.latency)
        XCTAssertEqual(merged.total.latency, sum, "histograms merge exactly")
        XCTAssertEqual(merged.urls.map(\.url), [server.url("/a"), server.url("/b")])
        XCTAssertEqual(merged.urls[0].stats.requests, a.total.requests + b.urls[0].stats.requests)
    }

    func testTheHdrIntervalLogDecodesToTheRecordedCounts() async throws {
        let server = try MockTarget(recordRequests: false)
        defer { server.stop() }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("hdr-\(UUID().uuidString).log").path
        let writer = try HdrLogWriter(path: path, startEpochSeconds: 1_700_000_000)
        let reactor = try CurlReactor(configuration: .init(maxInFlightPerHost: 8, maxInFlightTotal: 8))
        let engine = try LoadEngine(reactor: reactor, plan: plan([server.url("/x")], duration: .milliseconds(2500), rate: 300))
        engine.onInterval = { s, l, h in writer.write(startOffset: s, length: l, histogram: h) }
        let result = await engine.run()
        writer.close()
        await reactor.shutdown(.drain)
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.hasPrefix("\"") }
        XCTAssertGreaterThanOrEqual(lines.count, 2)
        var total: UInt64 = 0
        for line in lines {
            let fields = line.split(separator: ",")
            XCTAssertEqual(fields.count, 4)
            total += try decodeCounts(String(fields[3]))
        }
        XCTAssertEqual(total, UInt64(result.total.requests), "every request is in exactly one interval")
    }

    /// Decodes a V2-compressed histogram and sums its counts (an independent reader of the format).
    func decodeCounts(_ base64: String) throws -> UInt64 {
        let data = try XCTUnwrap(Data(base64Encoded: base64))
        let bytes = [UInt8](data)
        func int32(_ b: [UInt8], _ at: Int) -> UInt32 { b[at..<at + 4].reduce(0) { $0 << 8 | UInt32($1) } }
        XCTAssertEqual(int32(bytes, 0), 0x1c84_9314)
        let compressedLength = Int(int32(bytes, 4))
        var outLength = uLong(1 << 20)
        var out = [UInt8](repeating: 0, count: Int(outLength))
        let rc = bytes.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in uncompress(dst.baseAddress, &outLength, src.baseAddress! + 8, uLong(compressedLength)) }
        }
        XCTAssertEqual(rc, Z_OK)
        let raw = Array(out.prefix(Int(outLength)))
        XCTAssertEqual(int32(raw, 0), 0x1c84_9313)
        let payloadLength = Int(int32(raw, 4))
        XCTAssertEqual(raw.count, 40 + payloadLength)
        var i = 40
        var sum: UInt64 = 0
        while i < raw.count {
            var u: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                let b = raw[i]
                i += 1
                if shift == 56 {
                    u |= UInt64(b) << shift
                    break
                }
                u |= UInt64(b & 0x7F) << shift
                if b & 0x80 == 0 { break }
                shift += 7
            }
            let v = Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
            if v > 0 { sum += UInt64(v) }
        }
        return sum
    }
}

/// The time of the first call, shared by the server's handler threads.
final class LockedInstant: @unchecked Sendable {
    private let lock = NSLock()
    private var first: ContinuousClock.Instant?
    func elapsedSinceFirst() -> Double {
        lock.lock()
        defer { lock.unlock() }
        let now = ContinuousClock.now
        if first == nil { first = now }
        let d = now - first!
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}
