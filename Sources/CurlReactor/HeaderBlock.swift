// HeaderBlock: a request's header lines as a `curl_slist` built in one allocation.
import CCurl

/// `CURLOPT_HTTPHEADER` takes a `curl_slist` that libcurl only reads and that must outlive the transfer.
/// `curl_slist_append` makes two allocations per line (a node and a copy of the text); a webhook request with
/// five headers and `Expect:` made twelve, and freed them again. Here the nodes and every line's text share one
/// block: one allocation per request, freed with `free(_:)` (never with `curl_slist_free_all`).
enum HeaderBlock {
    /// The list for `headers` (`Name: value`; `Name;` for an empty value, which curl would otherwise drop), plus
    /// `Expect:` when `expectOff` (no 100-continue round trip for bodies). Nil when there is no line at all.
    static func make(_ headers: [HTTPHeader], expectOff: Bool) -> UnsafeMutablePointer<curl_slist>? {
        let lines = headers.count + (expectOff ? 1 : 0)
        guard lines > 0 else { return nil }
        var textBytes = expectOff ? 8 : 0  // "Expect:" and its NUL
        for h in headers {
            let empty = allBytes(of: h.value, { $0 == 0x20 || $0 == 0x09 })
            textBytes += h.name.utf8.count + (empty ? 2 : 3 + h.value.utf8.count)  // ";" NUL, or ": " value NUL
        }
        let nodeBytes = lines * MemoryLayout<curl_slist>.stride
        let block = UnsafeMutableRawPointer.allocate(byteCount: nodeBytes + textBytes, alignment: MemoryLayout<curl_slist>.alignment)
        let nodes = block.bindMemory(to: curl_slist.self, capacity: lines)
        var text = (block + nodeBytes).bindMemory(to: UInt8.self, capacity: textBytes)
        var index = 0

        func put(_ s: String) {
            var s = s
            s.withUTF8 { bytes in
                if let base = bytes.baseAddress { text.update(from: base, count: bytes.count) }
                text += bytes.count
            }
        }
        func put(_ byte: UInt8) {
            text.pointee = byte
            text += 1
        }
        func line(_ body: () -> Void) {
            let start = text
            body()
            put(0)
            let next = index + 1 < lines ? nodes + index + 1 : nil
            (nodes + index).initialize(to: curl_slist(data: UnsafeMutableRawPointer(start).assumingMemoryBound(to: CChar.self), next: next))
            index += 1
        }

        for h in headers {
            line {
                put(h.name)
                if allBytes(of: h.value, { $0 == 0x20 || $0 == 0x09 }) {
                    put(UInt8(ascii: ";"))
                } else {
                    put(UInt8(ascii: ":"))
                    put(UInt8(ascii: " "))
                    put(h.value)
                }
            }
        }
        if expectOff { line { put("Expect:") } }
        assert(index == lines && text == (block + nodeBytes + textBytes).assumingMemoryBound(to: UInt8.self), "header block size")
        return nodes
    }

    /// Frees a list `make` returned (nil: nothing).
    static func free(_ list: UnsafeMutablePointer<curl_slist>?) {
        guard let list else { return }
        UnsafeMutableRawPointer(list).deallocate()
    }
}
