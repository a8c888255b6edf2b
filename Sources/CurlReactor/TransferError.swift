// TransferError: the typed failure of one request, with libcurl's own message when curl produced it.

/// Why a request did not produce an HTTP response.
public struct TransferError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, as a stable name (`rawValue`) for logs and metrics.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// The request itself is malformed: bad URL, unsupported scheme, CR/LF in a header, body too big.
        case invalidRequest = "invalid_request"
        /// The peer refused the connection.
        case refused
        /// The host name did not resolve.
        case dns
        /// Connection set-up exceeded `connectTimeout`.
        case connectTimeout = "connect_timeout"
        /// The request deadline (or the overall deadline) passed.
        case deadline
        /// The connection broke: reset, closed early, nothing received.
        case reset
        /// TLS handshake or certificate failure.
        case tls
        /// The response body exceeded the configured cap.
        case bodyTooLarge = "body_too_large"
        /// The caller cancelled the request.
        case cancelled
        /// The reactor shut down before the request completed.
        case shutdown
        /// The reactor's admission queue was full (`ReactorConfiguration.maxQueuedRequests`): nothing was sent.
        case overloaded
        /// Anything else; `curlCode` and `message` say what.
        case other
    }

    /// What went wrong.
    public var kind: Kind
    /// Details in words, libcurl's own message where curl produced one.
    public var message: String
    /// libcurl's `CURLcode`, when the failure came from curl.
    public var curlCode: Int?
    /// Timings up to the failure (admission wait included).
    public var timings: TransferTimings

    /// An error of `kind`.
    public init(kind: Kind, message: String, curlCode: Int? = nil, timings: TransferTimings = .init()) {
        self.kind = kind
        self.message = message
        self.curlCode = curlCode
        self.timings = timings
    }

    /// `kind: message (curl N)`.
    public var description: String {
        if let curlCode { return "\(kind.rawValue): \(message) (curl \(curlCode))" }
        return "\(kind.rawValue): \(message)"
    }
}
