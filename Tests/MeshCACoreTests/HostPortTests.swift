import MeshCACore
import Testing

@Suite("HOST:PORT addresses, parsed once for every command")
struct HostPortTests {
    @Test("Names, IPv4 and bracketed IPv6 parse; the printed form round-trips")
    func valid() throws {
        #expect(try HostPort.parse("localhost:15012") == HostPort(host: "localhost", port: 15012))
        #expect(try HostPort.parse(" 10.0.0.7:0 ") == HostPort(host: "10.0.0.7", port: 0))
        let v6 = try HostPort.parse("[::1]:8443")
        #expect(v6 == HostPort(host: "::1", port: 8443))
        #expect(v6.description == "[::1]:8443")
        #expect(try HostPort.parse(v6.description) == v6)
    }

    @Test("Each malformed address says which rule it broke", arguments: [
        ("127.0.0.1", "no \":PORT\""), ("::1:8443", "must be in brackets"), ("[::1:8443", "no matching"),
        ("[::1]8443", "must follow"), (":8443", "host is empty"), ("host:http", "is not a number"),
        ("host:70000", "outside 0-65535"),
    ])
    func invalid(text: String, why: String) {
        #expect {
            try HostPort.parse(text)
        } throws: { error in
            (error as? HostPort.Problem)?.why.contains(why) == true
        }
    }

    @Test("Only dotted quads are IPv4 literals")
    func ipv4() {
        #expect(HostPort.ipv4Bytes("127.0.0.1") == [127, 0, 0, 1])
        #expect(HostPort.ipv4Bytes("256.0.0.1") == nil)
        #expect(HostPort.ipv4Bytes("1.2.3") == nil)
        #expect(HostPort.ipv4Bytes("meshca.local") == nil)
        #expect(HostPort(host: "10.1.2.3", port: 1).isIPv4Literal)
    }
}
