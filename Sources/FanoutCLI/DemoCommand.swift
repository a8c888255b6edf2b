// DemoCommand: `fanout demo` — publishes a stream of sample alerts to built-in loopback vendors and reports what happened.
import AlertFanout
import ArgumentParser
import CurlReactor
import FanoutCore
import FanoutLoad
import Foundation
import Histogram
import MockTarget
import Synchronization

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Publish sample alerts to built-in loopback targets shaped like each vendor; no configuration, no network.",
        discussion: """
            Starts loopback MockTargets that behave like PagerDuty, Slack, Rootly, an Alertmanager receiver and a signed webhook endpoint (each validates what it receives), plus one flaky webhook that fails every 7th request and is down (503) from 30 % to 60 % of the run: its retries, circuit breaker and recovery show in the table.

            Publishes a stream of alerts, each firing and then resolved, and prints a per-target table and a summary: alerts per second, fan-out latency and the overhead above the slowest target. Exit status 0 when every check of the run held; otherwise 1, naming the check that failed and what it saw.
            """)

    @Option(name: .short, help: "How long to publish (e.g. 5s).", transform: parseDuration)
    var duration: Duration = .seconds(5)

    @Option(help: "New alerts per second (each is also resolved later).")
    var rate: Double = 40

    @Option(help: "Time between an alert firing and its resolve (e.g. 1s).", transform: parseDuration)
    var resolveAfter: Duration = .seconds(1)

    @OptionGroup var observability: ObservabilityOptions

    func validate() throws {
        guard duration > .zero, duration <= .seconds(600) else { throw ValidationError("-d must be between 0 and 10m") }
        guard rate > 0, rate <= 5000 else { throw ValidationError("--rate must be in (0, 5000]") }
        guard resolveAfter >= .zero else { throw ValidationError("--resolve-after must not be negative") }
    }

    struct DemoVendor {
        var name: String
        var type: TargetType
        var delay: Duration
        var server: MockTarget
        var target: Target
    }

    func run() async throws {
        let obs = try Observability(observability)
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        func server(_ routes: [String: MockBehavior]) throws -> MockTarget { try MockTarget(routes: routes, recordRequests: false) }
        let pd = try server(["/v2/enqueue": VendorSimulators.pagerDuty(delay: .milliseconds(30))])
        let slack = try server(["/services/T0/B0/demo": VendorSimulators.slack(delay: .milliseconds(15))])
        let rootly = try server(["/v1/alerts": VendorSimulators.rootly(delay: .milliseconds(50))])
        let am = try server(["/hook": VendorSimulators.alertmanagerReceiver(delay: .milliseconds(5))])
        let hook = try server(["/alerts": VendorSimulators.signedWebhook(secret: secret, delay: .milliseconds(20))])
        let outageStart = duration.seconds * 0.3
        let outageEnd = duration.seconds * 0.6
        let demoStart = ContinuousClock.now
        let flaky = try server([
            "/alerts": .custom { req in
                let t = (ContinuousClock.now - demoStart).seconds
                if (t >= outageStart && t < outageEnd) || req.routeIndex % 7 == 0 {
                    return .text("upstream unavailable", status: 503, delay: .milliseconds(40))
                }
                return .text("ok", delay: .milliseconds(40))
            }
        ])
        // The simulators are loopback doubles: lift the vendors' real rate limits (1/s for Slack, 100/min for
        // PagerDuty, 45/min for Rootly's alert ingestion), which would otherwise pace a demo at tens of alerts per second.
        let unlimited = RateLimit(requests: 100_000, periodSeconds: 1, burst: 100_000)
        let vendors = [
            DemoVendor(
                name: "pagerduty", type: .pagerduty, delay: .milliseconds(30), server: pd,
                target: Target(name: "pagerduty", type: .pagerduty, url: pd.baseURL, secret: Secret("R0123456789abcdef0123456789abcde"), rateLimit: unlimited)),
            DemoVendor(
                name: "slack", type: .slack, delay: .milliseconds(15), server: slack,
                target: Target(name: "slack", type: .slack, url: slack.url("/services/T0/B0/demo"), rateLimit: unlimited)),
            DemoVendor(
                name: "rootly", type: .rootly, delay: .milliseconds(50), server: rootly,
                target: Target(name: "rootly", type: .rootly, url: rootly.baseURL, secret: Secret("demo-rootly-key"), rateLimit: unlimited)),
            DemoVendor(
                name: "am-receiver", type: .alertmanager, delay: .milliseconds(5), server: am,
                target: Target(name: "am-receiver", type: .alertmanager, url: am.url("/hook"))),
            DemoVendor(
                name: "webhook", type: .webhook, delay: .milliseconds(20), server: hook,
                target: Target(name: "webhook", type: .webhook, url: hook.url("/alerts"), secret: Secret(secret))),
            DemoVendor(
                name: "flaky-hook", type: .webhook, delay: .milliseconds(40), server: flaky,
                target: Target(name: "flaky-hook", type: .webhook, url: flaky.url("/alerts"))),
        ]
        defer { vendors.forEach { $0.server.stop() } }
        // Quick cooldowns and health trials so a few seconds show a trip and a recovery.
        let resilience = ResilienceConfig(
            breaker: .init(consecutiveFailures: 5, cooldownSeconds: 0.5, successesToClose: 2),
            health: .init(windowSeconds: 10, trialIntervalSeconds: 0.5))
        let publisher = try FanoutPublisher(
            targets: TargetsConfig(targets: vendors.map(\.target)), resilience: resilience,
            logger: obs.logger("alertfanout.demo"), metrics: obs.exporting ? obs.factory : nil)
        let reactorMetrics = obs.reactorMetrics(publisher.reactor)
        let delays = Dictionary(uniqueKeysWithValues: vendors.map { ($0.name, $0.delay.seconds) })
        let stats = DemoStats(targets: vendors.map(\.name), delays: delays)

        // The schedule: alert i fires at i/rate and resolves resolveAfter later.
        let count = max(1, Int((duration.seconds * rate).rounded(.down)))
        var events: [(at: Double, index: Int, resolved: Bool)] = []
        for i in 0..<count {
            let t = Double(i) / rate
            events.append((t, i, false))
            events.append((t + resolveAfter.seconds, i, true))
        }
        events.sort { ($0.at, $0.resolved ? 1 : 0) < ($1.at, $1.resolved ? 1 : 0) }
        print(
            "fanout demo: \(count) alerts at \(fmt(rate, 0))/s, each resolved after \(fmt(resolveAfter.seconds, 1)) s, to \(vendors.count) loopback targets (\(CurlReactor.curlShortVersion)); flaky-hook is down from \(fmt(outageStart, 1)) s to \(fmt(outageEnd, 1)) s"
        )
        let clock = ContinuousClock()
        let start = clock.now
        let cpu0 = processCPUSeconds()
        for e in events {
            try? await clock.sleep(until: start + .nanoseconds(Int64(e.at * 1e9)), tolerance: .milliseconds(1))
            let alert = DemoCommand.sampleAlert(e.index, resolved: e.resolved)
            publisher.publish(alert, options: .init(deadline: .seconds(5))) { result in stats.record(result) }
        }
        await stats.waitFor(events.count)
        let elapsed = (clock.now - start).seconds
        let cpu = processCPUSeconds() - cpu0
        reactorMetrics?.sample()
        reactorMetrics?.stop()
        await publisher.shutdown()
        try obs.finish()
        let reactorStats = publisher.reactor.stats()
        let guards = publisher.guards

        let s = stats.snapshot
        var rows = [["TARGET", "TYPE", "SENT", "OK", "FAILED", "SKIPPED", "RETRIES", "P50 MS", "P99 MS", "SERVER SAW", "BREAKER", "NOTES"]]
        var failedChecks: [String] = []
        for v in vendors {
            let t = s.perTarget[v.name]!
            let saw = v.server.requestCount
            if saw != t.attempts { failedChecks.append("\(v.name): the server saw \(saw) requests, the reports count \(t.attempts) attempts") }
            let notes =
                (t.failures.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }
                + t.skips.sorted { $0.key < $1.key }.map { "skipped \($0.key) ×\($0.value)" }).joined(separator: ", ")
            let breaker = guards[v.name].breaker
            rows.append([
                v.name, v.type.rawValue, String(t.attempts), String(t.ok), String(t.failed), String(t.skipped), String(t.retries),
                ms(t.latency.valueAtPercentile(50)), ms(t.latency.valueAtPercentile(99)), String(saw),
                "\(breaker.state.name) (\(breaker.transitions) moves)", notes,
            ])
        }
        table(rows).forEach { print("  " + $0) }
        let publishes = s.reports.count
        print(
            "  summary    \(publishes) publishes (\(count) firing + \(count) resolved) in \(fmt(elapsed, 2)) s = \(fmt(Double(publishes) / elapsed, 1)) alerts/s; \(s.partial) partial, \(s.allFailed) reached no target"
        )
        print("  fan-out    p50 \(ms(s.fanout.valueAtPercentile(50))) ms  p99 \(ms(s.fanout.valueAtPercentile(99))) ms  max \(ms(s.fanout.max)) ms")
        print(
            "  overhead   above the slowest target's own latency (clean fan-outs): p50 \(ms(s.overhead.valueAtPercentile(50))) ms  p99 \(ms(s.overhead.valueAtPercentile(99))) ms"
        )
        let released = reactorStats.released && reactorStats.isIdleAndEmpty
        if !s.complete {
            failedChecks.append("accounting: \(s.reports.count) reports for \(events.count) publishes, or a report without one result per target")
        }
        if !released { failedChecks.append("release: after shutdown the reactor reports \(reactorStats)") }
        print(
            "  accounting every target of every alert reported exactly once: \(s.complete ? "yes" : "NO"); servers saw every request: \(failedChecks.contains { $0.contains("the server saw") } ? "NO" : "yes")"
        )
        print(
            "  process    \(fmt(cpu, 2)) CPU-s (client and in-process servers), \(reactorStats.connectionsOpened) connections opened; reactor released: \(released ? "yes" : "NO")"
        )
        if !failedChecks.isEmpty {
            FileHandle.standardError.write(Data(("fanout demo: a check failed:\n" + failedChecks.map { "  - \($0)\n" }.joined()).utf8))
            throw ExitCode(1)
        }
    }

    static func sampleAlert(_ i: Int, resolved: Bool) -> Alert {
        let kinds: [(String, String, String)] = [
            ("DiskFull", "critical", "Disk / is 97% full"), ("HighLatency", "warning", "p99 latency above 500 ms"),
            ("PodCrashLooping", "critical", "Pod restarted 5 times in 10 minutes"), ("CertExpiring", "info", "TLS certificate expires in 6 days"),
        ]
        let k = kinds[i % kinds.count]
        let labels = ["alertname": k.0, "severity": k.1, "instance": "host-\(i % 20):9100", "job": "node", "seq": String(i)]
        var alert = Alert(
            labels: labels, annotations: ["summary": "\(k.2) on host-\(i % 20)", "runbook_url": "https://runbooks.example.com/\(k.0)"],
            status: .firing, startsAt: currentTimestamp(), generatorURL: "http://prometheus.example:9090/graph")
        if resolved {
            alert.status = .resolved
            alert.endsAt = currentTimestamp()
        }
        return alert
    }
}

