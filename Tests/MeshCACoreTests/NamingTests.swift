import MeshCACore
import Testing

@Suite("SPIFFE IDs, trust domains and Kubernetes names")
struct NamingTests {
    @Test("Valid trust domains are accepted", arguments: ["cluster.local", "example.org", "td", "a-b.c9", "10.0.0.1"])
    func validTrustDomains(name: String) throws {
        #expect(try TrustDomain(name).name == name)
    }

    @Test(
        "Invalid trust domains are refused with the rule they break",
        arguments: [
            ("", "empty"), ("Cluster.local", "uppercase"), ("cluster_local", "\"_\" at position 8"),
            ("cluster..local", "empty label"), ("-cluster.local", "starts or ends with '-'"),
            ("spiffe://cluster.local", "without the spiffe:// scheme"), (String(repeating: "a", count: 256), "255"),
        ]
    )
    func invalidTrustDomains(name: String, expected: String) {
        let error = issuanceError { _ = try TrustDomain(name) }
        #expect(error?.code == .invalidTrustDomain)
        #expect(error?.message.contains(expected) == true, "\(error?.message ?? "no error")")
    }

    @Test("The Istio identity is spiffe://<td>/ns/<ns>/sa/<sa> and parses back")
    func workloadIdentity() throws {
        let id = try SPIFFEID(trustDomain: TrustDomain("cluster.local"), namespace: "prod", serviceAccount: "web.api")
        #expect(id.uri == "spiffe://cluster.local/ns/prod/sa/web.api")
        let parsed = try SPIFFEID(parsing: id.uri)
        #expect(parsed == id)
        #expect(parsed.workload?.namespace == "prod")
        #expect(parsed.workload?.serviceAccount == "web.api")
        #expect(try SPIFFEID(parsing: "spiffe://cluster.local/other/path").workload == nil)
    }

    @Test(
        "Malformed SPIFFE IDs are refused",
        arguments: [
            "http://cluster.local/ns/a/sa/b", "spiffe://cluster.local/ns/a/sa/b/", "spiffe://cluster.local//a",
            "spiffe://cluster.local/ns/../sa/b", "spiffe://cluster.local:8080/ns/a", "spiffe://user@cluster.local/a",
            "spiffe://cluster.local/ns/a%20b", "spiffe:///ns/a/sa/b",
        ]
    )
    func malformedIDs(text: String) {
        #expect(issuanceError { _ = try SPIFFEID(parsing: text) }?.code == .invalidSPIFFEID)
    }

    @Test(
        "Bad namespaces and service accounts name the wrong character",
        arguments: [
            ("Default", KubernetesName.Kind.namespace, "uppercase \"D\" at position 1"),
            ("my_ns", .namespace, "character \"_\" at position 3"),
            ("web.api", .namespace, "character \".\" at position 4"),
            ("-web", .namespace, "must start and end with a letter or digit"),
            ("was-", .serviceAccount, "must start and end with a letter or digit"),
            ("", .serviceAccount, "empty"),
            ("a..b", .serviceAccount, "empty part between dots"),
            (String(repeating: "a", count: 64), .namespace, "64 characters"),
        ]
    )
    func badNames(value: String, kind: KubernetesName.Kind, expected: String) {
        let error = issuanceError { try KubernetesName.validate(value, as: kind) }
        #expect(error?.code == .invalidName)
        #expect(error?.message.contains(expected) == true, "\(error?.message ?? "no error")")
        #expect(error?.message.contains(kind.rawValue) == true)
    }

    @Test("Good Kubernetes names are accepted", arguments: ["default", "istio-system", "a", "web-1"])
    func goodNames(value: String) throws {
        try KubernetesName.validate(value, as: .namespace)
        try KubernetesName.validate(value, as: .serviceAccount)
    }
}
