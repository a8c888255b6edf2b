// ServerHarness: a real `FanoutServer` on 127.0.0.1 (port 0) with a libcurl client, started and stopped per test.
import AlertFanout
import CurlReactor
import FanoutCore
import FanoutServer
import FanoutStore
import Foundation
import Prometheus
import XCTest

final class ServerHarness: @unchecked Sendable {
    let service: FanoutService
    let server: FanoutServer
    let port: Int
    let client: CurlReactor
    let runTask: Task<Void, Error>
    let configPath: String
    let registry: PrometheusCollectorRegistry

    struct Reply {
        var status: Int
        var body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
        var json: JSONValue? { try? JSONValue.parse(body) }
    }

    /// Writes `yaml` to a file and serves it.
    /// `store` (e.g. a `SQLiteStore`) turns the outbox on, worked with `policy`.
    static func start(
        _ yaml: String, environment: [String: String] = [:], store: (any DeliveryStore)? = nil,
        policy: DeliveryPolicy = .init(), resilience: ResilienceConfig = .init(), owner: String = "test-\(UUID().uuidString.prefix(8))"
    ) async throws -> ServerHarness {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("serve-\(UUID().uuidString).yaml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        var config = try ServiceConfigLoader.load(path: path, environment: environment)
        config.server.port = 0
        let registry = PrometheusCollectorRegistry()
        let factory = PrometheusMetricsFactory(registry: registry)
        let service = try FanoutService(
            config: config, configPath: path, environment: environment, store: store, policy: policy, resilience: resilience, owner: owner,
            metrics: factory)
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let server = try FanoutServer(service: service, metricsText: { registry.emitToBuffer() }, metrics: factory) { continuation.yield($0) }
        let task = Task { try await server.run() }
        var port = 0
        for await p in ports {
            port = p
            break
        }
        return ServerHarness(service: service, server: server, port: port, client: try CurlReactor(), runTask: task, configPath: path, registry: registry)
    }

    private init(
        service: FanoutService, server: FanoutServer, port: Int, client: CurlReactor, runTask: Task<Void, Error>, configPath: String,
        registry: PrometheusCollectorRegistry
    ) {
        self.service = service
        self.server = server
        self.port = port
        self.client = client
        self.runTask = runTask
        self.configPath = configPath
        self.registry = registry
    }

    func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

    func call(
        _ method: String, _ path: String, body: String? = nil, bytes: [UInt8]? = nil, headers: [HTTPHeader] = [],
        file: StaticString = #filePath, line: UInt = #line
    ) async -> Reply {
        var h = headers
        if body != nil || bytes != nil { h.append(HTTPHeader("Content-Type", "application/json")) }
        let request = HTTPRequest(
            method: method, url: url(path), headers: h, body: bytes ?? body.map { Array($0.utf8) },
            timeout: .seconds(20), captureHeaders: ["www-authenticate", "retry-after"])
        switch await client.execute(request) {
        case .success(let r): return Reply(status: r.status, body: r.body)
        case .failure(let e):
            XCTFail("\(method) \(path): \(e)", file: file, line: line)
            return Reply(status: 0, body: [])
        }
    }

    /// `GET /api/v2/publishing/stats` as JSON.
    func stats() async -> JSONValue { await call("GET", "/api/v2/publishing/stats").json ?? .null }

    /// Rewrites the config file (for reload tests).
    func rewrite(_ yaml: String) throws { try yaml.write(toFile: configPath, atomically: true, encoding: .utf8) }

    /// Drains and stops the server, then checks that the reactors released everything.
    func stop(file: StaticString = #filePath, line: UInt = #line) async throws {
        await server.stop(grace: .seconds(5))
        try await runTask.value
        await service.shutdown()
        await client.shutdown(.drain)
        let s = service.publisher.reactor.stats()
        XCTAssertTrue(s.isIdleAndEmpty, "the service's reactor left work behind: \(s)", file: file, line: line)
    }
}

/// An Alertmanager webhook payload (version 4) with one alert per name.
func alertmanagerPayload(_ names: [String], status: String = "firing", version: String = "4") -> String {
    let alerts = names.map { n in
        #"{"status":"\#(status)","labels":{"alertname":"\#(n)","severity":"critical"},"annotations":{"summary":"\#(n) is on fire"},"startsAt":"2024-05-01T12:00:00Z"\#(status == "resolved" ? #","endsAt":"2024-05-01T12:10:00Z""# : "")}"#
    }
    return
        #"{"version":"\#(version)","groupKey":"{}:{alertname=\"x\"}","status":"\#(status)","receiver":"fanout","groupLabels":{},"commonLabels":{},"commonAnnotations":{},"externalURL":"http://am.local","alerts":[\#(alerts.joined(separator: ","))]}"#
}
