import Kernels

/// Training mode uses batch statistics and caches what backward needs; eval does neither.
public enum Mode: Sendable, Equatable { case train, eval }

/// A layer is a forward/backward pair.
///
/// - `forward` returns an output tensor owned by the layer (reused across steps) and, in
///   `.train` mode, caches whatever `backward` needs (it may keep a reference to `input`;
///   callers must not overwrite an input before backward has run). A layer whose backward
///   does not read its own output says so (Conv2d, BatchNorm2d); the block that owns it may
///   then write over that output, as residual blocks do with their sum.
/// - `backward` takes the gradient of the loss with respect to the last forward's output and
///   returns the gradient with respect to its input, under Note [Gradient pool]
///   (Kernels/TensorPool.swift): it consumes one hold on the gradient it is given, and the
///   caller gets one hold on the tensor returned. Parameter gradients are ADDED (`+=`) into
///   the store's flat gradient buffer, so fan-out and gradient accumulation need no special
///   cases.
public protocol Layer: AnyObject {
    func forward(_ input: Tensor, mode: Mode) -> Tensor
    func backward(_ outputGradient: Tensor) -> Tensor
}

/// A layer built from other layers. Model-wide walks (`stochasticLayers(in:)`) reach nested
/// layers through it; a block that holds a `StochasticLayer` must conform so that the model
/// reseeds it every step.
public protocol CompositeLayer: Layer {
    var sublayers: [any Layer] { get }
}

/// Every `StochasticLayer` in `layer` and, through `CompositeLayer`, in the layers it contains,
/// depth first in forward order.
public func stochasticLayers(in layer: any Layer) -> [any StochasticLayer] {
    if let stochastic = layer as? any StochasticLayer { return [stochastic] }
    guard let composite = layer as? any CompositeLayer else { return [] }
    return composite.sublayers.flatMap { stochasticLayers(in: $0) }
}

/// Layers run one after another.
public final class Sequential: CompositeLayer {
    public private(set) var layers: [any Layer]

    public init(_ layers: [any Layer]) { self.layers = layers }

    public var sublayers: [any Layer] { layers }

    public func append(_ layer: any Layer) { layers.append(layer) }

    public func forward(_ input: Tensor, mode: Mode) -> Tensor {
        var x = input
        for layer in layers { x = layer.forward(x, mode: mode) }
        return x
    }

    public func backward(_ outputGradient: Tensor) -> Tensor {
        var g = outputGradient
        for layer in layers.reversed() { g = layer.backward(g) }
        return g
    }
}
