import Foundation
import NN

/// Checkpoints are safetensors files: the model under torchvision names and layouts (so
/// `safetensors.torch.load_file` + `load_state_dict` works after dropping the optimizer
/// entries), the optimizer's state as `optimizer.<state>.<name>` in the same layout (SGD's
/// `momentum_buffer`, Adam's `exp_avg` and `exp_avg_sq`; its step count is the global step), the
/// weight average (`--ema-decay`) as `ema.<name>` for parameters and buffers, and
/// the training state as JSON strings in the header metadata. Writes are atomic.
/// There is no generator state to save: every random choice derives from (seed, epoch,
/// sample index), so seed + completed epochs + global step restore the stream exactly.
public enum Checkpoint {
    /// Bumped when the metadata changes meaning.
    public static let formatVersion = "1"
    static let emaPrefix = "ema."
    /// Tensors of the run's state, not of the model: every reader of model weights skips them.
    public static let trainingStatePrefixes = ["optimizer.", emaPrefix]

    public static func save(to path: String, model: ClassifierModel, optimizer: any Optimizer, ema: ModelEMA? = nil,
                            state: TrainingState, config: TrainConfig, worldSize: Int, metrics: EpochMetrics? = nil) throws {
        var records = StateDict.records(of: model.store)
        if let ema {
            records += StateDict.records(of: ema.model.store).map {
                SafeTensorRecord(name: emaPrefix + $0.name, dtype: $0.dtype, shape: $0.shape, data: $0.data)
            }
        }
        for buffer in optimizer.stateBuffers {
            for p in model.store.parameters {
                let values = StateDict.pytorchLayout(buffer.pointer + p.offset, entry: p)
                records.append(SafeTensorRecord(name: "optimizer.\(buffer.name).\(p.name)", dtype: .f32, shape: p.shape,
                                                floats: values))
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var metadata: [String: String] = [
            "format": "pt",
            "swift_dp_train.format_version": formatVersion,
            "swift_dp_train.architecture": model.architecture,
            "swift_dp_train.stem": model.stem.rawValue,
            "swift_dp_train.num_classes": String(model.numClasses),
            "swift_dp_train.head": model.head.description,
            "swift_dp_train.image_size": String(config.imageSize),
            "swift_dp_train.eval_resize": String((try? config.evalResize()) ?? config.imageSize),
            "swift_dp_train.world_size": String(worldSize),
            "swift_dp_train.state": String(decoding: try encoder.encode(state), as: UTF8.self),
            "swift_dp_train.config": String(decoding: try encoder.encode(config), as: UTF8.self),
            "swift_dp_train.class_names": String(decoding: try encoder.encode(state.classNames), as: UTF8.self),
            "swift_dp_train.class_descriptions": String(decoding: try encoder.encode(state.classDescriptions ?? state.classNames),
                                                         as: UTF8.self),
        ]
        if let metrics { metadata["swift_dp_train.metrics"] = String(decoding: try encoder.encode(metrics), as: UTF8.self) }
        try SafeTensorsWriter.write(tensors: records, metadata: metadata, to: path)
    }

    /// `--resume auto`: the checkpoint in `directory` with the most steps (last.safetensors on
    /// a tie); files that cannot be read as checkpoints are passed over with a warning. Writes
    /// are atomic, so a job killed while saving leaves the previous file whole.
    public static func newest(in directory: String) throws -> String? {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return nil }
        var best: (path: String, step: Int, isLast: Bool)?
        for name in names.sorted() where name.hasSuffix(".safetensors") {
            let path = directory + "/" + name
            guard let file = try? SafeTensorsFile.read(path: path) else {
                warn("\(path): not readable as a checkpoint, passed over by --resume auto")
                continue
            }
            guard let json = file.metadata["swift_dp_train.state"],
                  let state = try? JSONDecoder().decode(TrainingState.self, from: Data(json.utf8)) else { continue }
            let candidate = (path, state.globalStep, name == "last.safetensors")
            if let current = best, (current.step, current.isLast ? 1 : 0) >= (candidate.1, candidate.2 ? 1 : 0) { continue }
            best = candidate
        }
        return best?.path
    }

    /// Restores model, buffers and momentum; returns the training state to continue from.
    public static func load(from path: String, model: ClassifierModel, optimizer: any Optimizer, ema: ModelEMA? = nil,
                            config: TrainConfig, worldSize: Int) throws -> TrainingState {
        let file = try SafeTensorsFile.read(path: path)
        let metadata = file.metadata
        guard let version = metadata["swift_dp_train.format_version"] else {
            throw TrainingError("\(path): not a swift-dp-train checkpoint (no swift_dp_train.format_version in the metadata)")
        }
        guard version == formatVersion else {
            throw TrainingError("\(path): checkpoint format \(version), this build reads format \(formatVersion)")
        }
        guard let stateJSON = metadata["swift_dp_train.state"], let configJSON = metadata["swift_dp_train.config"] else {
            throw TrainingError("\(path): checkpoint metadata lacks the training state")
        }
        let decoder = JSONDecoder()
        var state: TrainingState
        let saved: TrainConfig
        do {
            state = try decoder.decode(TrainingState.self, from: Data(stateJSON.utf8))
            saved = try TrainConfig.decode(from: Data(configJSON.utf8))
        } catch {
            throw TrainingError("\(path): unreadable training state in the metadata (\(error))")
        }
        let savedWorld = metadata["swift_dp_train.world_size"].flatMap { Int($0) } ?? worldSize
        let mismatches = config.resumeMismatches(with: saved, sameWorldSize: savedWorld == worldSize)
        guard mismatches.isEmpty else {
            throw TrainingError("\(path): cannot resume with different settings: " + mismatches.joined(separator: "; "))
        }
        // Checkpoints from before the sample cursor: what the trainer needs to adapt the split.
        state.worldSize = state.worldSize ?? savedWorld
        state.globalBatch = state.globalBatch ?? savedWorld * saved.batchSize * saved.accumulate
        try StateDict.load(file.tensors, into: model.store, source: path, ignoringPrefixes: trainingStatePrefixes)
        if let ema {
            let averaged = file.tensors.filter { $0.key.hasPrefix(emaPrefix) }
            if averaged.isEmpty {
                warn("\(path) holds no weight average (the run had no --ema-decay): the average starts at the checkpoint's weights")
                ema.copy(from: model)
            } else {
                let renamed = Dictionary(uniqueKeysWithValues: averaged.map { (String($0.key.dropFirst(emaPrefix.count)), $0.value) })
                try StateDict.load(renamed, into: ema.model.store, source: path + " (ema.)")
            }
        }
        for buffer in optimizer.stateBuffers {
            for p in model.store.parameters {
                let name = "optimizer.\(buffer.name).\(p.name)"
                guard let r = file.tensors[name], r.shape == p.shape, r.dtype == .f32 else {
                    throw TrainingError("\(path): missing or malformed \(name)")
                }
                let values = try r.floats()
                values.withUnsafeBufferPointer {
                    StateDict.fromPytorchLayout($0.baseAddress!, entry: p, into: buffer.pointer + p.offset)
                }
            }
        }
        return state
    }
}

/// Weights alone, in and out of PyTorch: `export` writes what `load_state_dict(strict=True)`
/// accepts; `--pretrained` reads a torchvision state dict saved with safetensors.
public enum PretrainedWeights {
    /// Copies a checkpoint's model tensors (not the optimizer state) to a new file.
    public static func export(checkpoint: String, to output: String) throws -> Int {
        let file = try SafeTensorsFile.read(path: checkpoint)
        guard file.metadata["swift_dp_train.format_version"] != nil else {
            throw TrainingError("\(checkpoint): not a swift-dp-train checkpoint (no swift_dp_train.format_version in the metadata)")
        }
        let model = file.names.filter { name in !Checkpoint.trainingStatePrefixes.contains { name.hasPrefix($0) } }
            .map { file.tensors[$0]! }
        var metadata = ["format": "pt"]
        for key in ["swift_dp_train.architecture", "swift_dp_train.stem", "swift_dp_train.num_classes",
                    "swift_dp_train.head", "swift_dp_train.image_size", "swift_dp_train.eval_resize", "swift_dp_train.class_names",
                    "swift_dp_train.class_descriptions"] {
            metadata[key] = file.metadata[key]
        }
        try SafeTensorsWriter.write(tensors: model, metadata: metadata, to: output)
        return model.count
    }

