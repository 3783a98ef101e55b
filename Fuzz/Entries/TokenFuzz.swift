import MeshCACore

/// Join tokens as the daemon reads them from `authorization: Bearer …` and the agent and `meshca issue` from
/// `--token`/`--token-file`: `JoinToken(parsing:)`.
enum TokenFuzz {
    static func run(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        _ = JoinToken.looksLikeToken(text)
        guard let token = try? JoinToken(parsing: text) else { return }
        // A parsed token's text form parses back to the same token (it is what `token create` prints).
        precondition((try? JoinToken(parsing: token.encoded)) == token, "a parsed join token does not read back")
        _ = token.secretSHA256
        _ = token.description
    }
}
