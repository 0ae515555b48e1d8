import Foundation
import PithIR
import PithLinearAlgebra

/// LSTM, GRU and RNN (opsets 7–22): every direction, initial states, `sequence_lens`, peepholes,
/// `input_forget`, `linear_before_reset`, the activations the spec lists with their alpha and beta,
/// `clip`, `layout` 0 and 1, and every optional output.
///
/// Per direction, the input projections of all time steps are one GEMM (X·Wᵀ, [seq·batch, gates·hidden]);
/// each step adds H·Rᵀ (one GEMM) and applies the gate equations. The products are the only part a
/// layer's weights decide (`RecurrentProducts`): float here, 8-bit in com.microsoft's
/// DynamicQuantizeLSTM (Operators+MicrosoftContrib.swift), which runs the same recurrence. With `sequence_lens`, batch entry b
/// runs its first L_b steps (a reverse direction from step L_b − 1 down to 0); Y is zero past L_b and
/// Y_h (Y_c) holds the state after its last step (zero when L_b is 0), as onnxruntime computes it
/// (onnx's reference evaluator ignores `sequence_lens`).
extension Operators {
    /// The kind of cell, by operator name.
    enum RecurrentCell {
        case rnn, gru, lstm

        /// Gates per direction: RNN 1 (i), GRU 3 (z, r, h), LSTM 4 (i, o, f, c).
        var gates: Int {
            switch self {
            case .rnn: return 1
            case .gru: return 3
            case .lstm: return 4
            }
        }

        /// Activations per direction and their defaults: RNN f = Tanh; GRU f, g = Sigmoid, Tanh;
        /// LSTM f, g, h = Sigmoid, Tanh, Tanh.
        var defaultActivations: [String] {
            switch self {
            case .rnn: return ["Tanh"]
            case .gru: return ["Sigmoid", "Tanh"]
            case .lstm: return ["Sigmoid", "Tanh", "Tanh"]
            }
        }
    }

    /// A gate activation with its alpha and beta.
    struct Activation {
        enum Function: String, CaseIterable {
            case relu, tanh, sigmoid, affine, leakyrelu, thresholdedrelu, scaledtanh, hardsigmoid, elu, softsign, softplus
        }

        let function: Function
        let alpha: Float
        let beta: Float

        /// How a function uses alpha or beta.
        enum Parameter {
            case unused
            /// Taken, with this default when not given (the ONNX operator of the same name's default).
            case defaulted(Float)
            /// Taken, with no default: no ONNX operator defines Affine or ScaledTanh any more, so the
            /// values must be given (onnxruntime takes 0).
            case required
        }

        static func parameters(_ f: Function) -> (alpha: Parameter, beta: Parameter) {
            switch f {
            case .relu, .tanh, .sigmoid, .softsign, .softplus: return (.unused, .unused)
            case .affine, .scaledtanh: return (.required, .required)
            case .leakyrelu: return (.defaulted(0.01), .unused)
            // ThresholdedRelu's default alpha is 1 (onnxruntime takes 0 here).
            case .thresholdedrelu: return (.defaulted(1), .unused)
            case .hardsigmoid: return (.defaulted(0.2), .defaulted(0.5))
            case .elu: return (.defaulted(1), .unused)
            }
        }

        /// The function at x: Sigmoid and Tanh as onnxruntime computes them (`OnnxruntimeMath`).
        func callAsFunction(_ x: Float) -> Float {
            switch function {
            case .relu: return max(x, 0)
            case .tanh: return OnnxruntimeMath.tanh(x)
            case .sigmoid: return OnnxruntimeMath.logistic(x)
            case .affine: return alpha * x + beta
            case .leakyrelu: return x >= 0 ? x : alpha * x
            case .thresholdedrelu: return x > alpha ? x : 0
            case .scaledtanh: return alpha * tanh(beta * x)
            case .hardsigmoid: return max(0, min(1, alpha * x + beta))
            case .elu: return x >= 0 ? x : alpha * (exp(x) - 1)
            case .softsign: return x / (1 + abs(x))
            case .softplus: return x > 20 ? x : log1p(exp(x))
            }
        }
    }

