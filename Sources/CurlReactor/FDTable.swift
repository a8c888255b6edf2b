// FDTable: a map from file descriptor to a small value, as an array indexed by the descriptor (no hashing).

/// Descriptors are small, dense integers, so the epoll set's interest per socket lives in an array indexed by
/// the descriptor: two or three look-ups per request without hashing. Grows to the highest descriptor seen.
struct FDTable {
    /// `UInt64(value) | present` per descriptor; 0 when absent.
    private var slots: [UInt64] = []
    private static let present: UInt64 = 1 << 32
    /// Descriptors present.
    private(set) var count = 0

    subscript(fd: Int32) -> UInt32? {
        get {
            let i = Int(fd)
            guard i >= 0, i < slots.count, slots[i] != 0 else { return nil }
            return UInt32(truncatingIfNeeded: slots[i])
        }
        set {
            let i = Int(fd)
            guard i >= 0 else { return }
            if let newValue {
                if i >= slots.count { slots.append(contentsOf: repeatElement(0, count: max(i + 1, 2 * slots.count, 64) - slots.count)) }
                if slots[i] == 0 { count += 1 }
                slots[i] = UInt64(newValue) | FDTable.present
            } else if i < slots.count, slots[i] != 0 {
                slots[i] = 0
                count -= 1
            }
        }
    }

    /// Removes `fd`, returning its value if it was present.
    mutating func removeValue(forKey fd: Int32) -> UInt32? {
        let old = self[fd]
        if old != nil { self[fd] = nil }
        return old
    }

    /// The descriptors present, ascending.
    var keys: [Int32] { slots.indices.filter { slots[$0] != 0 }.map { Int32($0) } }

    mutating func removeAll() {
        slots.removeAll()
        count = 0
    }
}
