// FailureKind: why an attempt failed, typed, with what each kind means for retries and for the target's record.

/// Why one attempt at a target failed. The raw values are the `error_kind` strings of reports, logs and metrics.
///
/// | kind | retried (if safe to repeat) | proves the request was not processed | counts against the target |
/// |---|---|---|---|
/// | `timeout`, `reset` | yes | no | yes |
/// | `refused`, `dns`, `connect_timeout`, `overloaded` | yes | yes | yes (`overloaded`: no, it is local) |
/// | `http_status` | when the vendor's reading is retryable | on 429 | yes |
/// | `endpoint_gone` | no (the target is skipped from then on) | — | yes |
/// | `tls`, `body_too_large`, `invalid_request`, `other` | no | no | yes |
/// | `format`, `missing_state`, `missing_secret` | no | — (nothing was sent) | no |
/// | `cancelled` | no | — | no |
public enum FailureKind: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// The request could not be built from the alert (a bad template, a field the vendor requires is missing).
    case format
    /// A follow-up needs state that is not there (a Rootly resolve without the id of its create).
    case missingState = "missing_state"
    /// The target has no usable credential (routing key, API key, signing secret).
    case missingSecret = "missing_secret"
    /// The endpoint answered with a status its vendor reads as a failure.
    case httpStatus = "http_status"
    /// The endpoint answered 410 Gone (Standard Webhooks): send it nothing more.
    case endpointGone = "endpoint_gone"
    /// The attempt's deadline passed.
    case timeout
    /// The publish was cancelled (or the reactor shut down) while the attempt was waiting or in flight.
    case cancelled
    /// The peer refused the connection.
    case refused
    /// The host name did not resolve.
    case dns
    /// Connection set-up exceeded its timeout.
    case connectTimeout = "connect_timeout"
    /// The connection broke: reset, closed early, nothing received.
    case reset
    /// TLS handshake or certificate failure.
    case tls
    /// The response was larger than the cap.
    case bodyTooLarge = "body_too_large"
    /// The request was rejected before it was sent (a malformed URL or header).
    case invalidRequest = "invalid_request"
    /// The transport's admission queue was full: nothing was sent.
    case overloaded
    /// Anything else; the message says what.
    case other

    /// Decided on this side before anything reached the target (or the caller gave up): says nothing about the
    /// target, so it must not open its breaker or mark it unhealthy.
    public var isLocal: Bool {
        switch self {
        case .format, .missingState, .missingSecret, .overloaded, .cancelled: return true
        default: return false
        }
    }

    /// A transport failure (no usable answer) that may not recur: worth another attempt when that is safe.
    public var isRetryableTransport: Bool {
        switch self {
        case .refused, .reset, .dns, .timeout, .connectTimeout, .overloaded: return true
        default: return false
        }
    }

    /// The failure proves the request was not processed, so even a request that is not idempotent may be sent
    /// again (together with HTTP 429, see ``RetryPolicy/provesNotProcessed(_:status:)``).
    public var provesNotProcessed: Bool {
        switch self {
        case .refused, .dns, .connectTimeout, .overloaded: return true
        default: return false
        }
    }

    /// The raw value, as reports print it.
    public var description: String { rawValue }
}
