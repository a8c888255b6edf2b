// ReactorMetrics: exports a reactor's counters and its loop lag through a MetricsFactory by polling its stats.
import CoreMetrics
import CurlReactor
import Dispatch

/// Polls `reactor.stats()` every `interval` on its own queue and records gauges, counter deltas and the loop
/// lag (how long a tiny task waited for the reactor queue). The reactor itself keeps plain integers on its
/// queue, so metrics cost nothing per request.
public final class ReactorMetrics: @unchecked Sendable {
    private let reactor: CurlReactor
    private let queue = DispatchQueue(label: "alertfanout.reactor-metrics")
    private var timer: DispatchSourceTimer?
    private var last: ReactorStats?
    private let inFlight, queued: Gauge
    private let completed, connections, events, backstop: Counter
    private let lag: Gauge

    /// Metrics for `reactor`, made through `factory` under the reactor names of ``FanoutMetricNames``. Nothing
    /// is recorded until `start(interval:)` or `sample()`.
    public init(reactor: CurlReactor, factory: MetricsFactory) {
        self.reactor = reactor
        inFlight = Gauge(label: FanoutMetricNames.reactorInFlight, factory: factory)
        queued = Gauge(label: FanoutMetricNames.reactorQueued, factory: factory)
        completed = Counter(label: FanoutMetricNames.reactorCompleted, factory: factory)
        connections = Counter(label: FanoutMetricNames.reactorConnections, factory: factory)
        events = Counter(label: FanoutMetricNames.reactorSocketEvents, factory: factory)
        backstop = Counter(label: FanoutMetricNames.reactorBackstop, factory: factory)
        lag = Gauge(label: FanoutMetricNames.reactorLoopLag, factory: factory)
    }

    /// Starts polling; `stop()` (or a final `sample()`) ends it.
    public func start(interval: Duration = .seconds(1)) {
        queue.async { [self] in
            let t = DispatchSource.makeTimerSource(queue: queue)
            let ns = Int(clamping: interval.nanosecondsClamped)
            t.schedule(deadline: .now() + .nanoseconds(ns), repeating: .nanoseconds(ns), leeway: .milliseconds(10))
            t.setEventHandler { [self] in sampleOnQueue() }
            t.activate()
            timer = t
        }
    }

    /// Records one sample now (also the last one before exporting).
    public func sample() { queue.sync { sampleOnQueue() } }

    /// Stops polling; returns once a sample in progress has finished. Call `sample()` after it for a final reading.
    public func stop() {
        queue.sync {
            timer?.cancel()
            timer = nil
        }
    }

    private func sampleOnQueue() {
        let s = reactor.stats()
        inFlight.record(s.inFlight)
        queued.record(s.queued)
        let p = last
        completed.increment(by: s.completed - (p?.completed ?? 0))
        connections.increment(by: s.connectionsOpened - (p?.connectionsOpened ?? 0))
        events.increment(by: s.socketEvents - (p?.socketEvents ?? 0))
        backstop.increment(by: s.backstopExpiries - (p?.backstopExpiries ?? 0))
        last = s
        guard !s.released else { return }
        let enqueued = DispatchTime.now().uptimeNanoseconds
        let lag = self.lag
        reactor.queue.async {
            lag.record(Double(DispatchTime.now().uptimeNanoseconds - enqueued) / 1e9)
        }
    }
}