    /// Loads a state dict strictly. When the file's classifier differs from the model's (another
    /// class count, or another head shape such as `--head mlp:512`), the model's head keeps its
    /// fresh initialisation (fine-tuning), the file's head tensors are skipped, and we say so.
    public static func load(path: String, into model: ClassifierModel, log: (String) -> Void) throws {
        let file = try SafeTensorsFile.read(path: path)
        let prefix = model.spec.headPrefix
        let shapes = file.tensors.mapValues(\.shape)
        var keep = Set<String>(), skip: [String] = []
        if let (fileHead, lastLinear) = ClassifierHead.detect(model.spec, shapes: shapes) {
            let fileClasses = shapes[lastLinear + ".weight"]?.first ?? -1
            if fileHead != model.head || fileClasses != model.numClasses {
                keep = Set(model.store.parameters.map(\.name).filter { $0.hasPrefix(prefix + ".") })
                skip = [prefix + "."]
                log("\(path): the file's classifier '\(prefix)' is \(fileHead) with \(fileClasses) classes, the model's is "
                    + "\(model.head) with \(model.numClasses): replacing the head (freshly initialised), loading the rest")
            }
        }
        try StateDict.load(file.tensors, into: model.store, source: path,
                           ignoringPrefixes: Checkpoint.trainingStatePrefixes + skip, keepingInitialised: keep)
    }
}
