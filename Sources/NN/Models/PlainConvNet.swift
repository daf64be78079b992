import Kernels

/// A small network with no BatchNorm, used where exact data-parallel equivalence matters
/// (without BatchNorm, 2 ranks × batch B compute the same gradient as 1 rank × batch 2B).
/// conv3×3(3→16) → ReLU → max-pool → conv3×3(16→32) → ReLU → global average pool (→ fc, added
/// by `ClassifierModel`).
public enum PlainConvNet {
    public static func makeBackbone(_ store: ParameterStore) -> (backbone: Sequential, features: Int) {
        let workspace = FloatStorage()
        let backbone = Sequential([
            Conv2d(store, name: "conv1", inChannels: 3, outChannels: 16, kernelSize: 3, padding: 1, bias: true, workspace: workspace),
            ReLU(),
            MaxPool2d(kernelSize: 2, stride: 2),
            Conv2d(store, name: "conv2", inChannels: 16, outChannels: 32, kernelSize: 3, padding: 1, bias: true, workspace: workspace),
            ReLU(),
            GlobalAvgPool2d(),
        ])
        return (backbone, 32)
    }
}
