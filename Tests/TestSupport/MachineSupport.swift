// MachineSupport: reading FanoutMachine's actions in tests — the decisions apart from the guard events.
import FanoutCore

extension Array where Element == FanoutMachine.Action {
    /// The actions other than `.observe`: what the machine decided (send, wait, resume, complete).
    public var decisions: [FanoutMachine.Action] {
        filter { if case .observe = $0 { return false } else { return true } }
    }

    /// The guard events among the actions, in order.
    public var guardEvents: [GuardEvent] {
        compactMap { if case .observe(let e) = $0 { return e } else { return nil } }
    }
}
