// MeasureCommand: `fanout measure stragglers` — fan-out completion time with rare slow responses, adaptive vs fixed deadlines.
import AlertFanout
import ArgumentParser
import CurlReactor
import FanoutCore
import FanoutLoad
import Foundation
import Histogram
import MockTarget
import Synchronization

struct MeasureCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "measure",
        abstract: "Measurements on loopback targets (not tests): reported, never asserted.",
        subcommands: [StragglersCommand.self, OverheadCommand.self, IdleCommand.self, ChurnCommand.self])
}

struct StragglersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stragglers",
        abstract: "p50/p99 time to complete a fan-out when a fraction of responses is much slower, adaptive vs fixed deadlines.")

    @Option(help: "Targets per fan-out.") var targets = 10
    @Option(help: "Alerts per run.") var alerts = 3000
    @Option(help: "Publishes in flight at once.") var concurrency = 16
    @Option(help: "Usual target latency.", transform: parseDuration) var latency: Duration = .milliseconds(20)
    @Option(help: "One response in this many is slow.") var every = 100
    @Option(help: "How much slower a slow response is.") var factor = 50.0
    @Option(help: "The fixed per-target timeout compared against.", transform: parseDuration) var timeout: Duration = .seconds(10)

    func validate() throws {
        guard targets >= 1, alerts >= 1, concurrency >= 1, every >= 2, factor >= 1 else { throw ValidationError("all values must be positive (every ≥ 2)") }
    }

    func run() async throws {
        let slow = latency * factor
        print(
            "stragglers: \(alerts) alerts × \(targets) webhook targets, \(concurrency) publishes in flight; latency \(fmt(latency.seconds * 1000, 0)) ms, 1 in \(every) responses takes \(fmt(slow.seconds * 1000, 0)) ms"
        )
        for adaptive in [false, true] {
            let (h, retries, cpu) = try await runOnce(adaptive: adaptive, slow: slow)
            let name = adaptive ? "adaptive deadlines" : "fixed \(fmt(timeout.seconds, 0)) s timeout"
            print(
                "  \(name.padding(toLength: 24, withPad: " ", startingAt: 0))  p50 \(ms(h.valueAtPercentile(50))) ms  p90 \(ms(h.valueAtPercentile(90))) ms  p99 \(ms(h.valueAtPercentile(99))) ms  max \(ms(h.max)) ms  retries \(retries)  CPU \(fmt(cpu, 2)) s"
            )
        }
    }

    func runOnce(adaptive: Bool, slow: Duration) async throws -> (Histogram<UInt64>, Int, Double) {
        let every = self.every
        let latency = self.latency
        let servers = try (0..<targets).map { k in
            try MockTarget(
                routes: [
                    "/hook": .custom { req in
                        // Deterministic stragglers, at a different phase on each target.
                        .text("ok", delay: (req.routeIndex + k * 37) % every == 0 ? slow : latency)
                    }
                ], recordRequests: false)
        }
        defer { servers.forEach { $0.stop() } }
        let config = TargetsConfig(
            targets: servers.enumerated().map {
                Target(name: "t\($0.offset)", type: .webhook, url: $0.element.url("/hook"), timeoutSeconds: timeout.seconds)
            })
        let publisher = try FanoutPublisher(
            targets: config,
            resilience: ResilienceConfig(
                breaker: .init(consecutiveFailures: 1_000_000), adaptiveDeadlines: adaptive))
        let state = Mutex<(next: Int, done: Int, hist: Histogram<UInt64>, retries: Int)>(
            (0, 0, Histogram(highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three), 0))
        let cpu0 = processCPUSeconds()
        let total = alerts
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            @Sendable func next() {
                let i: Int? = state.withLock { s in
                    guard s.next < total else { return nil }
                    s.next += 1
                    return s.next - 1
                }
                guard let i else { return }
                let alert = Alert(labels: ["alertname": "Straggler", "i": String(i)], startsAt: Timestamp(seconds: 1_700_000_000))
                publisher.publish(alert, options: .init(deadline: .seconds(30), strategy: .publishToAll)) { result in
                    let finished = state.withLock { s -> Bool in
                        if let r = try? result.get() {
                            _ = s.hist.record(UInt64(max(1, r.durationSeconds * 1e6)))
                            s.retries += r.results.reduce(0) { $0 + max(0, $1.attempts - 1) }
                        }
                        s.done += 1
                        return s.done == total
                    }
                    if finished { c.resume() } else { next() }
                }
            }
            for _ in 0..<concurrency { next() }
        }
        let cpu = processCPUSeconds() - cpu0
        await publisher.shutdown()
        let s = state.withLock { $0 }
        return (s.hist, s.retries, cpu)
    }
}

private func ms(_ micros: UInt64) -> String { fmt(Double(micros) / 1000, 1) }

