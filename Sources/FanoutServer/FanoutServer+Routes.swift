// FanoutServer+Routes: the endpoints — Alertmanager webhook, parallel publishing API, targets, health, stats, ops.
import AlertFanout
import CoreMetrics
import FanoutCore
import FanoutStore
import Hummingbird

extension FanoutServer {
    static func makeRouter(service: FanoutService, metricsText: (@Sendable () -> [UInt8])?, metrics: MetricsFactory?) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: RequestMetricsMiddleware(factory: metrics))
        router.add(middleware: DrainGateMiddleware(service: service))
        router.add(middleware: AuthMiddleware(service: service))

        // Operations.
        router.get("/-/healthy") { _, _ -> Response in jsonResponse(.ok, .object([("status", .string("healthy"))])) }
        router.get("/-/ready") { _, _ -> Response in
            if service.isDraining { return errorResponse(.serviceUnavailable, "draining") }
            if service.publisher.reactor.stats().released { return errorResponse(.serviceUnavailable, "the reactor is not running") }
            if let store = service.store {
                do { try await store.ping() } catch { return errorResponse(.serviceUnavailable, "the store is unavailable: \(error)") }
            }
            return jsonResponse(.ok, .object([("status", .string("ready"))]))
        }
        router.post("/-/reload") { _, _ -> Response in
            switch service.reload() {
            case .success(let fresh):
                return jsonResponse(.ok, .object([("status", .string("reloaded")), ("fresh_targets", .array(fresh.map { .string($0) }))]))
            case .failure(let e):
                return jsonResponse(
                    .internalServerError,
                    .object([
                        ("status", .string("failed")), ("error", .string("the new configuration was refused; the running one is kept")),
                        ("problems", .array(e.problems.map { .string($0.description) })),
                    ]))
            }
        }
        router.get("/metrics") { _, _ -> Response in
            guard let metricsText else { return errorResponse(.notFound, "metrics are not exported by this server") }
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: metricsText())))
        }

        // Alertmanager's webhook receiver.
        router.post("/webhook") { request, _ -> Response in
            let value: JSONValue
            switch await readJSON(request, service: service) {
            case .json(let v): value = v
            case .refused(let response): return response
            }
            guard case .object = value else { return errorResponse(.badRequest, "expected an Alertmanager webhook payload (a JSON object)") }
            guard let version = value["version"] else { return errorResponse(.badRequest, "version: is required (Alertmanager sends \"4\")") }
            guard version.stringValue == "4" else {
                return errorResponse(.badRequest, "version: must be \"4\" (Alertmanager's webhook payload), not \(version.jsonText)")
            }
            guard value["alerts"]?.arrayValue != nil else { return errorResponse(.badRequest, "alerts: must be a list of alerts") }
            // Stored times are whole milliseconds; decoding with the same instant the store keeps means the
            // dispatcher, decoding the stored payload after a restart, fills missing times exactly the same way.
            let received = WallTime.millisecondInstant()
            let batch: AlertBatch
            do { batch = try AlertInput.decode(value, now: received.timestamp) } catch { return errorResponse(.badRequest, "\(error)") }
            if service.store != nil {
                // Durable: 202 once the notification and its deliveries are committed; 503 (Alertmanager retries) if not.
                do {
                    let deliveries = try await service.accept(batch, payload: value.serialized(), receivedAt: received.seconds)
                    return jsonResponse(
                        .accepted, .object([("status", .string("accepted")), ("alerts", .int(batch.alerts.count)), ("deliveries", .int(deliveries))]))
                } catch {
                    return errorResponse(
                        .serviceUnavailable, "the alerts could not be stored, so they were not accepted: \(error)", headers: [.retryAfter: "5"])
                }
            }
            let results = await service.publish(batch, selection: .all, strategy: .skipUnhealthy)
            return publishResponse(results)
        }

        // The parallel publishing API.
        let api = router.group("/api/v2/publishing")
        for (path, fixed) in [("parallel", nil), ("parallel/all", HealthStrategy.publishToAll), ("parallel/healthy", .skipUnhealthy)]
            as [(String, HealthStrategy?)]
        {
            api.post(RouterPath(path)) { request, _ -> Response in
                await parallel(request, service: service, fixedStrategy: fixed)
            }
        }
        api.get("targets") { _, _ -> Response in
            jsonResponse(.ok, .object([("targets", .array(service.publisher.config.targets.map(redactedJSON)))]))
        }
        api.get("targets/health") { _, _ -> Response in
            jsonResponse(.ok, .object([("targets", .array(service.publisher.healthSnapshot().map(healthJSON)))]))
        }
        api.get("targets/health/{name}") { _, context -> Response in
            let name = try context.parameters.require("name")
            guard let h = service.publisher.healthSnapshot().first(where: { $0.target == name }) else {
                return errorResponse(.notFound, "no target named '\(name)'")
            }
            return jsonResponse(.ok, healthJSON(h))
        }
        api.post("targets/health/{name}/check") { _, context -> Response in
            let name = try context.parameters.require("name")
            guard let probe = await service.publisher.probe(named: name) else { return errorResponse(.notFound, "no target named '\(name)'") }
            var m: [(String, JSONValue)] = [("target", .string(probe.target)), ("reachable", .bool(probe.reachable))]
            if let s = probe.httpStatus { m.append(("http_status", .int(s))) }
            if let k = probe.errorKind { m.append(("error_kind", .string(k))) }
            if let msg = probe.message { m.append(("message", .string(msg))) }
            m.append(("duration_ms", .double((probe.durationSeconds * 1e6).rounded() / 1000)))
            return jsonResponse(.ok, .object(m))
        }
        api.get("stats") { _, _ -> Response in
            guard let store = service.store else { return jsonResponse(.ok, service.stats.json) }
            do {
                return jsonResponse(.ok, service.stats.json(deliveries: try await store.counts()))
            } catch {
                return errorResponse(.serviceUnavailable, "the store is unavailable: \(error)")
            }
        }

        // Dead letters (with a store).
        api.get("dlq") { request, _ -> Response in
            guard let store = service.store else { return errorResponse(.notFound, "dead letters need a store (--store)") }
            let target = request.uri.queryParameters.get("target")
            let limit = request.uri.queryParameters.get("limit").flatMap { Int($0) } ?? 100
            guard (1...10_000).contains(limit) else { return errorResponse(.badRequest, "limit: must be between 1 and 10000") }
            do {
                let letters = try await store.deadLetters(target: target, limit: limit)
                return jsonResponse(.ok, .object([("dead_letters", .array(letters.map(\.json)))]))
            } catch {
                return errorResponse(.serviceUnavailable, "the store is unavailable: \(error)")
            }
        }
        api.post("dlq/replay") { request, _ -> Response in
            await replay(service, id: nil, target: request.uri.queryParameters.get("target"))
        }
        api.post("dlq/{id}/replay") { _, context -> Response in
            guard let id = Int64(try context.parameters.require("id")) else { return errorResponse(.badRequest, "id: must be a number") }
            return await replay(service, id: id, target: nil)
        }
        return router
    }

    enum ReadBody {
        case json(JSONValue)
        case refused(Response)
    }

    /// The body as JSON, or the response that refuses it (413 over the limit, 400 when it is not JSON).
    static func readJSON(_ request: Request, service: FanoutService) async -> ReadBody {
        let limit = service.settings.maxBodyBytes
        do {
            let bytes = try await readBody(request, limit: limit)
            return .json(try JSONValue.parse(bytes))
        } catch BodyProblem.tooLarge {
            return .refused(errorResponse(.contentTooLarge, "the request body exceeds the limit of \(limit) bytes"))
        } catch let e as JSONParseError {
            return .refused(errorResponse(.badRequest, "the body is not valid JSON: \(e)"))
        } catch {
            return .refused(errorResponse(.badRequest, "cannot read the request body: \(error)"))
        }
    }

    /// `POST /api/v2/publishing/parallel[/all|/healthy]`: `{"alerts": [...]}` or `{"alert": {...}}`, optional
    /// `"targets": [names]` and (on `/parallel` only) `"strategy"`.
    static func parallel(_ request: Request, service: FanoutService, fixedStrategy: HealthStrategy?) async -> Response {
        let value: JSONValue
        switch await readJSON(request, service: service) {
        case .json(let v): value = v
        case .refused(let response): return response
        }
        guard case .object(let members) = value else { return errorResponse(.badRequest, "expected a JSON object with 'alerts' or 'alert'") }
        for (k, _) in members where !["alerts", "alert", "targets", "strategy"].contains(k) {
            return errorResponse(.badRequest, "\(k): unknown field (expected alerts or alert, targets, strategy)")
        }
        let alertsValue: JSONValue
        switch (value["alerts"], value["alert"]) {
        case (let a?, nil):
            guard a.arrayValue != nil else { return errorResponse(.badRequest, "alerts: must be a list of alerts") }
            alertsValue = a
        case (nil, let one?): alertsValue = .array([one])
        case (nil, nil): return errorResponse(.badRequest, "alerts: is required (or alert: one alert)")
        default: return errorResponse(.badRequest, "give either alerts or alert, not both")
        }
        var strategy = fixedStrategy ?? .skipUnhealthy
        if let s = value["strategy"] {
            guard fixedStrategy == nil else { return errorResponse(.badRequest, "strategy: is fixed by this endpoint") }
            guard let name = s.stringValue, let parsed = HealthStrategy(rawValue: name) else {
                return errorResponse(.badRequest, "strategy: must be one of \(HealthStrategy.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            strategy = parsed
        }
        var selection = TargetSelection.all
        if let t = value["targets"] {
            guard let list = t.arrayValue, !list.isEmpty, list.allSatisfy({ $0.stringValue != nil }) else {
                return errorResponse(.badRequest, "targets: must be a non-empty list of target names")
            }
            let names = list.compactMap(\.stringValue)
            let config = service.publisher.config
            let unknown = names.filter { config[$0] == nil }
            guard unknown.isEmpty else {
                return errorResponse(
                    .badRequest, "targets: unknown \(unknown.joined(separator: ", ")) (configured: \(config.targets.map(\.name).joined(separator: ", ")))")
            }
            guard Set(names).count == names.count else { return errorResponse(.badRequest, "targets: a name is given twice") }
            selection = .named(names)
        }
        let batch: AlertBatch
        do {
            batch = try AlertInput.decode(alertsValue, now: Timestamp.now())
        } catch {
            return errorResponse(.badRequest, value["alert"] != nil ? "alert: \(error)" : "\(error)")
        }
        return publishResponse(await service.publish(batch, selection: selection, strategy: strategy))
    }

    static func replay(_ service: FanoutService, id: Int64?, target: String?) async -> Response {
        guard let store = service.store else { return errorResponse(.notFound, "dead letters need a store (--store)") }
        do {
            let n = try await store.replay(id: id, target: target, now: WallTime.now(), ttl: service.policy.ttlSeconds)
            if id != nil && n == 0 { return errorResponse(.notFound, "no dead letter with id \(id!)") }
            service.dispatcher?.wake()
            return jsonResponse(.ok, .object([("replayed", .int(n))]))
        } catch {
            return errorResponse(.serviceUnavailable, "the store is unavailable: \(error)")
        }
    }

    /// 200 when every alert reached at least one target, else 502 (so Alertmanager retries); the reports in input order.
    static func publishResponse(_ results: [Result<PublishReport, PublishError>]) -> Response {
        let reached = results.filter(\.reachedAnyTarget).count
        let status: String
        if reached < results.count {
            status = reached == 0 ? "failed" : "some alerts reached no target"
        } else if results.allSatisfy({ (try? $0.get())?.allSucceeded ?? false }) {
            status = "delivered"
        } else {
            status = "partial"
        }
        return jsonResponse(reached == results.count ? .ok : .badGateway) { w in
            w.beginObject()
            w.member("status", status)
            w.member("alerts", int: results.count)
            w.key(literal: "reports")
            w.beginArray()
            for r in results { r.write(to: &w) }
            w.endArray()
            w.endObject()
        }
    }

    /// A target as `GET /targets` shows it: no secret, no Slack URL (it is a credential), no URL query or user info.
    static func redactedJSON(_ t: Target) -> JSONValue {
        var m: [(String, JSONValue)] = [("name", .string(t.name)), ("type", .string(t.type.rawValue)), ("enabled", .bool(t.enabled))]
        m.append(("url", .string(t.type == .slack ? "<redacted>" : redactedURL(t.url))))
        m.append(("has_secret", .bool(t.secret != nil)))
        if let s = t.timeoutSeconds { m.append(("timeout_ms", .double(s * 1000))) }
        if let r = t.effectiveRateLimit { m.append(("rate_limit", .object([("per_second", .double(r.perSecond)), ("burst", .int(r.burst))]))) }
        if let n = t.maxInFlight { m.append(("max_in_flight", .int(n))) }
        if !t.headers.isEmpty { m.append(("headers", .array(t.headers.map { .string($0.0) }))) }
        if let c = t.connection {
            var cm: [(String, JSONValue)] = []
            if let p = c.proxy { cm.append(("proxy", .string(p.isEmpty ? "none" : "<redacted>"))) }
            if let f = c.caFile { cm.append(("ca_file", .string(f))) }
            if let f = c.clientCertificateFile { cm.append(("client_cert", .string(f))) }
            if let v = c.tlsMinimumVersion { cm.append(("tls_min_version", .string(v.rawValue))) }
            m.append(("connection", .object(cm)))
        }
        return .object(m)
    }

    /// `scheme://host[:port]/path` without user info or query (either may carry a token).
    static func redactedURL(_ url: String) -> String {
        var s = Substring(url)
        if let q = s.firstIndex(where: { $0 == "?" || $0 == "#" }) { s = s[..<q] }
        if let sep = s.firstRange(of: "://") {
            let rest = s[sep.upperBound...]
            let authorityEnd = rest.firstIndex(of: "/") ?? rest.endIndex
            if let at = rest[..<authorityEnd].lastIndex(of: "@") {
                return String(s[..<sep.upperBound]) + String(rest[rest.index(after: at)...])
            }
        }
        return String(s)
    }

    static func healthJSON(_ h: TargetHealthSnapshot) -> JSONValue {
        var m: [(String, JSONValue)] = [
            ("target", .string(h.target)), ("type", .string(h.type)), ("enabled", .bool(h.enabled)),
            ("health", .string(h.health.rawValue)), ("breaker", .string(h.breaker)), ("breaker_transitions", .int(h.breakerTransitions)),
            ("deadline_ms", .double((h.deadlineSeconds * 1e6).rounded() / 1000)), ("deadline_learned", .bool(h.deadlineLearned)),
        ]
        if let r = h.successRatio { m.append(("success_ratio", .double((r * 1000).rounded() / 1000))) }
        if let l = h.meanLatencySeconds { m.append(("mean_latency_ms", .double((l * 1e6).rounded() / 1000))) }
        return .object(m)
    }
}
