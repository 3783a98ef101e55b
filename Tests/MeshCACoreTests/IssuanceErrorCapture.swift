import MeshCACore

/// Runs `body` and returns the ``IssuanceError`` it throws (or fails the test when it throws nothing).
func issuanceError(_ body: () throws -> Void) -> IssuanceError? {
    do {
        try body()
        return nil
    } catch let error as IssuanceError {
        return error
    } catch {
        return IssuanceError(.signingFailed, "unexpected error type: \(error)")
    }
}
