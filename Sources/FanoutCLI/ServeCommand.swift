// ServeCommand: `fanout serve` — AlertFanout as a long-running service behind Alertmanager, with the HTTP API.
import AlertFanout
import ArgumentParser
import Dispatch
import FanoutServer
import FanoutStore
import Foundation
import Logging
import Synchronization

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run as a service: Alertmanager's webhook receiver and the parallel publishing HTTP API, on one reactor.",
        discussion: """
            The config file is a targets file with an optional server: section (listen, auth, tls, max_body_bytes, publish_deadline, idle_timeout). Point Alertmanager's webhook_configs url at http://HOST:PORT/webhook.

            Endpoints: POST /webhook; POST /api/v2/publishing/parallel, /parallel/all, /parallel/healthy; GET /api/v2/publishing/targets, /targets/health, /targets/health/NAME; POST /api/v2/publishing/targets/health/NAME/check; GET /api/v2/publishing/stats; GET /metrics; GET /-/healthy, /-/ready; POST /-/reload.

            SIGHUP or POST /-/reload reloads the file; a bad file keeps the running configuration. SIGTERM or SIGINT drains: readiness and new requests answer 503, publishes in flight get --grace to finish, then the process exits 0; a second signal exits at once.

            Example:
            fanout serve --config alertfanout.yaml --listen 127.0.0.1:9095
            """)

    @Option(help: "Config file: targets plus an optional server: section (YAML or JSON).")
    var config: String

    @Option(help: "Listen address HOST:PORT (overrides server.listen; default 127.0.0.1:9095).")
    var listen: String?

    @Option(
        help:
            "Where the durable outbox lives: sqlite:PATH (default sqlite:fanout-state.db, overriding server.store), postgres://USER:PASSWORD@HOST:PORT/DB for several replicas, or none (answer /webhook after delivering, keep nothing)."
    )
    var store: String?

    @Option(help: "How long publishes in flight may take to finish after SIGTERM or SIGINT.", transform: parseDuration)
    var grace: Duration = .seconds(10)

    @Option(help: "Log level on standard error: trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
        if let l = listen, ServiceConfigLoader.parseListen(l) == nil {
            throw ValidationError("--listen must be HOST:PORT, [IPv6]:PORT or :PORT, not '\(l)'")
        }
        if let s = store, case .failure(let e) = StoreLocation.parse(s) { throw ValidationError("--store: \(e.message)") }
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        var serviceConfig: ServiceConfig
        do {
            serviceConfig = try ServiceConfigLoader.load(path: config, environment: environment)
        } catch let e as TargetsConfigError {
            FileHandle.standardError.write(Data("fanout serve: \(e)\n".utf8))
            throw ExitCode(64)
        }
        if let l = listen, let (host, port) = ServiceConfigLoader.parseListen(l) {
            serviceConfig.server.host = host
            serviceConfig.server.port = port
        }
        let settings = serviceConfig.server
        let targetCount = serviceConfig.targets.targets.count
        let obs = try Observability(try ObservabilityOptions.parse(["--log-level", logLevel]))
        let logger = obs.logger("alertfanout.serve")
        let location: StoreLocation
        switch StoreLocation.parse(store ?? serviceConfig.server.store ?? StoreLocation.default.description) {
        case .success(let l): location = l
        case .failure(let e): throw ValidationError("server.store: \(e.message)")
        }
        let openedStore: (any DeliveryStore)?
        do {
            openedStore = try await location.open()
        } catch {
            FileHandle.standardError.write(Data("fanout serve: cannot open the store \(location): \(error)\n".utf8))
            throw ExitCode(1)
        }
        logger.notice("store", metadata: ["store": "\(location)"])
        let service = try FanoutService(
            config: serviceConfig, configPath: config, environment: environment, store: openedStore,
            policy: serviceConfig.server.deliveryPolicy, logger: logger, metrics: obs.factory)
        let reactorMetrics = ReactorMetrics(reactor: service.publisher.reactor, factory: obs.factory)
        reactorMetrics.start()
        let registry = obs.registry
        let server: FanoutServer
        do {
            server = try FanoutServer(service: service, metricsText: { registry.emitToBuffer() }, metrics: obs.factory, logger: logger) { port in
                logger.notice(
                    "listening",
                    metadata: [
                        "address": "\(settings.host):\(port)", "tls": "\(settings.tlsCertificateFile != nil)",
                        "targets": "\(targetCount)",
                    ])
            }
        } catch {
            FileHandle.standardError.write(Data("fanout serve: cannot set up the listener: \(error)\n".utf8))
            throw ExitCode(64)
        }

        // Signals: the first SIGTERM/SIGINT drains, a second one exits at once; SIGHUP reloads.
        let signals = Mutex(0)
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler {
                let n = signals.withLock {
                    $0 += 1
                    return $0
                }
                if n > 1 {
                    FileHandle.standardError.write(Data("fanout serve: second signal, exiting now\n".utf8))
                    Foundation.exit(1)
                }
                logger.notice("draining", metadata: ["signal": "\(sig)", "grace_s": "\(grace.components.seconds)"])
                Task { await server.stop(grace: grace) }
            }
            s.activate()
            sources.append(s)
        }
        signal(SIGHUP, SIG_IGN)
        let hup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        hup.setEventHandler { _ = service.reload() }
        hup.activate()
        sources.append(hup)

        do {
            try await server.run()
        } catch {
            FileHandle.standardError.write(Data("fanout serve: \(error)\n".utf8))
            reactorMetrics.stop()
            await service.shutdown(grace: .zero)
            throw ExitCode(1)
        }
        sources.forEach { $0.cancel() }
        reactorMetrics.stop()
        await service.shutdown(grace: grace)
        logger.notice("stopped")
    }
}
