import Foundation
import Testing
import Pith

/// `pith compress --format json` never traps: numbers JSON has no literal for are strings.
@Suite struct CompressionReportJSONTests {
    /// A weight of 10⁶ overflows fp16 (max 65,504): its error is infinite (max |err|, RMSE inf,
    /// SNR −inf), and a NaN weight makes the RMSE and SNR NaN.
    @Test func nonFiniteErrorsRenderAsStrings() throws {
        var values = [Float](repeating: 0.25, count: 16 * 16)
        values[0] = 1e6
        var withNaN = values
        withNaN[0] = 1
        withNaN[5] = .nan
        var model = Model(
            format: .onnx,
            tensors: [
                Tensor(name: "big", dtype: .float32, shape: [16, 16], storage: .dense(TensorBuffer(values: values)), origin: .initializer(graph: .main)),
                Tensor(name: "nan", dtype: .float32, shape: [16, 16], storage: .dense(TensorBuffer(values: withNaN)), origin: .initializer(graph: .main)),
            ])
        let report = try Compressor.run(Recipe(steps: [.init(quantize: QuantizeOptions(format: .fp16))]), on: &model)
        let text = report.renderJSON()
        let json = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let rows = try #require(json["tensors"] as? [[String: Any]])
        let errors = try rows.map { try #require($0["error"] as? [String: Any]) }
        #expect(errors[0]["max_abs"] as? String == "inf")
        #expect(errors[0]["rmse"] as? String == "inf")
        #expect(errors[0]["snr_db"] as? String == "-inf")
        #expect(errors[1]["rmse"] as? String == "nan")
        #expect(errors[1]["snr_db"] as? String == "nan")
        // Finite numbers stay numbers.
        #expect(rows[0]["kept_fraction"] as? Double == 1)
        #expect(report.renderText(file: "m.onnx").contains("-inf"))
    }
}