private func ms(_ micros: UInt64) -> String { fmt(Double(micros) / 1000, 2) }

/// Aggregates demo reports; thread-safe.
final class DemoStats: Sendable {
    struct Target {
        var attempts = 0, ok = 0, failed = 0, skipped = 0, retries = 0
        var failures: [String: Int] = [:]
        var skips: [String: Int] = [:]
        var latency = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
    }

    struct State {
        var perTarget: [String: Target] = [:]
        var reports = CountWaiter()
        var partial = 0, allFailed = 0
        var complete = true
        var fanout = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        var overhead = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
    }

    let names: [String]
    let delays: [String: Double]
    let state: Mutex<State>

    init(targets: [String], delays: [String: Double]) {
        names = targets
        self.delays = delays
        var s = State()
        for t in targets { s.perTarget[t] = Target() }
        state = Mutex(s)
    }

    var snapshot: State { state.withLock { $0 } }

    func record(_ result: Result<PublishReport, PublishError>) {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            let wake = s.reports.add()
            let report: PublishReport?
            switch result {
            case .success(let r):
                report = r
                if !r.allSucceeded { s.partial += 1 }
            case .failure(let e):
                report = e.report
                s.allFailed += 1
            }
            if let r = report {
                if r.results.map(\.target) != names { s.complete = false }
                var slowestDelay = 0.0
                for t in r.results {
                    var agg = s.perTarget[t.target] ?? Target()
                    agg.attempts += t.attempts
                    agg.retries += max(0, t.attempts - 1)
                    switch t.outcome {
                    case .succeeded: agg.ok += 1
                    case .failed:
                        agg.failed += 1
                        agg.failures["\(t.errorKind?.rawValue ?? "error")\(t.httpStatus.map { " \($0)" } ?? "")", default: 0] += 1
                    case .skipped:
                        agg.skipped += 1
                        agg.skips[t.skipReason?.rawValue ?? "?", default: 0] += 1
                    }
                    if t.outcome != .skipped {
                        _ = agg.latency.record(UInt64(max(1, t.durationSeconds * 1e6)))
                        slowestDelay = max(slowestDelay, delays[t.target] ?? 0)
                    }
                    s.perTarget[t.target] = agg
                }
                _ = s.fanout.record(UInt64(max(1, r.durationSeconds * 1e6)))
                // Overhead only where every target answered at its first attempt: retries and skips are
                // resilience at work, not fan-out overhead.
                if r.results.allSatisfy({ $0.outcome == .succeeded && $0.attempts == 1 }) {
                    _ = s.overhead.record(UInt64(max(1, (r.durationSeconds - slowestDelay) * 1e6)))
                }
            } else {
                s.complete = false
            }
            return wake
        }
        waiter?.resume()
    }

    func waitFor(_ n: Int) async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            if !state.withLock({ $0.reports.park(c, until: n) }) { c.resume() }
        }
    }
}
