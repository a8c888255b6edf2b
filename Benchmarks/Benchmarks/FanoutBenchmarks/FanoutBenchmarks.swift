// Names use only letters, digits and underscores: package-benchmark 1.38.1 writes threshold files with
// shell-safe names but looks them up by the raw name.
// FanoutBenchmarks: reactor throughput (GET and 1 KB POST at concurrency 1, 64, 256), publish to 1/5/10/50 targets,
// formatter cost — with allocation counts per iteration, checked against Thresholds/.
import AlertFanout
import Benchmark
import CurlReactor
import Dispatch
import MockTarget

/// Sends `count` requests keeping `concurrency` in flight; returns when all completed.
func blast(_ reactor: CurlReactor, _ request: HTTPRequest, count: Int, concurrency: Int) {
    let done = DispatchSemaphore(value: 0)
    final class State: @unchecked Sendable { var issued = 0, completed = 0 }  // reactor queue only
    let s = State()
    reactor.queue.async {
        @Sendable func next() {
            guard s.issued < count else { return }
            s.issued += 1
            reactor.submit(request) { _ in
                s.completed += 1
                if s.completed == count { done.signal() } else { next() }
            }
        }
        for _ in 0..<min(concurrency, count) { next() }
    }
    done.wait()
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .throughput, .mallocCountTotal],
        warmupIterations: 1,
        scalingFactor: .kilo,
        maxDuration: .seconds(3),
        maxIterations: 20,
        // Allocation counts gate (±25 %: they include the in-process NIO server, whose count varies with
        // timing); times do not on a shared 2-core machine.
        thresholds: [.mallocCountTotal: .init(relative: [.p90: 25.0])])

    let server = try! MockTarget(recordRequests: false)
    let body = [UInt8](repeating: 0x61, count: 1024)
    for concurrency in [1, 64, 256] {
        let reactor = try! CurlReactor(configuration: .init(maxInFlightPerHost: concurrency, maxInFlightTotal: concurrency))
        Benchmark("reactor_GET_c\(concurrency)") { b in
            for _ in b.scaledIterations {}
            blast(reactor, HTTPRequest(url: server.url("/get"), captureHeaders: []), count: b.scaledIterations.count, concurrency: concurrency)
        }
        Benchmark("reactor_POST_1KB_c\(concurrency)") { b in
            for _ in b.scaledIterations {}
            blast(
                reactor, HTTPRequest(method: "POST", url: server.url("/post"), body: body, captureHeaders: []),
                count: b.scaledIterations.count, concurrency: concurrency)
        }
    }

    for n in [1, 5, 10, 50] {
        let targets = (0..<n).map { Target(name: "t\($0)", type: .webhook, url: server.url("/hook\($0)")) }
        let publisher = try! FanoutPublisher(targets: TargetsConfig(targets: targets))
        let alert = Alert(
            labels: ["alertname": "Bench", "severity": "critical"], annotations: ["summary": "benchmark"],
            startsAt: Timestamp(seconds: 1_700_000_000))
        Benchmark("publish_\(n)_targets", configuration: .init(scalingFactor: .one)) { b in
            for _ in b.scaledIterations {
                let done = DispatchSemaphore(value: 0)
                publisher.publish(alert) { _ in done.signal() }
                done.wait()
            }
        }
    }

    let alert = Alert(
        labels: ["alertname": "DiskFull", "severity": "critical", "instance": "db-1:9100", "job": "node"],
        annotations: ["summary": "Disk / is 97% full", "description": "Only 3% left"],
        startsAt: Timestamp(seconds: 1_700_000_000), generatorURL: "http://prometheus:9090/graph")
    let context = FormatContext(now: Timestamp(seconds: 1_700_000_100), rootlyAlertID: "r-1")
    for type in TargetType.allCases {
        let target = Target(name: "t", type: type, url: "https://example.invalid/hook", secret: Secret("R0123456789abcdef0123456789abcde"))
        let formatter = Formatters.formatter(for: type)
        Benchmark("format_\(type.rawValue)") { b in
            for _ in b.scaledIterations {
                blackHole(try? formatter.request(for: alert, target: target, context: context))
            }
        }
    }
}
