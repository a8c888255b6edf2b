// HTTPRequest: what a caller submits to the reactor — method, URL, headers, body and deadlines.

/// One header line. Names are sent as given; the reactor rejects names or values holding CR, LF or NUL. An empty
/// (or blank) value is sent as an empty header, `Name:` — it does not remove one of libcurl's own headers.
public struct HTTPHeader: Sendable, Hashable, CustomStringConvertible {
    /// The header name, sent as given.
    public var name: String
    /// The value; leading and trailing blanks are libcurl's to trim.
    public var value: String

    /// A header line `name: value`.
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }

    /// `Name: value`, as sent.
    public var description: String { "\(name): \(value)" }
}

/// The HTTP version a request asks libcurl for.
public enum HTTPVersion: Sendable, Hashable {
    /// HTTP/1.1 on every connection (the default: cheapest for keep-alive load).
    case http1_1
    /// HTTP/2 over cleartext with prior knowledge (`h2c`), HTTP/2 over TLS.
    case http2
}

/// A request for the reactor.
///
/// Deadlines:
/// - `timeout` is the per-request deadline. It starts when the reactor **admits** the request to libcurl
///   (after any wait in the reactor's per-host admission queue), so a request never spends its deadline
///   waiting for a connection slot.
/// - `overallTimeout` counts from **submission** and includes the admission wait. A request still queued when
///   it expires completes with `.deadline` without being sent; once admitted, libcurl is given
///   `min(timeout, what is left of overallTimeout)`.
/// - `connectTimeout` bounds connection set-up (TCP and TLS) inside the request deadline.
public struct HTTPRequest: Sendable {
    /// `GET`, `POST`, `HEAD`, … (a token without spaces).
    public var method: String
    /// An absolute `http://` or `https://` URL (`CurlReactor.urlProblem` says why one is refused).
    public var url: String
    /// Request headers, in order.
    public var headers: [HTTPHeader]
    /// The request body (sent with `Content-Length`, without `Expect: 100-continue`), or nil for none.
    public var body: [UInt8]?
    /// The per-request deadline from admission (nil: the reactor's `defaultTimeout`).
    public var timeout: Duration?
    /// The deadline from submission, admission wait included (nil: none).
    public var overallTimeout: Duration?
    /// The connection set-up limit (nil: the reactor's `defaultConnectTimeout`).
    public var connectTimeout: Duration?
    /// Response headers to keep, matched case-insensitively; captured names are returned lowercased.
    public var captureHeaders: [String]
    /// Response bodies larger than this fail with `.bodyTooLarge`. `nil` uses the reactor's configured cap.
    /// Applies to kept bodies only (see `keepResponseBody`).
    public var maxResponseBodyBytes: Int?
    /// False: the response body is counted (`HTTPResponse.bodyBytes`) but not kept, whatever its size — what a
    /// load generator wants (no buffer per response). True (the default): kept in `HTTPResponse.body`.
    public var keepResponseBody: Bool
    /// False: a 2xx response keeps neither its body (still counted in `HTTPResponse.bodyBytes`) nor captured
    /// headers — for callers that read only what a failure says (a webhook's 2xx says all there is): no buffer
    /// and no header lookup per delivered request. True (the default): 2xx responses are kept like the others.
    public var keepSuccessDetails: Bool
    /// Open a new connection for this request and close it afterwards (`CURLOPT_FORBID_REUSE`).
    public var forbidReuse: Bool
    /// The HTTP version to ask for.
    public var httpVersion: HTTPVersion
    /// Proxy and TLS settings (`nil`: libcurl's defaults, environment proxies honoured).
    public var connection: ConnectionOptions?

    /// A request; only `url` is required.
    public init(
        method: String = "GET",
        url: String,
        headers: [HTTPHeader] = [],
        body: [UInt8]? = nil,
        timeout: Duration? = nil,
        overallTimeout: Duration? = nil,
        connectTimeout: Duration? = nil,
        captureHeaders: [String] = ["retry-after"],
        maxResponseBodyBytes: Int? = nil,
        keepResponseBody: Bool = true,
        keepSuccessDetails: Bool = true,
        forbidReuse: Bool = false,
        httpVersion: HTTPVersion = .http1_1,
        connection: ConnectionOptions? = nil
    ) {
        self.connection = connection
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.overallTimeout = overallTimeout
        self.connectTimeout = connectTimeout
        self.captureHeaders = captureHeaders
        self.maxResponseBodyBytes = maxResponseBodyBytes
        self.keepResponseBody = keepResponseBody
        self.keepSuccessDetails = keepSuccessDetails
        self.forbidReuse = forbidReuse
        self.httpVersion = httpVersion
    }
}
