import Foundation
import NN

/// `swift-dp-train inspect`: what a safetensors file holds, read from its header alone, for
/// our checkpoints (model, classes, progress, metrics, config, world size), our exports and
/// plain PyTorch state dicts.
public enum CheckpointInspection {
    public static func describe(path: String) throws -> String {
        let file = try SafeTensorsFile.read(path: path)
        let meta = file.metadata
        let isRunState = { (name: String) in Checkpoint.trainingStatePrefixes.contains { name.hasPrefix($0) } }
        let runState = file.names.filter(isRunState)
        let modelTensors = file.names.filter { !isRunState($0) }
        let parameters = modelTensors.reduce(0) { total, name in
            let r = file.tensors[name]!
            return r.dtype == .f32 && !name.hasSuffix("running_mean") && !name.hasSuffix("running_var")
                ? total + r.shape.reduce(1, *) : total
        }
        var lines: [(String, String)] = []
        let kind: String
        if let version = meta["swift_dp_train.format_version"] {
            kind = "swift-dp-train checkpoint (format \(version))"
        } else if meta["swift_dp_train.architecture"] != nil {
            kind = "swift-dp-train export (model weights only)"
        } else {
            kind = "safetensors state dict"
        }
        lines.append(("file", "\(path): \(kind)"))
        lines.append(("tensors", "\(modelTensors.count) model tensors, \(grouped(parameters)) parameters"
                      + (runState.isEmpty ? "" : "; \(runState.count) optimizer and weight-average tensors")))
        if let architecture = meta["swift_dp_train.architecture"] {
            var model = architecture
            var details: [String] = []
            if let stem = meta["swift_dp_train.stem"], architecture.hasPrefix("resnet") { details.append("\(stem) stem") }
            if let head = meta["swift_dp_train.head"] { details.append("\(head) head") }
            if let size = meta["swift_dp_train.image_size"] { details.append("trained at \(size) px") }
            if let resize = meta["swift_dp_train.eval_resize"] { details.append("eval resize \(resize)") }
            if !details.isEmpty { model += " (" + details.joined(separator: ", ") + ")" }
            lines.append(("model", model))
        }
        if let json = meta["swift_dp_train.class_names"],
           let names = try? JSONDecoder().decode([String].self, from: Data(json.utf8)) {
            let descriptions = meta["swift_dp_train.class_descriptions"]
                .flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) }
            let shown = names.prefix(5).enumerated().map { i, name -> String in
                guard let d = descriptions?[i], d != name else { return name }
                return "\(name) (\(d))"
            }
            lines.append(("classes", "\(names.count): " + shown.joined(separator: ", ") + (names.count > 5 ? ", …" : "")))
        } else if let classes = meta["swift_dp_train.num_classes"] {
            lines.append(("classes", classes))
        }
        if let json = meta["swift_dp_train.state"],
           let state = try? JSONDecoder().decode(TrainingState.self, from: Data(json.utf8)) {
            var progress = "\(state.epoch) epoch(s), \(state.globalStep) step(s)"
            if let world = meta["swift_dp_train.world_size"] { progress += " on \(world) rank(s)" }
            lines.append(("trained", progress))
            if state.bestTop1 >= 0 {
                lines.append(("best", String(format: "val top-1 %.2f%%", state.bestTop1 * 100)
                              + (state.bestScore.map { String(format: " (score %.6g)", $0) } ?? "")
                              + (state.bestIsEMA == true ? ", the weight average's" : "")))
            }
        }
        if let json = meta["swift_dp_train.metrics"],
           let m = try? JSONDecoder().decode(EpochMetrics.self, from: Data(json.utf8)) {
            var text = String(format: "epoch %d: train loss %.4f, top-1 %.2f%%", m.epoch, m.trainLoss, m.trainTop1 * 100)
            if let loss = m.valLoss, let top1 = m.valTop1 {
                text += String(format: "; val loss %.4f, top-1 %.2f%%", loss, top1 * 100)
                if let top5 = m.valTop5 { text += String(format: ", top-5 %.2f%%", top5 * 100) }
                if let f1 = m.valF1 { text += String(format: ", macro F1 %.4f", f1) }
            }
            lines.append(("metrics", text))
        }
        if let json = meta["swift_dp_train.config"], let config = try? TrainConfig.decode(from: Data(json.utf8)) {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            lines.append(("config", String(decoding: try encoder.encode(config), as: UTF8.self)))
        }
        let width = lines.map(\.0.count).max() ?? 0
        return lines.map { $0.0.padding(toLength: width + 2, withPad: " ", startingAt: 0) + $0.1 }.joined(separator: "\n")
    }

    /// 11689512 → "11,689,512", whatever the locale.
    public static func grouped(_ n: Int) -> String {
        var digits = Array(String(n))
        var i = digits.count - 3
        while i > 0 { digits.insert(",", at: i); i -= 3 }
        return String(digits)
    }
}
