// ServiceMiddleware: request metrics by route pattern, the drain gate and authentication, in that order.
import AlertFanout
import CoreMetrics
import Dispatch
import Hummingbird

/// Counts every request by route pattern (never the raw path), method and status, and times it.
struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let factory: MetricsFactory?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let factory else { return try await next(request, context) }
        let start = DispatchTime.now().uptimeNanoseconds
        let status: Int
        do {
            let response = try await next(request, context)
            status = Int(response.status.code)
            record(factory, context.endpointPath ?? "not_found", request.method.rawValue, status, start)
            return response
        } catch {
            status = (error as? any HTTPResponseError).map { Int($0.status.code) } ?? 500
            record(factory, context.endpointPath ?? "not_found", request.method.rawValue, status, start)
            throw error
        }
    }

    private func record(_ f: MetricsFactory, _ route: String, _ method: String, _ status: Int, _ start: UInt64) {
        Counter(label: FanoutMetricNames.httpRequests, dimensions: [("route", route), ("method", method), ("status", String(status))], factory: f)
            .increment()
        CoreMetrics.Timer(label: FanoutMetricNames.httpDuration, dimensions: [("route", route)], preferredDisplayUnit: .seconds, factory: f)
            .recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - start))
    }
}

/// Paths that answer without credentials and while draining: liveness and readiness (and `/metrics` unless
/// `protect_metrics`).
func isOpenPath(_ path: String) -> Bool { path == "/-/healthy" || path == "/-/ready" }

/// While the service drains, new API requests get 503 (Alertmanager retries them on another replica or later).
struct DrainGateMiddleware<Context: RequestContext>: RouterMiddleware {
    let service: FanoutService

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        if service.isDraining && !isOpenPath(path) && path != "/metrics" {
            return errorResponse(.serviceUnavailable, "the service is shutting down", headers: [.retryAfter: "5"])
        }
        return try await next(request, context)
    }
}

/// Bearer token and/or Basic credentials, compared in constant time, read from the current settings (a reload
/// rotates them). Liveness and readiness stay open; `/metrics` is open unless `protect_metrics`.
struct AuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let service: FanoutService

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let s = service.settings
        let path = request.uri.path
        guard s.requiresAuth, !isOpenPath(path), !(path == "/metrics" && !s.protectMetrics) else {
            return try await next(request, context)
        }
        let given = Array((request.headers[.authorization] ?? "").utf8)
        var ok = false
        if let token = s.bearerToken {
            ok = ok || constantTimeEqual(given, Array("Bearer \(token.reveal())".utf8))
        }
        if let basic = s.basicAuth {
            let expected = "Basic " + base64(Array("\(basic.username):\(basic.password.reveal())".utf8))
            ok = ok || constantTimeEqual(given, Array(expected.utf8))
        }
        guard ok else {
            let challenge = s.bearerToken != nil ? "Bearer realm=\"alertfanout\"" : "Basic realm=\"alertfanout\""
            return errorResponse(.unauthorized, given.isEmpty ? "credentials required" : "invalid credentials", headers: [.wwwAuthenticate: challenge])
        }
        return try await next(request, context)
    }
}
