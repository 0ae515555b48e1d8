import PithIR

/// HardSwish as exporters (paddle2onnx, older PyTorch) decompose it, `x · clip(x + 3, 0, 6) / 6`,
/// becomes one HardSwish node, which `ActivationFusion` can then put in a Conv's epilogue.
///
/// The pattern, checked first: `t1 = Add(x, 3)`, `t2 = Clip(t1, 0, 6)`, `t3 = Mul(x, t2)` (either
/// order), `y = Div(t3, 6)` or `Mul(t3, 1/6)`; the constants scalars; `t1`, `t2` and `t3` each read
/// only by the next node and not graph outputs. The HardSwish takes the Add's place and name and
/// writes `y`.
enum HardSwishRecognition {
    static func apply(to build: inout GraphBuild) {
        for k in build.nodes.indices {
            guard build.isOperator(k, "Add"), let add = build.node(k), add.inputs.count == 2, add.outputs.count == 1 else { continue }
            let constantFirst = build.scalar(add.inputs[0]) == 3
            guard constantFirst || build.scalar(add.inputs[1]) == 3 else { continue }
            let x = add.inputs[constantFirst ? 1 : 0]
            guard let c = build.soleReader(of: add.outputs[0]), build.isOperator(c, "Clip"), let clip = build.node(c),
                clip.outputs.count == 1, let bounds = build.clipBounds(c), bounds.low == 0, bounds.high == 6,
                let m = build.soleReader(of: clip.outputs[0]), build.isOperator(m, "Mul"), let mul = build.node(m),
                Set(mul.inputs) == [x, clip.outputs[0]], mul.outputs.count == 1,
                let d = build.soleReader(of: mul.outputs[0]), let last = build.node(d), last.inputs.count == 2, last.inputs[0] == mul.outputs[0],
                (build.isOperator(d, "Div") && build.scalar(last.inputs[1]) == 6)
                    || (build.isOperator(d, "Mul") && build.scalar(last.inputs[1]).map { abs($0 - 1.0 / 6) < 1e-7 } == true)
            else { continue }
            let hardSwish = Node(name: add.name, opType: "HardSwish", inputs: [x], outputs: last.outputs)
            build.remove(c)
            build.remove(m)
            build.remove(d)
            build.replace(k, with: hardSwish)
        }
    }
}
