// StoreLocation: `--store` values — `sqlite:PATH` (the default, `sqlite:fanout-state.db`), `postgres://…`, or `none`.

/// Where the outbox lives.
public enum StoreLocation: Sendable, Hashable, CustomStringConvertible {
    case sqlite(path: String)
    case postgres(url: String)
    /// No outbox: `/webhook` answers when the fan-out has finished (nothing survives a restart).
    case none

    public static let `default` = StoreLocation.sqlite(path: "fanout-state.db")

    /// Parses a `--store` value; nil with a reason when it is not one of the forms.
    public static func parse(_ text: String) -> Result<StoreLocation, StoreError> {
        if text == "none" { return .success(.none) }
        if text.hasPrefix("sqlite:") {
            var path = String(text.dropFirst("sqlite:".count))
            if path.hasPrefix("//") { path = String(path.dropFirst(2)) }
            guard !path.isEmpty else { return .failure(StoreError("sqlite: needs a file path, as in sqlite:fanout-state.db")) }
            return .success(.sqlite(path: path))
        }
        if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") { return .success(.postgres(url: text)) }
        return .failure(StoreError("'\(redacted(text))' is not a store: use sqlite:PATH, postgres://USER:PASSWORD@HOST:PORT/DB or none"))
    }

    /// For logs: the PostgreSQL password is never shown.
    public var description: String {
        switch self {
        case .sqlite(let p): return "sqlite:\(p)"
        case .postgres(let u): return StoreLocation.redacted(u)
        case .none: return "none"
        }
    }

    static func redacted(_ url: String) -> String {
        guard let sep = url.firstRange(of: "://"), let at = url[sep.upperBound...].firstIndex(of: "@") else { return url }
        let userinfo = url[sep.upperBound..<at]
        guard let colon = userinfo.firstIndex(of: ":") else { return url }
        return String(url[..<colon]) + ":<redacted>" + String(url[at...])
    }

    /// Opens (and migrates) the store. Throws `StoreError` with a message that says what failed.
    public func open() async throws -> (any DeliveryStore)? {
        switch self {
        case .none: return nil
        case .sqlite(let path): return try SQLiteStore(path: path)
        case .postgres(let url): return try await PostgresStore.open(url: url)
        }
    }
}
