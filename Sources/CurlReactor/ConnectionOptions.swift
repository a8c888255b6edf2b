// ConnectionOptions: how a request reaches its host — proxy, trusted CA, client certificate (mTLS), TLS floor.

/// Per-request connection settings, passed to libcurl as they are. `nil` fields keep libcurl's defaults, which
/// include honouring the `https_proxy`, `http_proxy` (lower case only), `all_proxy` and `no_proxy` environment
/// variables. A reactor checks once, as it starts, whether any of them is set: when none is, requests without a
/// proxy of their own go direct without libcurl looking the variables up again per request.
/// libcurl reuses a connection only for requests whose proxy and TLS settings match, so targets with different
/// client certificates never share a connection.
public struct ConnectionOptions: Sendable, Hashable {
    /// The TLS versions a request can require at least (`CURLOPT_SSLVERSION`).
    public enum TLSVersion: String, Sendable, Hashable, CaseIterable {
        /// TLS 1.2 or newer.
        case tls1_2 = "1.2"
        /// TLS 1.3 only.
        case tls1_3 = "1.3"
    }

    /// `http://[user:password@]host:port` (or `https://`, `socks5h://`, …): `CURLOPT_PROXY`. An empty string
    /// turns proxies off for this request, environment variables included.
    public var proxy: String?
    /// Hosts reached without the proxy, comma-separated (`CURLOPT_NOPROXY`); `*` means all.
    public var noProxy: String?
    /// A PEM file of CA certificates to trust in addition to the system's (`CURLOPT_CAINFO`).
    public var caFile: String?
    /// The client certificate (PEM) for mutual TLS (`CURLOPT_SSLCERT`).
    public var clientCertificateFile: String?
    /// The client certificate's private key (PEM) (`CURLOPT_SSLKEY`).
    public var clientKeyFile: String?
    /// The key's passphrase, if it is encrypted (`CURLOPT_KEYPASSWD`).
    public var clientKeyPassword: String?
    /// The lowest TLS version to accept (`CURLOPT_SSLVERSION`).
    public var tlsMinimumVersion: TLSVersion?

    /// Options; every one defaults to libcurl's own behaviour.
    public init(
        proxy: String? = nil, noProxy: String? = nil, caFile: String? = nil, clientCertificateFile: String? = nil,
        clientKeyFile: String? = nil, clientKeyPassword: String? = nil, tlsMinimumVersion: TLSVersion? = nil
    ) {
        self.proxy = proxy
        self.noProxy = noProxy
        self.caFile = caFile
        self.clientCertificateFile = clientCertificateFile
        self.clientKeyFile = clientKeyFile
        self.clientKeyPassword = clientKeyPassword
        self.tlsMinimumVersion = tlsMinimumVersion
    }

    /// True when every field is nil: libcurl's defaults.
    public var isDefault: Bool { self == ConnectionOptions() }
}
