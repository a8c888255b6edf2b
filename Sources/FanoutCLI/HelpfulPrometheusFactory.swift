// HelpfulPrometheusFactory: a swift-metrics factory over a Prometheus registry that adds each metric's HELP text.
import AlertFanout
import CoreMetrics
import NIOConcurrencyHelpers
import Prometheus

/// Like `PrometheusMetricsFactory`, but registers every metric with the help text from `FanoutMetricNames.help`,
/// so the exposition passes `promtool check metrics` (which rejects metrics without `# HELP`). Handlers are
/// kept by label and dimensions: code that writes `Counter(label:dimensions:)` per event then costs one hash
/// look-up, not the registry's name building and help-text checks each time.
struct HelpfulPrometheusFactory: CoreMetrics.MetricsFactory {
    let registry: PrometheusCollectorRegistry
    let buckets: [Duration]
    let inner: PrometheusMetricsFactory
    private let handlers = HandlerCache()

    private struct Key: Hashable {
        var kind: UInt8
        var label: String
        var dimensions: [String]
    }

    /// Handlers are Sendable objects (the protocols require it); the dictionary holds them as `AnyObject`.
    private final class HandlerCache: @unchecked Sendable {
        let entries = NIOLockedValueBox<[Key: AnyObject]>([:])
    }

    private func cached<H: AnyObject>(_ kind: UInt8, _ label: String, _ dimensions: [(String, String)], make: () -> H) -> H {
        var flat: [String] = []
        flat.reserveCapacity(dimensions.count * 2)
        for (k, v) in dimensions {
            flat.append(k)
            flat.append(v)
        }
        let key = Key(kind: kind, label: label, dimensions: flat)
        if let h = handlers.entries.withLockedValue({ $0[key] }) as? H { return h }
        let h = make()
        handlers.entries.withLockedValue { $0[key] = h }
        return h
    }

    private func forget(_ handler: AnyObject) {
        handlers.entries.withLockedValue { entries in
            for (k, v) in entries where v === handler { entries[k] = nil }
        }
    }

    init(registry: PrometheusCollectorRegistry, buckets: [Duration]) {
        self.registry = registry
        self.buckets = buckets
        inner = PrometheusMetricsFactory(registry: registry)
    }

    private func descriptor(_ label: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: label, unitName: "", helpText: FanoutMetricNames.help[label] ?? label.replacingOccurrences(of: "_", with: " "))
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        cached(0, label, dimensions) { registry.makeCounter(descriptor: descriptor(label), labels: dimensions) }
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        cached(1, label, dimensions) { registry.makeCounter(descriptor: descriptor(label), labels: dimensions) }
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        cached(2, label, dimensions) { registry.makeGauge(descriptor: descriptor(label), labels: dimensions) }
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        cached(3, label, dimensions) { registry.makeGauge(descriptor: descriptor(label), labels: dimensions) }
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        cached(4, label, dimensions) { registry.makeDurationHistogram(descriptor: descriptor(label), labels: dimensions, buckets: buckets) }
    }

    func destroyCounter(_ handler: any CounterHandler) {
        forget(handler)
        inner.destroyCounter(handler)
    }
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        forget(handler)
        inner.destroyFloatingPointCounter(handler)
    }
    func destroyRecorder(_ handler: any RecorderHandler) {
        forget(handler)
        inner.destroyRecorder(handler)
    }
    func destroyMeter(_ handler: any MeterHandler) {
        forget(handler)
        inner.destroyMeter(handler)
    }
    func destroyTimer(_ handler: any TimerHandler) {
        forget(handler)
        inner.destroyTimer(handler)
    }
}
