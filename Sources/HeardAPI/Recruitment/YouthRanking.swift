import Foundation

/// The youth panel's ranking of a vacancy's candidates: each scored candidate's mean over all
/// of their scores (every member, every question), highest first; candidates with equal means
/// share a rank and the next rank skips (1, 1, 3). Means are compared exactly (as fractions),
/// so two candidates are tied only when their means are equal. Pure.
enum YouthRanking {
    /// One candidate's scores, summed.
    struct Total: Sendable {
        var candidate: String
        var sum: Int
        var count: Int
    }

    struct Entry: Encodable, Sendable, Equatable {
        var candidate: String
        var mean: Double
        var rank: Int
    }

    static func rank(_ totals: [Total]) -> [Entry] {
        let scored = totals.filter { $0.count > 0 }
        /// Whether `a`'s mean is above `b`'s: sum_a / count_a > sum_b / count_b, without division.
        func above(_ a: Total, _ b: Total) -> Bool { a.sum * b.count > b.sum * a.count }
        return scored.map { total in
            Entry(candidate: total.candidate, mean: (Double(total.sum) / Double(total.count) * 1000).rounded() / 1000,
                  rank: 1 + scored.filter { above($0, total) }.count)
        }.sorted { ($0.rank, $0.candidate) < ($1.rank, $1.candidate) }
    }

    /// Whether the youth panel's choice was appointed: nil before a decision; true when the
    /// appointed candidate ranks first (ties included); false otherwise, and when nobody was.
    static func choiceAppointed(_ ranking: [Entry], decided: Bool, appointed: String?) -> Bool? {
        guard decided else { return nil }
        guard let appointed else { return false }
        return ranking.contains { $0.candidate == appointed && $0.rank == 1 }
    }
}
