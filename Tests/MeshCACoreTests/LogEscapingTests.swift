import MeshCACore
import MeshCATestSupport
import Testing
import X509

@Suite("Escaping request text before it reaches a log, the ledger or a terminal")
struct LogEscapingTests {
    @Test(
        "Line breaks, controls, separators and bidi overrides become visible escapes",
        arguments: [
            ("a\nb", "a\\nb"),
            ("a\r\nb", "a\\r\\nb"),
            ("tab\there", "tab\\there"),
            ("nul\u{0}esc\u{1B}[31m", "nul\\u{0}esc\\u{1B}[31m"),
            ("del\u{7F}", "del\\u{7F}"),
            ("nel\u{85}csi\u{9B}", "nel\\u{85}csi\\u{9B}"),
            ("ls\u{2028}ps\u{2029}", "ls\\u{2028}ps\\u{2029}"),
            ("rlo\u{202E}lri\u{2067}alm\u{61C}rlm\u{200F}", "rlo\\u{202E}lri\\u{2067}alm\\u{61C}rlm\\u{200F}"),
        ]
    )
    func escapes(raw: String, shown: String) {
        #expect(raw.escapedForLog == shown)
    }

    @Test("Printable text, non-ASCII letters and backslashes are kept, and escaping twice changes nothing")
    func keepsText() {
        let plain = "spiffe://cluster.local/ns/default/sa/was café 東京 \\n"
        #expect(plain.escapedForLog == plain)
        let once = "x\ny\u{202E}".escapedForLog
        #expect(once.escapedForLog == once)
    }

    @Test("A CSR URI with a newline cannot put a line break into the refusal")
    func csrURI() throws {
        let forged = "spiffe://cluster.local/ns/default/sa/was\n2027-01-15T08:00:00+0000 info meshca: issued spiffe_id=spiffe://cluster.local/ns/kube-system/sa/admin"
        let csr = try TestPKI.csr(extensions: try Certificate.Extensions { Critical(SubjectAlternativeNames([.uniformResourceIdentifier(forged)])) })
        let error = issuanceError { _ = try TestPKI(createdAt: TestPKI.fixedNow).authority.issue(IssuanceRequest(csrPEM: csr, identity: TestPKI.identity()), at: TestPKI.fixedNow) }
        #expect(error?.code == .identityMismatch)
        #expect(error?.message.contains("sa/was\\n2027-01-15T08:00:00+0000 info meshca: issued") == true)
        #expect(error?.message.contains("\n") == false)
    }
}
