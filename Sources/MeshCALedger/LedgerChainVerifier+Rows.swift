/// Pass 2 of verification: the rows the events cover.
extension LedgerChainVerifier {
    /// Each row-backed event's row must exist and hash to the event's `content_sha256`.
    func rowProblems() throws -> [LedgerChainProblem] {
        var problems: [LedgerChainProblem] = []
        for kind in LedgerChainEvent.Kind.rowBacked {
            guard let source = LedgerChainColumns.source(for: kind) else { continue }
            let columns = source.columns.map { "t.\($0.name)" }.joined(separator: ", ")
            let match = source.key.type == .integer ? "CAST(e.subject AS INTEGER)" : "e.subject"
            let statement = try connection.prepare(
                "SELECT e.seq, e.subject, e.content_sha256, t.rowid IS NOT NULL, \(columns) FROM ledger_events e "
                    + "LEFT JOIN \(source.table) t ON t.\(source.key.name) = \(match) WHERE e.kind = ? ORDER BY e.seq",
                [.text(kind.rawValue)], operation: operation)
            var found = 0
            while found < Self.problemLimit, try statement.step() {
                let (seq, subject) = (statement.integer(0), statement.text(1))
                let place = LedgerChainProblem.place(seq, kind.rawValue, subject)
                let problem: LedgerChainProblem
                if statement.integer(3) == 0 {
                    problem = LedgerChainProblem(
                        kind: .deleted, sequence: seq, eventKind: kind.rawValue, subject: subject,
                        message: "\(place) was deleted: its row in \(source.table) (\(source.key.name) \(subject)) "
                            + "is missing.")
                } else {
                    let fields = LedgerChainColumns.read(source.columns, from: statement, startingAt: 4)
                    guard LedgerChainField.sha256(LedgerChainField.encode(fields)) != statement.blob(2) else {
                        continue
                    }
                    problem = LedgerChainProblem(
                        kind: .altered, sequence: seq, eventKind: kind.rawValue, subject: subject,
                        message: "\(place) was altered: its row in \(source.table) no longer matches the content "
                            + "hash recorded when it was written, so a column was edited afterwards.")
                }
                problems.append(problem)
                found += 1
            }
        }
        return problems
    }

    /// For each state kind, the latest event per subject must equal what the row says now; and a row whose state
    /// columns are set must have such an event.
    func stateProblems(_ latest: [StateKey: (seq: Int64, payload: [UInt8])]) throws -> [LedgerChainProblem] {
        var problems: [LedgerChainProblem] = []
        for (key, event) in latest.sorted(by: { $0.value.seq < $1.value.seq }) {
            guard problems.count < Self.problemLimit else { break }
            let kind = LedgerChainEvent.Kind(key.kind)
            // A missing row is reported by the row-backed pass, as the deletion of its creation event.
            guard let source = LedgerChainColumns.source(for: kind),
                let current = try LedgerChainColumns.currentEvent(
                    kind: kind, subject: key.subject, on: connection, operation: operation),
                current.content != event.payload
            else { continue }
            let names = ["subject"] + source.columns.map(\.name)
            let recorded = LedgerChainField.decode(event.payload).map { describe($0, names) } ?? "an unreadable payload"
            problems.append(
                LedgerChainProblem(
                    kind: .altered, sequence: event.seq, eventKind: key.kind, subject: key.subject,
                    message: "\(LedgerChainProblem.place(event.seq, key.kind, key.subject)) was altered: the row in "
                        + "\(source.table) now says \(describe(current.fields, names)), but the event recorded "
                        + "\(recorded)."))
        }
        var unrecorded: [(kind: LedgerChainEvent.Kind, creation: LedgerChainEvent.Kind, condition: String)] = [
            (.revocation, .issuance, "revoked_at IS NOT NULL OR revocation_reason IS NOT NULL"),
            (.tokenUse, .tokenCreation, "uses <> 0 OR last_used_at IS NOT NULL"),
            (.tokenRevocation, .tokenCreation, "revoked_at IS NOT NULL"),
        ]
        // The pin column exists from schema version 5 on (a test may verify a ledger opened at an older one).
        if try connection.prepare(
            "SELECT 1 FROM pragma_table_info('join_tokens') WHERE name = 'pinned_root_sha256'", operation: operation
        ).step() {
            unrecorded.append((.tokenPin, .tokenCreation, "pinned_root_sha256 IS NOT NULL"))
        }
        for (kind, creation, condition) in unrecorded {
            guard let source = LedgerChainColumns.source(for: kind) else { continue }
            let key = source.key.name
            let statement = try connection.prepare(
                "SELECT t.\(key), (SELECT min(seq) FROM ledger_events WHERE kind = ? AND subject = t.\(key)) "
                    + "FROM \(source.table) t WHERE (\(condition)) AND t.\(key) NOT IN "
                    + "(SELECT subject FROM ledger_events WHERE kind = ?) ORDER BY t.rowid LIMIT ?",
                [.text(creation.rawValue), .text(kind.rawValue), .integer(Int64(Self.problemLimit))],
                operation: operation)
            while try statement.step() {
                let (subject, seq) = (statement.text(0), statement.optionalInteger(1))
                problems.append(
                    LedgerChainProblem(
                        kind: .altered, sequence: seq, eventKind: creation.rawValue, subject: subject,
                        message: "\(LedgerChainProblem.place(seq, creation.rawValue, subject)) was altered: its row in "
                            + "\(source.table) has \(source.columns.map(\.name).joined(separator: "/")) set, but no "
                            + "\(kind) event was ever recorded for it."))
            }
        }
        return problems
    }

    /// Rows that no event covers were written outside meshca. They have no position in the chain.
    func uncoveredRows() throws -> [LedgerChainProblem] {
        var problems: [LedgerChainProblem] = []
        for kind in LedgerChainEvent.Kind.rowBacked {
            guard let source = LedgerChainColumns.source(for: kind) else { continue }
            let key = "CAST(\(source.key.name) AS TEXT)"
            let statement = try connection.prepare(
                "SELECT \(key) FROM \(source.table) WHERE \(key) NOT IN "
                    + "(SELECT subject FROM ledger_events WHERE kind = ?) ORDER BY rowid LIMIT ?",
                [.text(kind.rawValue), .integer(Int64(Self.problemLimit))], operation: operation)
            while try statement.step() {
                let subject = statement.text(0)
                problems.append(
                    LedgerChainProblem(
                        kind: .inserted, sequence: nil, eventKind: kind.rawValue, subject: subject,
                        message:
                            "\(kind) \(subject) was inserted: its row in \(source.table) has no event in the chain, "
                            + "so it was written outside meshca."))
            }
        }
        return problems
    }

    /// "revoked_at=1750000040, revocation_reason=NULL", leaving out the subject.
    private func describe(_ fields: [LedgerChainField], _ names: [String]) -> String {
        zip(names, fields).dropFirst().map { "\($0)=\($1)" }.joined(separator: ", ")
    }
}
