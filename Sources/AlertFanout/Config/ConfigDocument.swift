// ConfigDocument: a config file's text as a JSON tree (YAML 1.2 core schema or JSON), for sections other modules read.

/// The parsed document of a targets or service config file, the same way the targets loader reads it.
public enum ConfigDocument {
    /// JSON when the text starts with `{` or `[`, YAML otherwise. Throws `TargetsConfigError` naming `file`.
    public static func parse(_ text: String, file: String) throws -> JSONValue {
        do {
            return try TargetsConfigLoader.parseDocument(text)
        } catch let e as JSONParseError {
            throw TargetsConfigError(file: file, problems: [InputProblem("", e.description)])
        } catch {
            throw TargetsConfigError(file: file, problems: [InputProblem("", "not valid YAML: \(error)")])
        }
    }

    /// `5s`, `500ms`, `2m`, `1h` or a bare number of seconds, as the targets file reads durations.
    public static func durationSeconds(_ v: JSONValue) -> Double? { TargetsConfigLoader.durationSeconds(v) }

    /// Replaces `${NAME}` with the environment's value; unset names become problems at `path`.
    public static func expand(_ s: String, path: String, environment: [String: String], problems: inout [InputProblem]) -> String? {
        let (at, field) = path.lastIndex(of: ".").map { (String(path[..<$0]), String(path[path.index(after: $0)...])) } ?? ("", path)
        return TargetsConfigLoader.expand(s, field: field, at: at, environment: environment, problems: &problems)
    }
}

extension TargetsConfigError {
    /// A config error for `file` listing `problems` (for other parts of the same file, such as `server:`).
    public static func problems(file: String, _ problems: [InputProblem]) -> TargetsConfigError {
        TargetsConfigError(file: file, problems: problems)
    }
}
