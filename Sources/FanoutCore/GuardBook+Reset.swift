// GuardBook+Reset: forgetting what was learned about one target (its configuration changed or it was removed).

extension GuardBook {
    /// Starts `target` afresh: closed breaker, unknown health, configured deadline, full retry budget. Rate
    /// limits are kept: they belong to the credential, not to the target's name.
    public mutating func reset(_ target: String) {
        let before = self[target]
        self[target] = TargetGuard(config)
        let phase = before.breaker.state.phase
        if phase != .closed { events.append(.breaker(target: target, from: phase, to: .closed)) }
        if before.reportedHealth != .unknown { events.append(.health(target: target, from: before.reportedHealth, to: .unknown)) }
    }

    /// Forgets an earlier `410 Gone` from `target` (an operator reloaded the configuration: deliveries resume).
    public mutating func clearGone(_ target: String) {
        guard peek(target, { $0.endpointGone }) else { return }
        update(target) { $0.endpointGone = false }
    }
}
