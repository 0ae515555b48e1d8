import Foundation
import Testing
import Pith
import PithTestSupport

/// Roles come from the graph or the layer configuration, never from a tensor's shape.
@Suite struct TensorRoleTests {
    @Test func lenetONNXRolesComeFromTheGemmSlots() throws {
        let model = try ModelFile.load(Fixtures.path("lenet-300-100.onnx"))
        let roles = Dictionary(uniqueKeysWithValues: zip(model.tensors.map(\.name), model.tensorRoles()))
        for layer in ["fc1", "fc2", "fc3"] {
            let weight = try #require(roles["\(layer).weight"])
            #expect(weight.kind == .weight && weight.op == "Gemm" && weight.layer == layer && weight.slot == 1)
            // transB = 1: (N, K), outputs along axis 0.
            #expect(weight.outputAxis == 0 && weight.inputAxis == 1)
            let bias = try #require(roles["\(layer).bias"])
            #expect(bias.kind == .bias && bias.slot == 2)
        }
    }

    @Test func lenetKerasRolesComeFromTheWeightNames() throws {
        let model = try ModelFile.load(Fixtures.path("lenet-300-100.h5"))
        for (tensor, role) in zip(model.tensors, model.tensorRoles()) {
            if tensor.name.hasSuffix("kernel:0") {
                #expect(role.kind == .weight && role.op == "Dense" && role.outputAxis == 1 && role.inputAxis == 0, "\(tensor.name)")
            } else {
                #expect(role.kind == .bias, "\(tensor.name)")
            }
        }
        let cnn = try ModelFile.load(Fixtures.path("keras/keras2-cnn.h5"))
        let kinds = Dictionary(uniqueKeysWithValues: zip(cnn.tensors.map(\.name), cnn.tensorRoles().map(\.kind)))
        #expect(kinds["model_weights/bn/bn/moving_variance:0"] == .normalization)
        #expect(kinds["model_weights/dw/dw/depthwise_kernel:0"] == .weight)
        #expect(kinds["model_weights/conv/conv/bias:0"] == .bias)
    }

    /// skl2onnx writes a Gemm's bias as a 1×N matrix: a shape rule takes it for a weight and prunes it.
    @Test func aMatrixShapedBiasIsNeverSelectedByDefault() throws {
        var model = try ModelFile.load(Fixtures.path("lenet-300-100.onnx"))
        for i in model.tensors.indices where model.tensors[i].name.hasSuffix(".bias") {
            model.tensors[i].shape = [1, model.tensors[i].count]
        }
        let report = try Compressor.run(Recipe(steps: [.init(prune: PruneOptions(sparsity: 0.9))]), on: &model)
        #expect(Set(report.tensors.map(\.tensor)) == ["fc1.weight", "fc2.weight", "fc3.weight"])
        #expect(report.tensors.allSatisfy { $0.role == "weight" })
        let left = Dictionary(uniqueKeysWithValues: report.untouched.map { ($0.tensor, $0) })
        #expect(left["fc1.bias"]?.role == "bias")
        #expect(left["fc1.bias"]?.reason.contains("bias (input 2) of Gemm `fc1`") == true)
        let bias = try #require(model.tensors.first { $0.name == "fc1.bias" })
        #expect(bias.floatValues().allSatisfy { $0 != 0 })
        // A selection by role takes them.
        var again = try ModelFile.load(Fixtures.path("lenet-300-100.onnx"))
        let byRole = try Compressor.run(
            Recipe(steps: [.init(select: TensorSelector(roles: [.bias]), quantize: QuantizeOptions(format: .fp16))]), on: &again)
        #expect(Set(byRole.tensors.map(\.tensor)) == ["fc1.bias", "fc2.bias", "fc3.bias"])
    }

    @Test func biasAddedToAMatMulAndShapeConstantsAreRecognised() throws {
        func tensor(_ name: String, _ shape: [Int], dtype: DType = .float32) -> Tensor {
            let count = shape.reduce(1, *)
            let storage: TensorStorage =
                dtype == .int64
                ? .dense(TensorBuffer(bytes: [UInt8](repeating: 0, count: 8 * count))) : .dense(TensorBuffer(values: [Float](repeating: 1, count: count)))
            return Tensor(name: name, dtype: dtype, shape: shape, storage: storage, origin: .initializer(graph: .main))
        }
        let graph = Graph(
            nodes: [
                Node(name: "mm", opType: "MatMul", inputs: ["x", "w"], outputs: ["y"]),
                Node(name: "add", opType: "Add", inputs: ["y", "b"], outputs: ["z"]),
                Node(name: "reshape", opType: "Reshape", inputs: ["z", "shape"], outputs: ["r"]),
                Node(name: "ln", opType: "LayerNormalization", inputs: ["r", "gamma", "beta"], outputs: ["n"]),
                Node(name: "emb", opType: "Gather", inputs: ["table", "ids"], outputs: ["e"]),
            ], initializers: Array(0..<7))
        let model = Model(
            format: .onnx,
            tensors: [
                tensor("w", [64, 32]), tensor("b", [32]), tensor("shape", [2], dtype: .int64), tensor("gamma", [32]), tensor("beta", [32]),
                tensor("table", [100, 16]), tensor("ids", [4], dtype: .int64),
            ], graph: graph)
        let kinds = model.tensorRoles().map(\.kind)
        #expect(kinds == [.weight, .bias, .shape, .normalization, .normalization, .embedding, .shape])
        #expect(model.tensorRoles()[0].outputAxis == 1)
    }
}
