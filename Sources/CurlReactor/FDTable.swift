// FDTable: the epoll set's interest per file descriptor, as an array indexed by the descriptor (no hashing).

/// Descriptors are small, dense integers, so the epoll set's interest per socket lives in an array indexed by
/// the descriptor: two or three look-ups per request without hashing. Grows to the highest descriptor seen.
///
/// An entry can be *parked*: curl no longer wants the socket (`CURL_POLL_REMOVE` of an idle keep-alive
/// connection), but it stays in the epoll set with its last interest until the end of the reactor's settling
/// round, because the next request usually takes the connection again within that round — then nothing changes
/// in the kernel. Parked entries are neither listed nor counted; `removeParked` deletes them.
struct FDTable {
    /// Per descriptor: `UInt64(events) | present`, plus `parkedBit` while parked; 0 when absent.
    private var slots: [UInt64] = []
    private static let present: UInt64 = 1 << 32
    private static let parkedBit: UInt64 = 1 << 33
    /// Descriptors present and not parked.
    private(set) var count = 0
    /// Descriptors parked since the last `removeParked` (some may have been taken back or removed since).
    private var parked: [Int32] = []

    /// The interest recorded for `fd` (parked or not); setting a value un-parks it, nil removes it.
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
                if slots[i] == 0 || slots[i] & FDTable.parkedBit != 0 { count += 1 }
                slots[i] = UInt64(newValue) | FDTable.present
            } else if i < slots.count, slots[i] != 0 {
                if slots[i] & FDTable.parkedBit == 0 { count -= 1 }
                slots[i] = 0
            }
        }
    }

    /// Whether `fd` is present and parked.
    func isParked(_ fd: Int32) -> Bool {
        let i = Int(fd)
        return i >= 0 && i < slots.count && slots[i] & FDTable.parkedBit != 0
    }

    /// Whether `fd` is present and not parked: curl wants it watched.
    func isWanted(_ fd: Int32) -> Bool {
        let i = Int(fd)
        return i >= 0 && i < slots.count && slots[i] != 0 && slots[i] & FDTable.parkedBit == 0
    }

    /// Parks a present, unparked `fd` (it keeps its interest); false when there is nothing to park.
    mutating func park(_ fd: Int32) -> Bool {
        guard isWanted(fd) else { return false }
        slots[Int(fd)] |= FDTable.parkedBit
        count -= 1
        parked.append(fd)
        return true
    }

    /// Removes every descriptor still parked, handing each to `body` (which takes it out of the epoll set).
    mutating func removeParked(_ body: (Int32) -> Void) {
        guard !parked.isEmpty else { return }
        for fd in parked where isParked(fd) {
            slots[Int(fd)] = 0
            body(fd)
        }
        parked.removeAll(keepingCapacity: true)
    }

    /// The descriptors present and not parked, ascending.
    var keys: [Int32] { slots.indices.filter { slots[$0] != 0 && slots[$0] & FDTable.parkedBit == 0 }.map { Int32($0) } }

    mutating func removeAll() {
        slots.removeAll()
        parked.removeAll()
        count = 0
    }
}
