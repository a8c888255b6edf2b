// ReactorPartsTests: the reactor's small value types and helpers — the epoll interest table with parking, the
// token byte table, the one-block header list — checked as plain values.
import CCurl
import XCTest

@testable import CurlReactor

final class ReactorPartsTests: XCTestCase {
    /// The epoll set's per-descriptor interest table: present/absent, overwrite, removal, growth, count and keys.
    func testFDTableIsAMapByDescriptor() {
        var t = FDTable()
        XCTAssertNil(t[3])
        XCTAssertNil(t[-1])
        t[3] = 0
        t[200] = 5
        t[3] = 1
        t[-1] = 7
        XCTAssertEqual(t[3], 1)
        XCTAssertEqual(t[200], 5)
        XCTAssertNil(t[-1], "a negative descriptor is never stored")
        XCTAssertEqual(t.count, 2)
        XCTAssertEqual(t.keys, [3, 200])
        t[3] = nil
        XCTAssertNil(t[3])
        t[10_000] = nil
        XCTAssertNil(t[10_000], "removing an absent descriptor beyond the table is harmless")
        XCTAssertEqual(t.count, 1)
        t[200] = nil
        XCTAssertEqual(t.count, 0)
        XCTAssertEqual(t.keys, [])
        t[4] = 0
        XCTAssertEqual(t[4], 0, "a zero interest is present, not absent")
        // Parking: kept with its interest, not counted or listed, removed by removeParked unless taken back.
        t[5] = 1
        t[6] = 1
        XCTAssertTrue(t.park(5))
        XCTAssertTrue(t.park(6))
        XCTAssertFalse(t.park(6), "already parked")
        XCTAssertFalse(t.park(7), "nothing to park")
        XCTAssertEqual(t.count, 1)
        XCTAssertEqual(t.keys, [4])
        XCTAssertEqual(t[5], 1)
        XCTAssertTrue(t.isParked(5) && !t.isWanted(5))
        t[6] = 4  // taken back
        XCTAssertTrue(t.isWanted(6))
        var removed: [Int32] = []
        t.removeParked { removed.append($0) }
        XCTAssertEqual(removed, [5])
        XCTAssertNil(t[5])
        XCTAssertEqual(t.keys, [4, 6])
        XCTAssertEqual(t.count, 2)
        t.removeParked { removed.append($0) }
        XCTAssertEqual(removed, [5], "nothing parked any more")
        t.removeAll()
        XCTAssertNil(t[4])
        XCTAssertEqual(t.count, 0)
    }

    /// The token table is RFC 9110's tchar, byte for byte.
    func testTokenBytesAreRFC9110Tchar() {
        let tchar = Set(Array("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8))
        for c in 0...255 {
            XCTAssertEqual(isTokenByte(UInt8(c)), tchar.contains(UInt8(c)), "byte \(c)")
        }
        XCTAssertTrue(allBytes(of: "X-Trace", isTokenByte))
        XCTAssertFalse(allBytes(of: "X Trace", isTokenByte))
        XCTAssertFalse(allBytes(of: "Nämé", isTokenByte))
    }

    /// The one-block header list reads as curl_slist_append would have built it.
    func testHeaderBlockIsACurlSlist() {
        XCTAssertNil(HeaderBlock.make([], expectOff: false))
        let headers = [HTTPHeader("Content-Type", "application/json"), HTTPHeader("X-Empty", ""), HTTPHeader("X-Blank", " \t"), HTTPHeader("X-Ü", "wert ✓")]
        for expectOff in [false, true] {
            let list = HeaderBlock.make(headers, expectOff: expectOff)
            defer { HeaderBlock.free(list) }
            var lines: [String] = []
            var node = list
            while let n = node {
                lines.append(String(cString: n.pointee.data))
                node = n.pointee.next
            }
            XCTAssertEqual(lines, ["Content-Type: application/json", "X-Empty;", "X-Blank;", "X-Ü: wert ✓"] + (expectOff ? ["Expect:"] : []))
        }
        let only = HeaderBlock.make([], expectOff: true)
        defer { HeaderBlock.free(only) }
        XCTAssertEqual(only.map { String(cString: $0.pointee.data) }, "Expect:")
        XCTAssertNil(only?.pointee.next)
    }
}
