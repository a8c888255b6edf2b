// HTTPResponse and TransferTimings: what the reactor hands back for a completed transfer.

/// Where the time of one request went. All values are measured on the monotonic clock.
///
/// `queued` is the wait in the reactor's admission queue (submission → admission). The others are libcurl's own
/// figures, counted from admission: `connect` (TCP connect done; zero on a reused connection), `firstByte`
/// (first response byte) and `total`.
public struct TransferTimings: Sendable, Hashable {
    /// The wait for admission (submission → admission).
    public var queued: Duration
    /// Until the TCP connection was made; zero on a reused connection.
    public var connect: Duration
    /// Until the first response byte.
    public var firstByte: Duration
    /// Admission to completion.
    public var total: Duration

    /// Timings; every figure defaults to zero.
    public init(queued: Duration = .zero, connect: Duration = .zero, firstByte: Duration = .zero, total: Duration = .zero) {
        self.queued = queued
        self.connect = connect
        self.firstByte = firstByte
        self.total = total
    }

    /// Submission to completion: `queued + total`.
    public var sinceSubmission: Duration { queued + total }
}

/// A response: any HTTP status counts as a response (deciding what a 503 means is the caller's business).
public struct HTTPResponse: Sendable {
    /// The HTTP status code.
    public var status: Int
    /// The captured headers (see `HTTPRequest.captureHeaders`), names lowercased, in arrival order.
    public var headers: [HTTPHeader]
    /// The response body (at most the request's or the reactor's cap); empty when the request did not keep it.
    public var body: [UInt8]
    /// Bytes of response body received: `body.count`, or the count alone for a request that did not keep it.
    public var bodyBytes: Int
    /// Where the time went.
    public var timings: TransferTimings
    /// True when this request opened a new connection instead of reusing a pooled one.
    public var newConnection: Bool

    /// A response (the reactor makes these; tests and fakes may too).
    public init(
        status: Int, headers: [HTTPHeader] = [], body: [UInt8] = [], bodyBytes: Int? = nil, timings: TransferTimings = .init(), newConnection: Bool = false
    ) {
        self.status = status
        self.headers = headers
        self.body = body
        self.bodyBytes = bodyBytes ?? body.count
        self.timings = timings
        self.newConnection = newConnection
    }

    /// The last captured value of a header, by case-insensitive name.
    public func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.last(where: { $0.name == lower })?.value
    }

    /// The body decoded as UTF-8 (invalid sequences repaired).
    public var bodyText: String { String(decoding: body, as: UTF8.self) }
}