    /// The activations of every direction, `perDirection` each: the `activations` attribute (one
    /// set for both directions of a bidirectional layer when only one is given) or the defaults,
    /// alpha and beta taken in order from `activation_alpha` / `activation_beta` by the functions
    /// that use them.
    func activations(_ cell: RecurrentCell, directions: Int) throws -> [[Activation]] {
        let perDirection = cell.defaultActivations.count
        var names = cell.defaultActivations
        if case .strings(let given)? = node.attribute("activations"), !given.isEmpty {
            names = given.map { String(decoding: $0, as: UTF8.self) }
        }
        if names.count == perDirection, directions == 2 { names += names }
        guard names.count == perDirection * directions else {
            throw EvalError.invalid(
                "activations \(names) must list \(perDirection) functions per direction (\(directions) direction\(directions == 1 ? "" : "s"))")
        }
        let alphas = floats("activation_alpha") ?? [], betas = floats("activation_beta") ?? []
        var nextAlpha = 0, nextBeta = 0
        let all = try names.map { name -> Activation in
            guard let f = Activation.Function(rawValue: name.lowercased()) else {
                throw EvalError.unsupported("activation `\(name)` (the spec lists \(Activation.Function.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            let (alphaUse, betaUse) = Activation.parameters(f)
            func take(_ use: Activation.Parameter, _ values: [Float], _ next: inout Int, _ what: String) throws -> Float {
                switch use {
                case .unused: return 0
                case .defaulted(let fallback):
                    defer { next += 1 }
                    return next < values.count ? values[next] : fallback
                case .required:
                    guard next < values.count else {
                        throw EvalError.unsupported("activation `\(name)` without its \(what) (no ONNX operator defines a default)")
                    }
                    defer { next += 1 }
                    return values[next]
                }
            }
            let alpha = try take(alphaUse, alphas, &nextAlpha, "activation_alpha")
            let beta = try take(betaUse, betas, &nextBeta, "activation_beta")
            return Activation(function: f, alpha: alpha, beta: beta)
        }
        return (0..<directions).map { Array(all[$0 * perDirection..<($0 + 1) * perDirection]) }
    }

    /// A recurrent layer as its node gives it, apart from its weights: the input, the sizes and
    /// direction, the optional inputs B, sequence_lens, initial_h, initial_c and P, and the gate
    /// options. LSTM, GRU and RNN (float weights) and DynamicQuantizeLSTM (8-bit weights) read it
    /// the same way (`recurrentLayer`) and run the same recurrence (`recurrence`).
    struct RecurrentLayer {
        let cell: RecurrentCell
        /// X as [seq_length, batch_size, input_size] (transposed from layout 1).
        let x: [Float]
        /// X's type, which the outputs take.
        let dtype: DType
        let layout: Int
        let steps: Int, batch: Int, inputSize: Int, hidden: Int
        let direction: String
        let directions: Int
        /// [directions, 2·gates·hidden]: Wb then Rb per direction.
        let bias: [Float]?
        /// Steps per batch entry (`sequence_lens`, or all of them).
        let lengths: [Int]
        /// Initial states in [directions, batch, hidden] order.
        let initialH: [Float]?, initialC: [Float]?
        /// LSTM's peepholes, [directions, 3·hidden] (i, o, f).
        let peepholes: [Float]?
        let functions: [[Activation]]
        let clip: Float?
        let inputForget: Bool, linearBeforeReset: Bool
        /// Whether the node has its output Y. onnxruntime reads each step's previous hidden state
        /// from Y when it has one, where a batch entry past its length is zero, and otherwise from
        /// Y_h, where it keeps its last state: a quantizing product sees the difference in its range.
        let writesSequence: Bool

        var gates: Int { cell.gates }
    }

    /// The products of a recurrent layer with its weights: the only part in which LSTM (float W
    /// and R) and DynamicQuantizeLSTM (8-bit W and R, activations quantized as they come) differ.
    protocol RecurrentProducts {
        /// X·Wᵀ of direction `direction` for the first `rows` rows of `x` ([rows, input_size]):
        /// [rows, gates·hidden].
        func inputProducts(_ x: [Float], rows: Int, direction: Int) throws -> [Float]

        /// H·Rᵀ of direction `direction` for the gate columns `gates` (all of them, or GRU's h̃
        /// block) of one step: `h` is [batch, hidden], `product` receives [batch, gates.count·hidden].
        /// `counted` marks the rows of `h` that onnxruntime's matrix holds (the others are zero
        /// there): a quantizing product takes its range from them alone.
        func hiddenProducts(_ h: [Float], counted: [Bool], direction: Int, gates: Range<Int>, into product: inout [Float]) throws
    }

    /// The float products of LSTM, GRU and RNN: W [directions, gates·hidden, input_size] and
    /// R [directions, gates·hidden, hidden], through BLAS.
    struct FloatRecurrentProducts: RecurrentProducts {
        let w: [Float], r: [Float]
        let inputSize: Int, hidden: Int, gates: Int

        func inputProducts(_ x: [Float], rows: Int, direction d: Int) throws -> [Float] {
            let g = gates * hidden
            var product = [Float](repeating: 0, count: rows * g)
            guard rows > 0, inputSize > 0 else { return product }
            x.withUnsafeBufferPointer { px in
                w.withUnsafeBufferPointer { pw in
                    product.withUnsafeMutableBufferPointer { pp in
                        LinearAlgebra.gemm(
                            transposeA: false, transposeB: true, m: rows, n: g, k: inputSize,
                            px.baseAddress!, lda: inputSize, pw.baseAddress! + d * g * inputSize, ldb: inputSize, pp.baseAddress!, ldc: g)
                    }
                }
            }
            return product
        }

        func hiddenProducts(_ h: [Float], counted: [Bool], direction d: Int, gates block: Range<Int>, into product: inout [Float]) throws {
            let batch = h.count / hidden, n = block.count * hidden
            guard batch > 0, n > 0 else { return }
            r.withUnsafeBufferPointer { pr in
                h.withUnsafeBufferPointer { ph in
                    product.withUnsafeMutableBufferPointer { pq in
                        LinearAlgebra.gemm(
                            transposeA: false, transposeB: true, m: batch, n: n, k: hidden,
                            ph.baseAddress!, lda: hidden, pr.baseAddress! + (d * gates + block.lowerBound) * hidden * hidden, ldb: hidden,
                            pq.baseAddress!, ldc: n)
                    }
                }
            }
        }
    }

    /// LSTM, GRU or RNN: [Y, Y_h] (and Y_c for LSTM).
    func recurrent(_ inputs: [Value?]) throws -> [Value] {
        let cell: RecurrentCell = node.opType == "LSTM" ? .lstm : node.opType == "GRU" ? .gru : .rnn
        let x = try floatInput(inputs, 0)
        let w = try floatInput(inputs, 1), r = try floatInput(inputs, 2)
        guard x.rank == 3, w.rank == 3, r.rank == 3 else { throw EvalError.invalid("X \(x.shape), W \(w.shape) and R \(r.shape) must have rank 3") }
        let layer = try recurrentLayer(inputs, cell: cell, layout: opset >= 14 ? int("layout", 0) : 0, hiddenFallback: r.shape[2])
        let (directions, g, hidden) = (layer.directions, layer.gates * layer.hidden, layer.hidden)
        guard w.shape == [directions, g, layer.inputSize] else {
            throw EvalError.invalid(
                "W has shape \(w.shape); direction \(layer.direction), hidden size \(hidden) and input size \(layer.inputSize) need \([directions, g, layer.inputSize])"
            )
        }
        guard r.shape == [directions, g, hidden] else {
            throw EvalError.invalid("R has shape \(r.shape); direction \(layer.direction) and hidden size \(hidden) need \([directions, g, hidden])")
        }
        return try recurrence(layer, FloatRecurrentProducts(w: w.floats, r: r.floats, inputSize: layer.inputSize, hidden: hidden, gates: layer.gates))
    }

    /// Reads the layer of this node (X at input 0, B, sequence_lens, initial_h, initial_c and P at
    /// inputs 3–7, the attributes) in `layout` 0 or 1; `hiddenFallback` is the hidden size when the
    /// node has no `hidden_size` (taken from R's shape).
    func recurrentLayer(_ inputs: [Value?], cell: RecurrentCell, layout: Int, hiddenFallback: Int) throws -> RecurrentLayer {
        var x = try floatInput(inputs, 0)
        guard layout == 0 || layout == 1 else { throw EvalError.invalid("layout \(layout) must be 0 or 1") }
        guard x.rank == 3 else { throw EvalError.invalid("X has shape \(x.shape); it must have rank 3") }
        if layout == 1 { x = try transposed(x, [1, 0, 2]) }
        let (steps, batch, inputSize) = (x.shape[0], x.shape[1], x.shape[2])
        let direction = string("direction", "forward")
        guard ["forward", "reverse", "bidirectional"].contains(direction) else {
            throw EvalError.invalid("direction `\(direction)` must be forward, reverse or bidirectional")
        }
        let directions = direction == "bidirectional" ? 2 : 1
        let gates = cell.gates
        let hidden = node.attribute("hidden_size") != nil ? int("hidden_size", 0) : hiddenFallback
        guard hidden > 0 else { throw EvalError.invalid("hidden_size \(hidden) must be positive") }
        let stateShape = layout == 0 ? [directions, batch, hidden] : [batch, directions, hidden]
        try checkSize([steps, directions, batch, hidden], op: node.opType)
        try checkSize([steps, batch, gates * hidden], op: node.opType)  // the input projections

        /// An optional input of `shape`, or nil.
        func optional(_ index: Int, _ name: String, _ shape: [Int]) throws -> Value? {
            guard index < inputs.count, let v = inputs[index] else { return nil }
            guard v.shape == shape else { throw EvalError.invalid("\(name) has shape \(v.shape), expected \(shape)") }
            return v
        }
        /// An initial state in [directions, batch, hidden] order.
        func state(_ index: Int, _ name: String) throws -> [Float]? {
            guard let v = try optional(index, name, stateShape) else { return nil }
            return layout == 0 ? v.asFloats : try transposed(v, [1, 0, 2]).asFloats
        }
        var lengths = [Int](repeating: steps, count: batch)
        if let s = try optional(4, "sequence_lens", [batch]) {
            lengths = try s.asInts.map { l in
                guard l >= 0, l <= Int64(steps) else { throw EvalError.invalid("sequence_lens \(s.asInts) holds \(l), outside 0…\(steps)") }
                return Int(l)
            }
        }
        let clip: Float? = node.attribute("clip") != nil ? float("clip", .infinity) : nil
        if let clip, !(clip > 0) { throw EvalError.invalid("clip \(clip) must be positive") }
        return RecurrentLayer(
            cell: cell, x: x.floats, dtype: x.dtype, layout: layout, steps: steps, batch: batch, inputSize: inputSize, hidden: hidden,
            direction: direction, directions: directions,
            bias: try optional(3, "B", [directions, 2 * gates * hidden])?.asFloats,
            lengths: lengths, initialH: try state(5, "initial_h"), initialC: cell == .lstm ? try state(6, "initial_c") : nil,
            peepholes: cell == .lstm ? try optional(7, "P", [directions, 3 * hidden])?.asFloats : nil,
            functions: try activations(cell, directions: directions), clip: clip,
            inputForget: cell == .lstm && int("input_forget", 0) != 0, linearBeforeReset: cell == .gru && int("linear_before_reset", 0) != 0,
            writesSequence: !(node.outputs.first ?? "").isEmpty)
    }

    /// Runs `layer` with `products` for its matrix products: [Y, Y_h] (and Y_c for LSTM), in the
    /// layer's layout and X's type.
    func recurrence(_ layer: RecurrentLayer, _ products: some RecurrentProducts) throws -> [Value] {
        let (cell, steps, batch, hidden, directions) = (layer.cell, layer.steps, layer.batch, layer.hidden, layer.directions)
        let g = layer.gates * hidden
        let (lengths, clip, bias, functions) = (layer.lengths, layer.clip, layer.bias, layer.functions)
        // Steps past the longest entry are computed by no one (onnxruntime's products stop there too).
        let longest = lengths.max() ?? 0
        var y = [Float](repeating: 0, count: steps * directions * batch * hidden)
        var yh = [Float](repeating: 0, count: directions * batch * hidden)
        var yc = [Float](repeating: 0, count: directions * batch * hidden)
        var recurrent = [Float](repeating: 0, count: batch * g)  // H·Rᵀ for one step
        var resetHidden = [Float](repeating: 0, count: batch * hidden)  // GRU: r ⊙ H
        var resetProduct = [Float](repeating: 0, count: batch * hidden)  // GRU: (r ⊙ H)·Rhᵀ
        for d in 0..<directions {
            let f = functions[d]
            let reverse = layer.direction == "reverse" || d == 1
            let stateOffset = d * batch * hidden
            var h = layer.initialH.map { Array($0[stateOffset..<stateOffset + batch * hidden]) } ?? [Float](repeating: 0, count: batch * hidden)
            var c = layer.initialC.map { Array($0[stateOffset..<stateOffset + batch * hidden]) } ?? [Float](repeating: 0, count: batch * hidden)
            // Biases: Wb + Rb per gate, except GRU's Rbh, which sits inside the reset with linear_before_reset.
            var b = [Float](repeating: 0, count: g), rbh = [Float](repeating: 0, count: hidden)
            if let bias {
                let base = d * 2 * g
                for k in 0..<g { b[k] = bias[base + k] + bias[base + g + k] }
                if cell == .gru {
                    for j in 0..<hidden {
                        rbh[j] = bias[base + g + 2 * hidden + j]
                        b[2 * hidden + j] -= rbh[j]
                    }
                }
            }
            let p = layer.peepholes.map { Array($0[d * 3 * hidden..<(d + 1) * 3 * hidden]) }
            // X·Wᵀ for every step at once (the rows of a reverse direction are the same, in another order).
            let projected = try products.inputProducts(layer.x, rows: longest * batch, direction: d)
            for s in 0..<longest {
                // The previous hidden state as onnxruntime's matrix holds it: every entry at the first
                // step, then the entries the last step computed; the rest are zero in Y (kept in Y_h).
                let counted = lengths.map { s == 0 || s - 1 < $0 || !layer.writesSequence }
                try products.hiddenProducts(h, counted: counted, direction: d, gates: 0..<layer.gates, into: &recurrent)
                func clipped(_ v: Float) -> Float { clip.map { min(max(v, -$0), $0) } ?? v }
                var active = [Bool](repeating: false, count: batch), time = [Int](repeating: 0, count: batch)
                for n in 0..<batch where s < lengths[n] {
                    active[n] = true
                    time[n] = reverse ? lengths[n] - 1 - s : s
                }
                if cell == .gru, !layer.linearBeforeReset {
                    // h̃ needs (r ⊙ H)·Rhᵀ: r first, then one more product.
                    for n in 0..<batch where active[n] {
                        let xo = (time[n] * batch + n) * g, ro = n * g
                        for j in 0..<hidden {
                            let rg = f[0](clipped(projected[xo + hidden + j] + recurrent[ro + hidden + j] + b[hidden + j]))
                            resetHidden[n * hidden + j] = rg * h[n * hidden + j]
                        }
                    }
                    try products.hiddenProducts(resetHidden, counted: active, direction: d, gates: 2..<3, into: &resetProduct)
                }
                for n in 0..<batch where active[n] {
                    let xo = (time[n] * batch + n) * g, ro = n * g, so = n * hidden
                    for j in 0..<hidden {
                        // X·W + H·R (+ a peephole term) + bias, in onnxruntime's order.
                        func gate(_ k: Int, _ peephole: Float = 0) -> Float {
                            projected[xo + k * hidden + j] + recurrent[ro + k * hidden + j] + peephole + b[k * hidden + j]
                        }
                        let newH: Float
                        switch cell {
                        case .rnn:
                            newH = f[0](clipped(gate(0)))
                        case .gru:
                            let z = f[0](clipped(gate(0)))
                            let candidate: Float
                            if layer.linearBeforeReset {
                                let rg = f[0](clipped(gate(1)))
                                candidate = f[1](clipped(projected[xo + 2 * hidden + j] + b[2 * hidden + j] + rg * (recurrent[ro + 2 * hidden + j] + rbh[j])))
                            } else {
                                candidate = f[1](clipped(projected[xo + 2 * hidden + j] + resetProduct[so + j] + b[2 * hidden + j] + rbh[j]))
                            }
                            newH = (1 - z) * candidate + z * h[so + j]
                        case .lstm:
                            let previous = c[so + j]
                            let i = f[0](clipped(gate(0, previous * (p?[j] ?? 0))))
                            // input_forget couples the gates: f = 1 − i (onnxruntime's reading).
                            let forget = layer.inputForget ? 1 - i : f[0](clipped(gate(2, previous * (p?[2 * hidden + j] ?? 0))))
                            let cellInput = f[1](clipped(gate(3)))
                            let newC = forget * previous + i * cellInput
                            let o = f[0](clipped(gate(1, newC * (p?[hidden + j] ?? 0))))
                            c[so + j] = newC
                            newH = o * f[2](newC)
                        }
                        h[so + j] = newH
                        y[((time[n] * directions + d) * batch + n) * hidden + j] = newH
                    }
                }
            }
            // An entry with no steps has zero final states (onnxruntime's choice; the spec is silent).
            for n in 0..<batch where lengths[n] > 0 {
                for j in 0..<hidden {
                    yh[stateOffset + n * hidden + j] = h[n * hidden + j]
                    yc[stateOffset + n * hidden + j] = c[n * hidden + j]
                }
            }
        }
        var outputs = [
            Value(floats: y, shape: [steps, directions, batch, hidden], dtype: layer.dtype),
            Value(floats: yh, shape: [directions, batch, hidden], dtype: layer.dtype),
        ]
        if cell == .lstm { outputs.append(Value(floats: yc, shape: [directions, batch, hidden], dtype: layer.dtype)) }
        if layer.layout == 1 {
            outputs[0] = try transposed(outputs[0], [2, 0, 1, 3])
            for k in 1..<outputs.count { outputs[k] = try transposed(outputs[k], [1, 0, 2]) }
        }
        return try outputs.map { try $0.cast(to: layer.dtype) }
    }
}
