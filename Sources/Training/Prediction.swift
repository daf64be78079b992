import DataPipeline
import Foundation
import Kernels
import NN

/// Options of `swift-dp-train predict`.
public struct PredictionOptions: Sendable {
    public var modelFile = ModelFileRequest()
    public var images: [String] = []
    /// A class-name file (see `ClassNameFile`); nil = the names in the model file, else indices.
    public var classesFile: String?
    public var top = 5
    public var imageSize: Int?
    public var resize: Int?
    public var json = false
    public var threads = 1
    public init() {}
}

/// One image's answer, as `--json` prints it.
public struct Prediction: Codable, Sendable {
    public struct Entry: Codable, Sendable {
        public var className: String
        public var description: String?
        public var index: Int
        public var probability: Double
        enum CodingKeys: String, CodingKey { case className = "class", description, index, probability }
    }
    public var file: String
    public var top: [Entry]
}

public enum Predictor {
    /// Classifies each image, printing as it goes. An unreadable image gets one error line and
    /// the others are still classified; returns false if any image failed.
    public static func run(_ options: PredictionOptions, output: (String) -> Void) throws -> Bool {
        setComputeThreads(options.threads)
        let inference = try InferenceModel(options.modelFile)
        let model = inference.model
        let labels: [ClassLabel]
        if let file = options.classesFile {
            labels = try ClassNameFile.read(path: file)
            guard labels.count == model.numClasses else {
                throw TrainingError("\(file): \(labels.count) class names, but the model has \(model.numClasses) outputs")
            }
        } else if let names = inference.classNames {
            let descriptions = inference.classDescriptions
            labels = names.indices.map { i in
                ClassLabel(name: names[i], description: descriptions.map { $0[i] }.flatMap { $0 == names[i] ? nil : $0 })
            }
        } else {
            labels = (0..<model.numClasses).map { ClassLabel(name: String($0), description: nil) }
        }
        let evaluation = EvaluationOptions.sizes(imageSize: options.imageSize, resize: options.resize,
                                                 trained: inference)
        if !options.json {
            output("\(inference.summary); Resize(\(evaluation.resize)) + CenterCrop(\(evaluation.imageSize))")
        }
        let decoder = ImageDecoder()
        let input = Tensor(n: 1, h: evaluation.imageSize, w: evaluation.imageSize, c: 3)
        let k = min(max(options.top, 1), model.numClasses)
        var allRead = true
        var bytes: [UInt8] = []
        for path in options.images {
            let image: RGBImage
            do {
                try readImageFile(path, into: &bytes)
                image = try decoder.decode(bytes)
            } catch {
                FileHandle.standardError.write(Data("error: \(path): \(error)\n".utf8))
                allRead = false
                continue
            }
            evalTransform(image, resize: evaluation.resize, size: evaluation.imageSize, into: input.pointer)
            let logits = model.forward(input, mode: .eval).array
            let probabilities = softmax(logits)
            let ranked = probabilities.indices.sorted { probabilities[$0] > probabilities[$1] }.prefix(k)
            let prediction = Prediction(file: path, top: ranked.map {
                Prediction.Entry(className: labels[$0].name, description: labels[$0].description, index: $0,
                                 probability: probabilities[$0])
            })
            if options.json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                output(String(decoding: try encoder.encode(prediction), as: UTF8.self))
            } else {
                output(path)
                for entry in prediction.top {
                    let text = entry.description.map { "\(entry.className)  \($0)" } ?? entry.className
                    output(String(format: "  %6.2f%%  %5d  %@", entry.probability * 100, entry.index, text))
                }
            }
        }
        return allRead
    }

    /// Softmax in Double, shifted by the maximum for stability.
    static func softmax(_ logits: [Float]) -> [Double] {
        let maximum = Double(logits.max() ?? 0)
        let exps = logits.map { Foundation.exp(Double($0) - maximum) }
        let sum = exps.reduce(0, +)
        return exps.map { $0 / sum }
    }
}
