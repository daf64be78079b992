import Foundation
import NN

/// What `eval` and `predict` need to rebuild a model from a file: a swift-dp-train checkpoint
/// or exported weights (which say what they hold in their metadata), or a torchvision state
/// dict saved with safetensors (which says nothing; `--model` names the architecture and the
/// rest is read off the tensors).
public struct ModelFileRequest: Sendable {
    /// Exactly one of the two.
    public var weights: String?
    public var checkpoint: String?
    /// Required for files without swift-dp-train metadata; must agree with the file otherwise.
    public var architecture: String?
    public var stem: ResNetStem?
    public var numClasses: Int?
    public init() {}
}

/// A model with all its weights loaded, plus what the file says about its classes and the
/// image size it was trained at.
public struct InferenceModel {
    public let model: ClassifierModel
    /// Class names in model output order (a checkpoint's dataset classes), if the file has them.
    public let classNames: [String]?
    /// Readable names in the same order, if the file has them.
    public let classDescriptions: [String]?
    /// The training crop size, if the file is a checkpoint or an export of one.
    public let trainedImageSize: Int?
    /// The shorter side the trainer resized validation images to, with `trainedImageSize`.
    public let trainedEvalResize: Int?
    /// A short account of what was loaded, for the log.
    public let summary: String

    /// A serialisable description, so rank 0 can read the file and the other ranks build the
    /// same model before the weights are broadcast (nodes need not share a filesystem).
    struct Spec: Codable {
        var architecture: String
        var stem: String
        var head: String
        var numClasses: Int
        var classNames: [String]?
        var classDescriptions: [String]?
        var trainedImageSize: Int?
        var trainedEvalResize: Int?
        var summary: String
    }

    var spec: Spec {
        Spec(architecture: model.architecture, stem: model.stem.rawValue, head: model.head.description,
             numClasses: model.numClasses, classNames: classNames, classDescriptions: classDescriptions,
             trainedImageSize: trainedImageSize, trainedEvalResize: trainedEvalResize, summary: summary)
    }

    /// An untrained model of the described shape (weights arrive by broadcast).
    init(spec: Spec) throws {
        guard let stem = ResNetStem(rawValue: spec.stem), let head = ClassifierHead(spec.head) else {
            throw TrainingError("inconsistent model description from rank 0")
        }
        model = try ClassifierModel(architecture: spec.architecture, numClasses: spec.numClasses, stem: stem, head: head,
                                    seed: 0)
        classNames = spec.classNames
        classDescriptions = spec.classDescriptions
        trainedImageSize = spec.trainedImageSize
        trainedEvalResize = spec.trainedEvalResize
        summary = spec.summary
    }

    /// Reads the file and loads it strictly (every tensor present, none left over).
    public init(_ request: ModelFileRequest) throws {
        guard (request.weights == nil) != (request.checkpoint == nil) else {
            throw TrainingError("give exactly one of --weights FILE or --checkpoint FILE")
        }
        let path = request.weights ?? request.checkpoint!
        let file = try SafeTensorsFile.read(path: path)
        let metadata = file.metadata
        let shapes = file.tensors.mapValues(\.shape)
        let isOurs = metadata["swift_dp_train.architecture"] != nil
        if request.checkpoint != nil && metadata["swift_dp_train.format_version"] == nil {
            throw TrainingError("\(path): not a swift-dp-train checkpoint (no swift_dp_train.format_version in the metadata); use --weights for a state dict")
        }

        let architecture: String
        if let saved = metadata["swift_dp_train.architecture"] {
            if let asked = request.architecture, asked != saved {
                throw TrainingError("\(path) holds a \(saved), not a \(asked) (--model)")
            }
            architecture = saved
        } else if let asked = request.architecture {
            architecture = asked
        } else {
            throw TrainingError("\(path) does not say which model it holds: pass --model (e.g. --model resnet50)")
        }
        // The stem is visible in conv1's kernel: 7×7 (imagenet) or 3×3 (small).
        let stem: ResNetStem
        if let saved = metadata["swift_dp_train.stem"].flatMap(ResNetStem.init(rawValue:)) {
            stem = saved
        } else if let conv1 = shapes["conv1.weight"], conv1.count == 4 {
            stem = conv1[2] == 3 ? .small : .imagenet
        } else {
            stem = request.stem ?? .imagenet
        }
        if let asked = request.stem, asked != stem {
            throw TrainingError("\(path) holds a model with the \(stem.rawValue) stem, not \(asked.rawValue) (--stem)")
        }
        guard let spec = Architecture.named(architecture) else {
            throw TrainingError("unknown model '\(architecture)'; available: \(Architecture.listedNames.joined(separator: ", "))")
        }
        guard let (head, lastLinear) = ClassifierHead.detect(spec, shapes: shapes) else {
            let prefix = spec.headPrefix
            throw TrainingError("\(path): no classifier found (expected \(spec.linearHeadName).weight, or \(prefix).0.weight and \(prefix).3.weight)")
        }
        guard let classes = shapes[lastLinear + ".weight"]?.first else {
            throw TrainingError("\(path): malformed classifier tensor \(lastLinear).weight")
        }
        if let asked = request.numClasses, asked != classes {
            throw TrainingError("\(path) has a \(classes)-class classifier, not \(asked) (--num-classes)")
        }
        model = try ClassifierModel(architecture: architecture, numClasses: classes, stem: stem, head: head, seed: 0)
        try StateDict.load(file.tensors, into: model.store, source: path, ignoringPrefixes: Checkpoint.trainingStatePrefixes)

        func stringList(_ key: String) -> [String]? {
            guard let json = metadata[key], let list = try? JSONDecoder().decode([String].self, from: Data(json.utf8)),
                  list.count == classes else { return nil }
            return list
        }
        classNames = stringList("swift_dp_train.class_names")
        classDescriptions = classNames == nil ? nil : stringList("swift_dp_train.class_descriptions")
        if let size = metadata["swift_dp_train.image_size"].flatMap({ Int($0) }) {
            trainedImageSize = size
        } else if let json = metadata["swift_dp_train.config"], let config = try? TrainConfig.decode(from: Data(json.utf8)) {
            trainedImageSize = config.imageSize
        } else {
            trainedImageSize = nil
        }
        trainedEvalResize = metadata["swift_dp_train.eval_resize"].flatMap { Int($0) }
        summary = "\(path): \(architecture) (\(stem.rawValue) stem, \(head) head, \(classes) classes"
            + (isOurs ? "" : ", torchvision state dict") + ")"
    }
}
