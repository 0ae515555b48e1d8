import Foundation
import PithIR
import Testing

@testable import PithEval

/// The vector form of e^x and softmax agree with their scalar definitions.
@Suite struct VectorMathTests {
    /// The distance in units in the last place between two floats of the same sign.
    static func ulps(_ a: Float, _ b: Float) -> Int {
        Int(a.bitPattern) - Int(b.bitPattern)
    }

    @Test func exponentialWithinTwoUlpsOverTheWholeRange() {
        // Every 9,973rd float bit pattern from −87.3 to 88.7, and the special values.
        var worst = 0
        var lanes = [Float]()
        var bits = (-87.3 as Float).bitPattern
        while bits > 0 {
            lanes.append(Float(bitPattern: bits))
            bits = bits > 9973 ? bits - 9973 : 0
        }
        bits = 0
        while Float(bitPattern: bits) < 88.7 {
            lanes.append(Float(bitPattern: bits))
            bits += 9973
        }
        for start in stride(from: 0, to: lanes.count - 8, by: 8) {
            var v = SIMD8<Float>()
            for k in 0..<8 { v[k] = lanes[start + k] }
            let e = VectorLoops.exp(v)
            for k in 0..<8 {
                let expected = Float(Foundation.exp(Double(lanes[start + k])))
                if expected >= Float.leastNormalMagnitude { worst = max(worst, abs(Self.ulps(e[k], expected))) }
            }
        }
        #expect(worst <= 2, "largest error \(worst) ulp")
        let special = VectorLoops.exp(SIMD8<Float>(-.infinity, .infinity, .nan, -200, 200, 0, 88.72, -87.3))
        #expect(special[0] == 0)
        #expect(special[1] == .infinity)
        #expect(special[2].isNaN)
        #expect(special[3] == 0)
        #expect(special[4] == .infinity)
        #expect(special[5] == 1)
        #expect(special[6].isFinite && abs(Self.ulps(special[6], Float(Foundation.exp(Double(Float(88.72)))))) <= 2)
        #expect(special[7] > 0)
    }

    /// The vector logistic and tanh give the scalar forms' bits (onnxruntime's): every 9,973rd float
    /// bit pattern of [−20, 20], the special values, and inputs where a fused multiply-add meets a
    /// double halfway between two floats (found by search: the vector form then computes the eight
    /// one by one). Every float of [−19, 19] was checked once by hand the same way.
    @Test func logisticAndTanhVectorsMatchTheScalarForms() {
        var lanes: [Float] = [-.infinity, .infinity, .nan, 0, -0.0, 18, -18, 9, -9, 1e-30, -1e-30, .leastNonzeroMagnitude]
        // Inputs with a halfway double: logistic 0.0042869034, 0.36843207, 1.2392205; tanh 0.001742428,
        // 0.090387344, 0.38527587.
        lanes += [999_061_799, 1_052_549_921, 1_067_359_943, 988_045_871, 1_035_541_760, 1_053_115_105].map { Float(bitPattern: $0) }
        for sign in [Float(1), -1] {
            var bits: UInt32 = 0
            while Float(bitPattern: bits) < 20 {
                lanes.append(sign * Float(bitPattern: bits))
                bits += 9973
            }
        }
        while lanes.count % 8 != 0 { lanes.append(0.5) }
        var mismatches: [String] = []
        for start in stride(from: 0, to: lanes.count, by: 8) {
            var v = SIMD8<Float>()
            for k in 0..<8 { v[k] = lanes[start + k] }
            let logistic = OnnxruntimeMath.logistic(v), tanh = OnnxruntimeMath.tanh(v)
            func same(_ a: Float, _ b: Float) -> Bool { a.bitPattern == b.bitPattern || (a.isNaN && b.isNaN) }
            for k in 0..<8 where mismatches.count < 5 {
                let x = v[k]
                if !same(logistic[k], OnnxruntimeMath.logistic(x)) { mismatches.append("logistic(\(x))") }
                if !same(tanh[k], OnnxruntimeMath.tanh(x)) { mismatches.append("tanh(\(x))") }
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches)")
    }

    /// Softmax of every opset form against the definition in double precision, on a row long enough
    /// to take the vector path with a tail, and along an inner axis (strided rows).
    @Test(arguments: [11, 13])
    func softmaxMatchesTheDefinition(opset: Int) throws {
        let shape = [3, 37, 5]
        let count = shape.reduce(1, *)
        let values = (0..<count).map { Float(sin(Double($0) * 0.7) * 20) }
        let node = Node(name: "softmax", opType: "Softmax", inputs: ["x"], outputs: ["y"], attributes: [Attribute(name: "axis", value: .int(1))])
        let y = try Operators(node: node, opset: opset).softmax([Value(floats: values, shape: shape, dtype: .float32)])
        // Opset 11: rows are [37·5] blocks; opset 13: along axis 1 alone, 5 values apart.
        let (length, stride) = opset < 13 ? (37 * 5, 1) : (37, 5)
        for row in 0..<(count / length) {
            let o = row / stride, i = row % stride
            let indices = (0..<length).map { o * length * stride + i + $0 * stride }
            let top = indices.map { Double(values[$0]) }.max()!
            let total = indices.map { Foundation.exp(Double(values[$0]) - top) }.reduce(0, +)
            for index in indices {
                let expected = Foundation.exp(Double(values[index]) - top) / total
                #expect(abs(Double(y.floats[index]) - expected) <= 1e-6 * expected + 1e-12, "row \(row), element \(index)")
            }
        }
    }
}
