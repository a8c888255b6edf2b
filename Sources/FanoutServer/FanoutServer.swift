// FanoutServer: `fanout serve`'s HTTP side on Hummingbird 2 — listener, TLS, graceful drain; routes live in +Routes.
import AlertFanout
import CoreMetrics
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle
import Synchronization

/// The service's HTTP server. Inbound HTTP runs on NIO's event loops; every delivery goes through the
/// service's one reactor. Start it with `run()`; `stop(grace:)` drains it (readiness and new requests 503,
/// publishes in flight finish within `grace`), closes the listener, and makes `run()` return.
public final class FanoutServer: Sendable {
    public let service: FanoutService
    private let group: ServiceGroup
    private let boundPort = PortBox()
    private let logger: Logger

    /// `metricsText` renders `GET /metrics` (Prometheus text format); nil answers 404 there. `onListening`
    /// receives the bound port (useful with port 0).
    public init(
        service: FanoutService, metricsText: (@Sendable () -> [UInt8])? = nil, metrics: MetricsFactory? = nil,
        logger: Logger = Logger(label: "alertfanout.serve", factory: { _ in SwiftLogNoOpLogHandler() }),
        onListening: @escaping @Sendable (Int) -> Void = { _ in }
    ) throws {
        self.service = service
        self.logger = logger
        let settings = service.settings
        let router = FanoutServer.makeRouter(service: service, metricsText: metricsText, metrics: metrics)
        let http1 = HTTP1Channel.Configuration(idleTimeout: .milliseconds(Int64(settings.idleTimeoutSeconds * 1000)))
        var server: HTTPServerBuilder = .http1(configuration: http1)
        if let cert = settings.tlsCertificateFile, let key = settings.tlsKeyFile {
            let tls = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
            _ = try NIOSSLContext(configuration: tls)  // a bad certificate or key fails here, not inside run()
            server = try .tls(.http1(configuration: http1), tlsConfiguration: tls)
        }
        let port = boundPort
        let app = Application(
            router: router, server: server,
            configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "AlertFanout"),
            onServerRunning: { channel in
                let p = channel.localAddress?.port ?? settings.port
                port.value.withLock { $0 = p }
                onListening(p)
            },
            logger: logger)
        group = ServiceGroup(services: [app], logger: logger)
    }

    /// The port the listener is bound to, once it is.
    public var port: Int? { boundPort.value.withLock { $0 } }

    /// Serves until `stop(grace:)`. Throws when the listener cannot be opened (address in use, …).
    public func run() async throws {
        let s = service.settings
        if !s.isLoopback && !s.requiresAuth {
            logger.warning(
                "listening on a non-loopback address without authentication: anyone who can reach it can publish alerts",
                metadata: ["listen": "\(s.host):\(s.port)"])
        }
        try await group.run()
    }

    /// Graceful stop: readiness and new API requests answer 503 at once; publishes in flight get up to `grace`
    /// to finish; then the listener and remaining connections close and `run()` returns. Deliveries still in
    /// flight after that are cancelled by `FanoutService.shutdown()`.
    public func stop(grace: Duration) async {
        service.beginDrain()
        let drained = await service.waitForInFlight(grace: grace)
        if !drained { logger.warning("grace period over with publishes still in flight; they will be cancelled") }
        await group.triggerGracefulShutdown()
    }
}

/// The bound port, shared with the server's start-up callback.
final class PortBox: Sendable {
    let value = Mutex<Int?>(nil)
}
