// Observability: the CLI's logging and metrics set-up — the only place that bootstraps backends.
import AlertFanout
import ArgumentParser
import CurlReactor
import Foundation
import Logging
import Prometheus

/// `--metrics-file`, `--metrics-port` and `--log-level`, shared by `demo`, `publish` and `load`.
struct ObservabilityOptions: ParsableArguments {
    @Option(help: "Write Prometheus text-format metrics to this file when the command ends.")
    var metricsFile: String?

    @Option(help: "Serve Prometheus metrics at http://127.0.0.1:PORT/metrics while the command runs.")
    var metricsPort: Int?

    @Option(help: "Log level on standard error: trace, debug, info, notice, warning (partial deliveries), error (alerts that reached no target) or critical.")
    var logLevel: String = "error"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
        if let p = metricsPort, !(1...65535).contains(p) { throw ValidationError("--metrics-port must be 1...65535") }
        if let f = metricsFile, f.isEmpty { throw ValidationError("--metrics-file must not be empty") }
    }
}

/// Holds the Prometheus registry and the metrics endpoint for one command run.
final class Observability: @unchecked Sendable {
    let registry = PrometheusCollectorRegistry()
    let factory: HelpfulPrometheusFactory
    let options: ObservabilityOptions
    private var server: MetricsServer?

    init(_ options: ObservabilityOptions) throws {
        self.options = options
        factory = HelpfulPrometheusFactory(
            registry: registry,
            buckets: [
                .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
                .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10),
            ])
        let level = Logger.Level(rawValue: options.logLevel) ?? .warning
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        if let port = options.metricsPort {
            server = try MetricsServer(port: port, registry: registry)
            FileHandle.standardError.write(Data("metrics at http://127.0.0.1:\(port)/metrics\n".utf8))
        }
    }

    func logger(_ label: String) -> Logger { Logger(label: label) }

    /// True when metrics leave the process (a file or an endpoint was asked for).
    var exporting: Bool { options.metricsFile != nil || options.metricsPort != nil }

    /// Reactor metrics, polled once a second, only when they are exported.
    func reactorMetrics(_ reactor: CurlReactor) -> ReactorMetrics? {
        guard exporting else { return nil }
        let m = ReactorMetrics(reactor: reactor, factory: factory)
        m.start()
        return m
    }

    /// Writes the metrics file (if asked) and stops the endpoint.
    func finish() throws {
        if let path = options.metricsFile {
            do {
                try Data(registry.emitToBuffer()).write(to: URL(fileURLWithPath: path))
            } catch {
                throw ValidationError("cannot write --metrics-file '\(path)': \(error.localizedDescription)")
            }
        }
        server?.stop()
        server = nil
    }
}
