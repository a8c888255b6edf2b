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
        for i in headers.indices {  // in place: no copy (two retains) per header
            textBytes += headers[i].name.utf8.count + (isBlank(headers[i].value) ? 2 : 3 + headers[i].value.utf8.count)  // ";" NUL, or ": " value NUL
        }
        let nodeBytes = lines * MemoryLayout<curl_slist>.stride
        let block = UnsafeMutableRawPointer.allocate(byteCount: nodeBytes + textBytes, alignment: MemoryLayout<curl_slist>.alignment)
        let nodes = block.bindMemory(to: curl_slist.self, capacity: lines)
        let textStart = (block + nodeBytes).bindMemory(to: UInt8.self, capacity: textBytes)
        var text = textStart
        var index = 0
        // Straight-line code, no nested functions: captured locals would be boxed on the heap.
        for i in headers.indices {
            let line = text
            text = copy(headers[i].name, to: text)
            if isBlank(headers[i].value) {
                text[0] = UInt8(ascii: ";")
                text += 1
            } else {
                text[0] = UInt8(ascii: ":")
                text[1] = UInt8(ascii: " ")
                text = copy(headers[i].value, to: text + 2)
            }
            append(line: line, end: &text, to: nodes, at: &index)
        }
        if expectOff {
            let line = text
            text = copy("Expect:", to: text)
            append(line: line, end: &text, to: nodes, at: &index)
        }
        assert(index == lines && text == textStart + textBytes, "header block size")
        return nodes
    }

    /// A value of only spaces and tabs: curl would drop `Name:` with it, so it goes as `Name;`.
    @inline(__always)
    private static func isBlank(_ value: String) -> Bool { allBytes(of: value, { $0 == 0x20 || $0 == 0x09 }) }

    /// Ends the line that starts at `line` with its NUL at `end`, and links it as node `index` after the previous.
    @inline(__always)
    private static func append(
        line: UnsafeMutablePointer<UInt8>, end: inout UnsafeMutablePointer<UInt8>, to nodes: UnsafeMutablePointer<curl_slist>, at index: inout Int
    ) {
        end[0] = 0
        end += 1
        (nodes + index).initialize(to: curl_slist(data: UnsafeMutableRawPointer(line).assumingMemoryBound(to: CChar.self), next: nil))
        if index > 0 { nodes[index - 1].next = nodes + index }
        index += 1
    }

    /// Copies the UTF-8 bytes of `s` to `p`; returns the position after them.
    @inline(__always)
    private static func copy(_ s: String, to p: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        if let end = s.utf8.withContiguousStorageIfAvailable({ bytes -> UnsafeMutablePointer<UInt8> in
            if let base = bytes.baseAddress { p.update(from: base, count: bytes.count) }
            return p + bytes.count
        }) {
            return end
        }
        var q = p
        for b in s.utf8 {
            q.pointee = b
            q += 1
        }
        return q
    }

    /// Frees a list `make` returned (nil: nothing).
    static func free(_ list: UnsafeMutablePointer<curl_slist>?) {
        guard let list else { return }
        UnsafeMutableRawPointer(list).deallocate()
    }
}
