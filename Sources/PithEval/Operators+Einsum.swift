import Foundation
import PithIR
import PithLinearAlgebra

/// Einsum, in general: explicit (`->`) or implicit output, repeated labels within an operand
/// (diagonals), `...` broadcast axes, any number of operands.
///
/// 1. Parse: every letter is a label; `...` stands for the operand's remaining axes, aligned from
///    the right across operands, which broadcast (size 1 against n). The implicit output is the
///    broadcast axes followed by the letters that appear once, in ASCII order (as numpy).
/// 2. Per operand: take the diagonal of repeated labels, and sum out labels no other operand and
///    not the output has.
/// 3. Contract the operands left to right, each pair as a batched matrix product (BLAS for
///    floats): labels both have and still needed are the batch, labels both have and no longer
///    needed are summed, the rest are the rows and columns.
/// 4. Transpose the result into the output's label order.
extension Operators {
    /// One operand during the contraction: its value and the label of each axis.
    struct EinsumTerm {
        var value: Value
        var labels: [Int]
    }

    /// Labels: letters A–Z are 0–25, a–z 26–51; broadcast axes 52 on (aligned from the right).
    static let firstBroadcastLabel = 52

    func einsum(_ inputs: [Value?]) throws -> Value {
        let operands = inputs.compactMap { $0 }
        guard !operands.isEmpty, operands.count == inputs.count else { throw EvalError.invalid("Einsum needs at least one input, none missing") }
        guard operands.allSatisfy({ !$0.isString }), operands.allSatisfy({ $0.isFloat == operands[0].isFloat }) else {
            throw EvalError.invalid("Einsum inputs must be all floating-point or all integers, not \(operands.map(\.dtype.rawValue))")
        }
        let equation = string("equation", "").filter { !$0.isWhitespace }
        guard !equation.isEmpty else { throw EvalError.invalid("the equation attribute is required") }
        let sides = equation.components(separatedBy: "->")
        guard sides.count <= 2 else { throw EvalError.invalid("equation `\(equation)` has more than one `->`") }
        let terms = sides[0].components(separatedBy: ",")
        guard terms.count == operands.count else { throw EvalError.invalid("equation `\(equation)` names \(terms.count) operands; \(operands.count) given") }

        // 1. Labels of every operand.
        func parse(_ term: String) throws -> (letters: [Int], ellipsisAt: Int?) {
            var letters: [Int] = [], ellipsisAt: Int?
            var rest = Substring(term)
            while let c = rest.first {
                if rest.hasPrefix("...") {
                    guard ellipsisAt == nil else { throw EvalError.invalid("`\(term)` in equation `\(equation)` has two `...`") }
                    ellipsisAt = letters.count
                    rest = rest.dropFirst(3)
                    continue
                }
                guard let ascii = c.asciiValue, c.isLetter else { throw EvalError.invalid("`\(c)` in equation `\(equation)` is not a letter") }
                letters.append(ascii <= 90 ? Int(ascii) - 65 : Int(ascii) - 97 + 26)
                rest = rest.dropFirst()
            }
            return (letters, ellipsisAt)
        }
        let parsed = try terms.map(parse)
        var broadcastRank = 0
        for (index, (term, x)) in zip(parsed, operands).enumerated() {
            guard term.ellipsisAt != nil ? x.rank >= term.letters.count : x.rank == term.letters.count else {
                throw EvalError.invalid("input \(index) of shape \(x.shape) does not fit subscripts `\(terms[index])` of equation `\(equation)`")
            }
            broadcastRank = Swift.max(broadcastRank, x.rank - term.letters.count)
        }
        let broadcastLabels = (0..<broadcastRank).map { Self.firstBroadcastLabel + $0 }
        var sizes: [Int: Int] = [:]
        var operandTerms: [EinsumTerm] = []
        for (term, x) in zip(parsed, operands) {
            var labels = term.letters
            if let at = term.ellipsisAt { labels.insert(contentsOf: broadcastLabels.suffix(x.rank - term.letters.count), at: at) }
            for (label, size) in zip(labels, x.shape) {
                if let known = sizes[label], known != size {
                    // Broadcast axes stretch from 1; letters must agree.
                    guard label >= Self.firstBroadcastLabel, known == 1 || size == 1 else {
                        throw EvalError.invalid("equation `\(equation)`: an axis is \(known) in one place and \(size) in another")
                    }
                    sizes[label] = Swift.max(known, size)
                } else if sizes[label] == nil {
                    sizes[label] = size
                }
            }
            operandTerms.append(EinsumTerm(value: x, labels: labels))
        }
        let output: [Int]
        if sides.count == 2 {
            let (letters, ellipsisAt) = try parse(sides[1])
            var labels = letters
            if let at = ellipsisAt { labels.insert(contentsOf: broadcastLabels, at: at) }
            guard Set(labels).count == labels.count else { throw EvalError.invalid("equation `\(equation)` repeats an output label") }
            for label in labels where sizes[label] == nil { throw EvalError.invalid("equation `\(equation)`: an output label appears in no input") }
            output = labels
        } else {
            var counts: [Int: Int] = [:]
            for term in parsed { for label in term.letters { counts[label, default: 0] += 1 } }
            output = broadcastLabels + counts.keys.filter { counts[$0] == 1 }.sorted()
        }
        try checkSize(output.map { sizes[$0]! }, op: "Einsum")

        // 2. Diagonals, labels only one operand has, and broadcast axes stretched.
        func uses(_ label: Int, besides index: Int) -> Bool {
            output.contains(label) || operandTerms.indices.contains { $0 != index && operandTerms[$0].labels.contains(label) }
        }
        for t in operandTerms.indices {
            var term = try diagonal(operandTerms[t])
            let alone = term.labels.indices.filter { !uses(term.labels[$0], besides: t) }
            if !alone.isEmpty {
                term.value = try reduced(term.value, axes: alone, .sum, keepDimensions: false)
                term.labels = term.labels.indices.filter { !alone.contains($0) }.map { term.labels[$0] }
            }
            let full = term.labels.map { sizes[$0]! }
            if full != term.value.shape {
                try checkSize(full, op: "Einsum")
                let s = strides(term.value.shape)
                let steps = term.labels.indices.map { term.value.shape[$0] == full[$0] ? s[$0] : 0 }
                term.value = pick(term.value, stridedOffsets(full, strides: steps), shape: full)
            }
            operandTerms[t] = term
        }

        // 3. Pairwise contraction.
        var result = operandTerms[0]
        for t in 1..<operandTerms.count {
            let later = Set(operandTerms[(t + 1)...].flatMap(\.labels)).union(output)
            result = try contract(result, operandTerms[t], keep: later)
        }
        // 4. Output order.
        if result.labels != output {
            let perm = output.map { label in result.labels.firstIndex(of: label)! }
            result.value = try transposed(result.value, perm)
        }
        let value = result.value.reshaped(output.map { sizes[$0]! })
        return value.isFloat ? roundedValue(value.floats, shape: value.shape, dtype: operands[0].dtype) : value
    }

