import Crypto
import Foundation

/// Signs the ledger's checkpoints with the *ledger key*: an Ed25519 key used for nothing else.
///
/// It is deliberately not the CA key. The CA key may move to an HSM, be replaced by a plug-in intermediate or
/// rotate with the root, and none of that may invalidate the ledger's history; and a leaked ledger key lets an
/// attacker forge checkpoints, never certificates. `FileCheckpointSigner` keeps it in `ledger-key.pem`;
/// `InMemoryCheckpointSigner` is for tests and for callers that manage the key themselves.
public protocol CheckpointSigner: Sendable {
    /// The public half, which checks the signatures and names the key in each checkpoint.
    var publicKey: CheckpointPublicKey { get }

    /// The Ed25519 signature (64 bytes) over `message`.
    func sign(_ message: [UInt8]) throws -> [UInt8]
}