struct OverheadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "overhead",
        abstract: "Fan-out overhead: publish completion time minus the slowest target's own latency, at a steady alert rate.")

    @Option(help: "Target latencies in milliseconds, comma-separated.") var latencies = "50,80,120,150,200"
    @Option(help: "Alerts per second.") var rate = 200.0
    @Option(name: .short, help: "How long to publish.", transform: parseDuration) var duration: Duration = .seconds(10)
    @Option(
        help: "Alerts published at once: bursts of this many, as often as --rate allows (Alertmanager sends groups in bursts).")
    var burst = 1

    func validate() throws {
        guard !delays.isEmpty, delays.allSatisfy({ $0 >= 0 }) else { throw ValidationError("--latencies must be comma-separated milliseconds") }
        guard rate > 0, duration > .zero else { throw ValidationError("--rate and -d must be positive") }
        guard (1...10_000).contains(burst) else { throw ValidationError("--burst must be between 1 and 10000") }
    }

    var delays: [Int] { latencies.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }

    func run() async throws {
        let servers = try delays.map { ms in try MockTarget(routes: ["/t": .text("ok", delay: .milliseconds(ms))], recordRequests: false) }
        defer { servers.forEach { $0.stop() } }
        let slowest = Double(delays.max() ?? 0) / 1000
        let config = TargetsConfig(targets: servers.enumerated().map { Target(name: "t\($0.offset)", type: .webhook, url: $0.element.url("/t")) })
        let publisher = try FanoutPublisher(targets: config)
        let count = max(burst, Int(rate * duration.seconds) / burst * burst)
        let tally = OverheadTally(expected: count, slowest: slowest)
        let clock = ContinuousClock()
        let start = clock.now
        let cpu0 = processCPUSeconds()
        for i in 0..<count {
            if i % burst == 0 {
                try? await clock.sleep(until: start + .nanoseconds(Int64(Double(i) / rate * 1e9)), tolerance: .microseconds(200))
            }
            let alert = Alert(labels: ["alertname": "Overhead", "i": String(i)], startsAt: Timestamp(seconds: 1_700_000_000))
            publisher.publish(alert) { tally.record($0) }
        }
        await tally.wait()
        let cpu = processCPUSeconds() - cpu0
        await publisher.shutdown()
        let s = tally.samples.withLock { ($0.overhead, $0.failures) }
        let shape = burst > 1 ? "in bursts of \(burst) " : ""
        print("overhead: \(count) alerts \(shape)at \(fmt(rate, 0))/s to \(delays.count) targets answering in \(latencies) ms")
        print(
            "  completion minus the slowest target (\(fmt(slowest * 1000, 0)) ms): p50 \(fmt(Double(s.0.valueAtPercentile(50)) / 1000, 3)) ms  p99 \(fmt(Double(s.0.valueAtPercentile(99)) / 1000, 3)) ms  max \(fmt(Double(s.0.max) / 1000, 3)) ms; \(s.1) not fully delivered; CPU \(fmt(cpu, 2)) s (client and in-process servers)"
        )
    }
}

/// Collects overhead samples from publish completions (any thread); `wait()` returns when all arrived.
final class OverheadTally: Sendable {
    let samples = Mutex((overhead: Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three), failures: 0))
    let completions = CompletionCount()
    let expected: Int
    let slowest: Double

    init(expected: Int, slowest: Double) {
        self.expected = expected
        self.slowest = slowest
    }

    func record(_ result: Result<PublishReport, PublishError>) {
        samples.withLock { s in
            if let r = try? result.get(), r.allSucceeded {
                _ = s.overhead.record(UInt64(max(1, (r.durationSeconds - slowest) * 1e6)))
            } else {
                s.failures += 1
            }
        }
        completions.tick()
    }

    func wait() async { await completions.wait(for: expected) }
}

struct IdleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "idle",
        abstract: "CPU used while N requests wait on a slow loopback server (measured from the moment all were sent).")

    @Option(help: "Requests waiting at once.") var requests = 1000
    @Option(help: "How long the server holds each request.", transform: parseDuration) var wait: Duration = .seconds(3)

    func validate() throws {
        guard requests >= 1, wait > .zero else { throw ValidationError("--requests and --wait must be positive") }
    }

    func run() async throws {
        let server = try MockTarget(routes: ["/slow": .text("ok", delay: wait)], recordRequests: false)
        defer { server.stop() }
        let reactor = try CurlReactor(configuration: .init(maxInFlightPerHost: requests, maxInFlightTotal: requests))
        let completions = CompletionCount()
        let clock = ContinuousClock()
        let firstSent = clock.now
        let cpuStart = processCPUSeconds()
        for _ in 0..<requests {
            reactor.submit(HTTPRequest(url: server.url("/slow"), timeout: wait + .seconds(10))) { _ in completions.tick() }
        }
        while server.requestCount < requests { try await Task.sleep(for: .milliseconds(2)) }
        let sent = processCPUSeconds()
        let t0 = clock.now
        // The pure wait: from "all sent" until shortly before the first answers are due.
        try await clock.sleep(until: firstSent + wait - .milliseconds(250))
        let waited = (clock.now - t0).seconds
        let waiting = processCPUSeconds() - sent
        let beforeAnswers = processCPUSeconds()
        await completions.wait(for: requests)
        let answering = processCPUSeconds() - beforeAnswers
        await reactor.shutdown()
        print(
            "idle: \(requests) requests waiting: \(fmt(waiting, 3)) CPU-s over \(fmt(waited, 2)) s of waiting; sending them took \(fmt(sent - cpuStart, 3)) CPU-s, receiving the answers \(fmt(answering, 3)) CPU-s (in-process server included)"
        )
    }
}