    /// The term with each repeated label's axes replaced by their diagonal (one axis, at the
    /// label's first place).
    func diagonal(_ term: EinsumTerm) throws -> EinsumTerm {
        guard Set(term.labels).count != term.labels.count else { return term }
        let s = strides(term.value.shape)
        var labels: [Int] = [], shape: [Int] = [], steps: [Int] = []
        for (axis, label) in term.labels.enumerated() {
            if let j = labels.firstIndex(of: label) {
                guard shape[j] == term.value.shape[axis] else {
                    throw EvalError.invalid("Einsum: a repeated label spans axes of sizes \(shape[j]) and \(term.value.shape[axis])")
                }
                steps[j] += s[axis]
            } else {
                labels.append(label)
                shape.append(term.value.shape[axis])
                steps.append(s[axis])
            }
        }
        return EinsumTerm(value: pick(term.value, stridedOffsets(shape, strides: steps), shape: shape), labels: labels)
    }

    /// `a` · `b` summed over the labels both have that `keep` does not hold; labels both have that
    /// it holds are batch axes. Result labels: batch, then `a`'s own, then `b`'s own.
    func contract(_ a: EinsumTerm, _ b: EinsumTerm, keep: Set<Int>) throws -> EinsumTerm {
        let shared = a.labels.filter { b.labels.contains($0) }
        let batch = shared.filter { keep.contains($0) }, summed = shared.filter { !keep.contains($0) }
        let aOwn = a.labels.filter { !b.labels.contains($0) }, bOwn = b.labels.filter { !a.labels.contains($0) }
        func size(_ term: EinsumTerm, _ labels: [Int]) -> Int { labels.reduce(1) { $0 * term.value.shape[term.labels.firstIndex(of: $1)!] } }
        let batches = size(a, batch), m = size(a, aOwn), k = size(a, summed), n = size(b, bOwn)
        let shape = (batch + aOwn).map { a.value.shape[a.labels.firstIndex(of: $0)!] } + bOwn.map { b.value.shape[b.labels.firstIndex(of: $0)!] }
        try checkSize(shape, op: "Einsum")
        func arranged(_ term: EinsumTerm, _ order: [Int]) throws -> Value {
            let perm = order.map { term.labels.firstIndex(of: $0)! }
            return perm == Array(perm.indices) ? term.value : try transposed(term.value, perm)
        }
        let left = try arranged(a, batch + aOwn + summed), right = try arranged(b, batch + summed + bOwn)
        let labels = batch + aOwn + bOwn
        if left.isFloat {
            var out = [Float](repeating: 0, count: batches * m * n)
            if out.count > 0, k > 0 {
                left.floats.withUnsafeBufferPointer { pa in
                    right.floats.withUnsafeBufferPointer { pb in
                        out.withUnsafeMutableBufferPointer { pc in
                            for t in 0..<batches {
                                LinearAlgebra.gemm(
                                    transposeA: false, transposeB: false, m: m, n: n, k: k, pa.baseAddress! + t * m * k, lda: k,
                                    pb.baseAddress! + t * k * n, ldb: n, pc.baseAddress! + t * m * n, ldc: n)
                            }
                        }
                    }
                }
            }
            return EinsumTerm(value: Value(floats: out, shape: shape, dtype: left.dtype), labels: labels)
        }
        var out = [Int64](repeating: 0, count: batches * m * n)
        let x = left.ints, y = right.ints
        for t in 0..<batches {
            for i in 0..<m {
                for p in 0..<k {
                    let v = x[(t * m + i) * k + p]
                    if v == 0 { continue }
                    for j in 0..<n { out[(t * m + i) * n + j] &+= v &* y[(t * k + p) * n + j] }
                }
            }
        }
        return EinsumTerm(value: Value(ints: out.map { wrap($0, to: left.dtype) }, shape: shape, dtype: left.dtype), labels: labels)
    }
}
