import Foundation
import GRPCCore
import MeshCACore
import MeshCATransport
import Synchronization
import Testing

/// `CAAddresses`: the order endpoints are asked in, what moves the client on (no answer) and what does not (an
/// answer, a refusal included), and the error naming every endpoint. The requests here are closures; the tests
/// with real daemons are `AgentFailoverTests` and the CLI's `IssueFailoverTests`.
@Suite("CA addresses and failover")
struct CAAddressesTests {
    static let addresses = try! CAAddresses(["127.0.0.1:7001", "127.0.0.2:7002", "[::1]:7003"])

    /// Runs `firstAnswer` with `answer` deciding each endpoint's outcome; returns the endpoints asked, in order, and
    /// the failovers reported.
    static func ask(
        preferring preferred: CAEndpoint? = nil, _ answer: @escaping @Sendable (CAEndpoint) throws -> String
    ) async -> (asked: [String], failovers: [String], result: Result<(answer: String, endpoint: CAEndpoint), any Error>)
    {
        let asked = Mutex<[String]>([])
        var failovers: [String] = []
        let result: Result<(answer: String, endpoint: CAEndpoint), any Error>
        do {
            result = .success(
                try await addresses.firstAnswer(
                    preferring: preferred, onFailover: { failovers.append("\($0.endpoint) -> \($1)") }
                ) {
                    endpoint in
                    asked.withLock { $0.append(endpoint.description) }
                    return try answer(endpoint)
                })
        } catch {
            result = .failure(error)
        }
        return (asked.withLock { $0 }, failovers, result)
    }

    @Test("Addresses are parsed once each, in order; a bad one or none is refused with an example")
    func parsing() throws {
        let parsed = try CAAddresses(["ca-1.example:15012", "10.0.0.2:15012", "ca-1.example:15012", "[fd00::3]:15012"])
        #expect(parsed.configured.map(\.description) == ["ca-1.example:15012", "10.0.0.2:15012", "[fd00::3]:15012"])
        #expect(throws: CAClientError.self) { try CAAddresses([]) }
        do {
            _ = try CAAddresses(["10.0.0.1:15012", "ca-2.example"])
            Issue.record("an address without a port was accepted")
        } catch {
            #expect(error.description.contains("\"ca-2.example\" is not HOST:PORT: it has no \":PORT\""), "\(error)")
        }
        #expect(throws: CAClientError.self) { try CAAddresses(["10.0.0.1:0"]) }
    }

    @Test("No answer moves on to the next endpoint; the answer and the endpoint that gave it come back")
    func movesOnWithoutAnAnswer() async throws {
        let (asked, failovers, result) = await Self.ask { endpoint in
            guard endpoint.address.port == 7003 else {
                throw RPCError(code: .unavailable, message: "the ledger is unreachable")
            }
            return "chain"
        }
        #expect(asked == ["127.0.0.1:7001", "127.0.0.2:7002", "[::1]:7003"])
        #expect(failovers == ["127.0.0.1:7001 -> 127.0.0.2:7002", "127.0.0.2:7002 -> [::1]:7003"])
        let (answer, endpoint) = try result.get()
        #expect(answer == "chain" && endpoint.description == "[::1]:7003")
    }

    @Test("The endpoint that answered last is asked first, then the others in order, wrapping round")
    func startsAtThePreferredEndpoint() async throws {
        let preferred = CAEndpoint(address: HostPort(host: "127.0.0.2", port: 7002))
        let (asked, _, result) = await Self.ask(preferring: preferred) { endpoint in
            guard endpoint.address.port == 7001 else { throw RPCError(code: .deadlineExceeded, message: "timed out") }
            return "chain"
        }
        #expect(asked == ["127.0.0.2:7002", "[::1]:7003", "127.0.0.1:7001"])
        #expect(try result.get().endpoint.address.port == 7001)
    }

    @Test(
        "A refusal is an answer: it is thrown at once and the next endpoint is not asked",
        arguments: [
            RPCError.Code.permissionDenied, .invalidArgument, .unauthenticated, .resourceExhausted, .internalError,
        ])
    func refusalIsNotRetried(code: RPCError.Code) async throws {
        let (asked, failovers, result) = await Self.ask { _ in throw RPCError(code: code, message: "refused") }
        #expect(asked == ["127.0.0.1:7001"])
        #expect(failovers.isEmpty)
        #expect(throws: RPCError.self) { try result.get() }
    }

    @Test("When no endpoint answers, the error names each one with what happened there, and what to check")
    func everyEndpointNamed() async throws {
        let (asked, _, result) = await Self.ask { endpoint in
            if endpoint.address.port == 7002 { throw RPCError(code: .deadlineExceeded, message: "timed out") }
            throw RPCError(code: .unavailable, message: "the ledger at db:5432 is unreachable")
        }
        #expect(asked.count == 3)
        let error = try #require(result.failure as? CAUnreachableError)
        #expect(error.attempts.map(\.endpoint.description) == asked)
        #expect(
            error.description == """
                Cannot reach a CA at any of its 3 addresses:
                  - 127.0.0.1:7001: the CA answered UNAVAILABLE: the ledger at db:5432 is unreachable
                  - 127.0.0.2:7002: no answer before the deadline: the host may be down, or a firewall drops the packets
                  - [::1]:7003: the CA answered UNAVAILABLE: the ledger at db:5432 is unreachable
                """)
        let advice = error.advice(trust: "--root-cert")
        #expect(advice.contains("Is `meshca serve` running at each address?"), "\(advice)")
        #expect(advice.contains("its log says why"), "\(advice)")
    }

    @Test(
        "A host name is one endpoint per address it resolves to, checked against the name; one that does not resolve is a failed attempt"
    )
    func hostNames() async throws {
        let (endpoints, unresolved) = try await CAAddresses(["localhost:7001", "10.0.0.9:7002"]).endpoints()
        let local = endpoints.filter { $0.address.host == "localhost" }
        #expect(
            local.contains(CAEndpoint(address: HostPort(host: "localhost", port: 7001), resolvedIP: "127.0.0.1")),
            "\(endpoints)")
        #expect(
            endpoints.last == CAEndpoint(address: HostPort(host: "10.0.0.9", port: 7002)),
            "an IP address is used as given")
        #expect(unresolved.isEmpty)
        #expect(local.first?.description.hasPrefix("localhost:7001 (") == true)

        // RFC 6761: .invalid never resolves.
        let (none, failed) = try await CAAddresses(["ca.invalid:7001"]).endpoints()
        #expect(none.isEmpty)
        #expect(failed.map(\.endpoint.description) == ["ca.invalid:7001"])
        #expect(failed.first?.failure.contains("could not be resolved") == true, "\(failed)")
        #expect(failed.first?.kind == .unresolved)
    }
}

extension Result {
    /// The error of a failure, else nil.
    fileprivate var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
