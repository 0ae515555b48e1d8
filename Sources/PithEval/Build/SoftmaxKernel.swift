/// Softmax computed in the memory of its input when this node is the input's last reader (the
/// evaluator then hands the value over; see `PreparedKernel`): on PP-OCRv4 rec, batch 8, the last
/// node's 8.5 MB of scores are not copied first. Otherwise as `Operators.softmax`.
struct SoftmaxKernel: PreparedKernel {
    func run(_ inputs: inout [Value?], _ operators: Operators) throws -> [Value] {
        guard inputs.count == 1, inputs[0] != nil else { return [try operators.softmax(inputs)] }
        return [try operators.softmax(inputs[0].take()!)]
    }
}
